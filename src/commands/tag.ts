import semver from 'semver';
import { UsageError } from '../errors.js';

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

/** -1, 0 or 1, by semver precedence */
export function compareTags(a: string, b: string): number {
  return semver.compare(a.slice(1), b.slice(1));
}
