import { localTagExists, remoteTagExists } from '../commands/git.js';
import type { CommandResult } from '../exec/executor.js';
import type { Step } from '../exec/command.js';
import { shownRemoteText } from '../errors.js';

/** What the operator asked for (`--source`): the host's own git fetch, an rsync push, or git then rsync. */
export type ReleaseSource = 'git' | 'rsync' | 'auto';

/** How a host gets a release: its own `git fetch`, or an rsync push from a clone on this machine. */
export type ResolvedSource = 'git' | 'rsync';

/** Where the asked-for tag was found: the host's clone, origin, or nowhere reachable. */
export interface TagLookup {
  /** the tag is already in the host's clone (a rollback needs no network) */
  tagLocally: boolean;
  origin: 'found' | 'missing' | 'unreachable' | 'not-asked';
  /** why origin could not be asked (git's first stderr line) */
  originError?: string;
}

/**
 * Ask the host's clone, then origin. Exit 2 from `ls-remote --exit-code` is an answer (no such tag);
 * anything else non-zero means origin is out of reach.
 */
export async function lookUpTag(run: (step: Step) => Promise<CommandResult>, path: string, tag: string, localFirst: boolean): Promise<TagLookup> {
  if (localFirst && (await run(localTagExists(path, tag))).exitCode === 0) return { tagLocally: true, origin: 'not-asked' };
  const remote = await run({ ...remoteTagExists(path, tag), okExitCodes: 'any' });
  if (remote.exitCode === 0) return { tagLocally: false, origin: 'found' };
  if (remote.exitCode === 2) return { tagLocally: false, origin: 'missing' };
  // git's first line says why (ssh: connect to host ... refused); the rest is boilerplate
  const why = shownRemoteText(remote.stderr).split('\n').map((l) => l.trim()).find(Boolean);
  return { tagLocally: false, origin: 'unreachable', originError: why?.slice(0, 200) ?? `git ls-remote exit ${remote.exitCode}` };
}

export interface SourceChoice {
  source: ResolvedSource;
  /** the tag is in the host's clone already: checkout without fetching */
  skipFetch: boolean;
  problem?: string;
  warning?: string;
}

/** Pure: what the operator asked for, and what the host could see, decide how the release gets there. */
export function chooseSource(host: string, tag: string, requested: ReleaseSource, lookup: TagLookup): SourceChoice {
  if (requested === 'rsync') return { source: 'rsync', skipFetch: true };
  if (lookup.tagLocally) return { source: 'git', skipFetch: true };
  if (lookup.origin === 'found' || lookup.origin === 'not-asked') return { source: 'git', skipFetch: false };
  if (lookup.origin === 'missing') return { source: 'git', skipFetch: false, problem: `${host}: tag ${tag} does not exist in origin` };
  const why = `${host} cannot fetch from origin (${lookup.originError ?? 'unreachable'})`;
  if (requested === 'git') return { source: 'git', skipFetch: false, problem: `${why}; --source rsync pushes the release from a local clone` };
  return { source: 'rsync', skipFetch: true, warning: `${why}: pushing ${tag} with rsync instead` };
}
