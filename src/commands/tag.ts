import semver from 'semver';
import { UsageError } from '../errors.js';
import { printableQuoted } from '../text.js';

/** Release tags look like v1.5.0 or v1.5.1-rc.1: a strict shape first, then semver proper. */
const tagShape = /^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$/;

export function isValidTag(tag: string): boolean {
  return tagShape.test(tag) && semver.valid(tag.slice(1)) !== null;
}

export function validateTag(tag: string): string {
  if (!isValidTag(tag)) {
    throw new UsageError(`"${tag}" is not a release tag: expected vMAJOR.MINOR.PATCH, optionally with -prerelease (e.g. v1.5.0)`, {
      next: 'list the tags with: git ls-remote --tags <repo>',
    });
  }
  return tag;
}

/**
 * -1, 0 or 1, by semver precedence. Total, because one side is often what a host reported (any
 * text): whatever is not a release tag sorts before every release tag, and among such, by code
 * unit. A caller that must tell "older" from "not a release" asks deployedTagProblem first.
 */
export function compareTags(a: string, b: string): -1 | 0 | 1 {
  const [tagA, tagB] = [isValidTag(a), isValidTag(b)];
  if (tagA && tagB) return semver.compare(a.slice(1), b.slice(1));
  if (tagA !== tagB) return tagA ? 1 : -1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The preflight problem when a host's deployed release (read back from it: git describe or the
 * rsync marker) is not a release tag, else undefined. Such a host has nothing to go back to, and
 * "newer than" means nothing for it. The text is shown quoted and escaped: it came from the host.
 */
export function deployedTagProblem(host: string, path: string, deployed: string | null): string | undefined {
  if (deployed !== null && isValidTag(deployed)) return undefined;
  const where = deployed === null ? 'is not at a release tag' : `is at ${printableQuoted(deployed.slice(0, 100))}, which is not a release tag (vMAJOR.MINOR.PATCH)`;
  return `${host}: ${path} ${where}, so there would be nothing to go back to`;
}
