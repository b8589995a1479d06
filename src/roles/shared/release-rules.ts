import { compareTags, deployedTagProblem, isValidTag } from '../../commands/tag.js';
import { redactUrl } from '../../redact.js';
import { chooseSource, type ReleaseSource, type SourceChoice, type TagLookup } from '../../release/source.js';

// Preflight rules every role with a checkout shares. Pure: each returns the problem (or warning) it
// finds for one host, so judge functions compose them and unit tests check them one by one.

/** The deployed release is read back from the host (any text): it must be a release tag to go back to. */
export function notAtReleaseTag(host: string, path: string, current: string | null): string | undefined {
  return deployedTagProblem(host, path, current);
}

export function lowDisk(host: string, path: string, freeMb: number | undefined, minFreeMb: number): string | undefined {
  return freeMb !== undefined && freeMb < minFreeMb ? `${host}: only ${freeMb} MiB free at ${path} (need ${minFreeMb} MiB)` : undefined;
}

/** A "rollback" to a newer tag rolls forward: refused without --force, a warning with it. */
export function rollsForward(host: string, tag: string, current: string | null, force: boolean): { problem?: string; warning?: string } {
  if (!current || !isValidTag(current) || compareTags(tag, current) <= 0) return {};
  const line = `${host}: ${tag} is newer than the deployed ${current}: this "rollback" rolls forward`;
  return force ? { warning: line } : { problem: `${line} (add --force if that is what you want)` };
}

/**
 * How the release gets to the host. With no lookup (a restart, a kept build, or --source rsync,
 * which asks no git host) nothing is fetched: rsync pushes, git checks out what the clone has.
 */
export function sourceFor(host: string, tag: string, requested: ReleaseSource, lookup: TagLookup | undefined): SourceChoice {
  if (requested === 'rsync') return { source: 'rsync', skipFetch: true };
  return lookup ? chooseSource(host, tag, requested, lookup) : { source: 'git', skipFetch: true };
}

/** The hint for a refusal: a missing tag, an unreachable origin, or the problems as listed. */
export function refusalNext(problems: readonly string[], repo: string, rerun: string, fallback: string): string {
  if (problems.some((p) => p.includes('does not exist in origin')))
    return `check the tag name; the tags are listed by: git ls-remote --tags ${redactUrl(repo)}`;
  if (problems.some((p) => p.includes('cannot fetch from origin'))) return `${rerun} --source rsync`;
  return fallback;
}
