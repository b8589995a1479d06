import type { Step } from '../exec/command.js';
import { checkoutTag, fetchTags, headAndTagCommits, writeReleaseMarker } from '../commands/git.js';
import { HOST_OWNED_PATHS } from '../commands/rsync.js';
import type { Host } from '../config/inventory.js';
import { RemoteCommandError } from '../errors.js';
import type { CommandResult } from '../exec/executor.js';
import { renderCommand } from '../exec/render.js';
import type { SourceChoice } from './source.js';
import type { ReleaseRepo, ReleaseWorkspace } from './workspace.js';

/** What placing a release needs from a host: its commands, reported, and a line for the operator. */
export interface ReleaseTarget {
  readonly host: Host;
  run(step: Step): Promise<CommandResult>;
  /** run a step, reported with its duration */
  step(step: Step): Promise<CommandResult>;
  timed<T>(name: string, work: () => Promise<T>): Promise<T>;
  info(message: string): void;
}

export interface PlaceOptions {
  path: string;
  tag: string;
  choice: SourceChoice;
  workspace: ReleaseWorkspace;
  role: string;
  repo: ReleaseRepo;
  /** role-specific host-owned paths on top of HOST_OWNED_PATHS */
  preserve: readonly string[];
}

const RSYNC_TIMEOUT_MS = 10 * 60_000;

/**
 * Put the tag's files into the checkout, by git or by rsync, and return the commit now deployed.
 * A git checkout is verified (HEAD must be the tag's commit); an rsync push records the tag in the
 * release marker, as a checkout records it in HEAD.
 */
export async function placeRelease(target: ReleaseTarget, options: PlaceOptions): Promise<string> {
  const host = target.host.name;
  const { path, tag } = options;
  if (options.choice.source === 'rsync') {
    const tree = await target.timed(`build ${tag} locally`, () => options.workspace.tree(options.role, options.repo, tag));
    const changed = await target.timed(`rsync ${tag}`, () => options.workspace.push(target.host, tree, path, options.preserve, RSYNC_TIMEOUT_MS));
    await target.step(writeReleaseMarker(path, tag, tree.commit));
    const kept = [...HOST_OWNED_PATHS, ...options.preserve].join(' ');
    target.info(`rsync pushed ${tag} (${tree.commit.slice(0, 12)}): ${changed} path(s) changed; ${kept} untouched`);
    return tree.commit;
  }
  if (!options.choice.skipFetch) await target.step(fetchTags(path));
  await target.step(checkoutTag(path, tag));
  const verify = headAndTagCommits(path, tag);
  const verified = await target.step(verify);
  const [head, tagged] = verified.stdout.trim().split('\n');
  if (!head || head !== tagged) {
    throw new RemoteCommandError({
      host,
      step: verify.name,
      command: renderCommand(verify.command),
      exitCode: verified.exitCode,
      stdout: verified.stdout,
      stderr: `HEAD ${head ?? '?'} is not ${tag} (${tagged ?? '?'})`,
    });
  }
  return head;
}
