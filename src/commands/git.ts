import { all, any, argv, type Step } from '../exec/command.js';

/**
 * Written into the checkout by an rsync push (the host could not fetch): `<tag> <commit> rsync`.
 * The host's git HEAD still names the old release then, so the marker is what records the tag; a
 * git checkout removes it again.
 */
export const RELEASE_MARKER = '.voxops-release';

export function releaseMarker(path: string): string {
  return `${path}/${RELEASE_MARKER}`;
}

/** Builders for the release checkout. `tag` must have passed validateTag first. */
export function fetchTags(path: string): Step {
  // git says why first (ssh: connect to host ... refused); its last lines are the same advice every time
  return { name: 'git fetch', command: argv('git', '-C', path, 'fetch', '--quiet', '--tags', '--force', 'origin'), reasonLine: 'first' };
}

/** Exit 2 means the remote answered and has no such tag; anything else non-zero is a git or network failure. */
export function remoteTagExists(path: string, tag: string): Step {
  return {
    name: `look up ${tag} on origin`,
    command: argv('git', '-C', path, 'ls-remote', '--exit-code', '--tags', 'origin', `refs/tags/${tag}`),
    okExitCodes: [2],
    readOnly: true,
    timeoutMs: 30_000,
  };
}

export function localTagExists(path: string, tag: string): Step {
  return {
    name: `find ${tag} in the checkout`,
    command: argv('git', '-C', path, 'rev-parse', '--quiet', '--verify', `refs/tags/${tag}^{commit}`),
    okExitCodes: [1],
    readOnly: true,
  };
}

/**
 * Tracked files on a deploy host belong to the release: --force replaces what an rsync push (or a
 * hand edit) left, while untracked and ignored files (.env, .venv) are never touched.
 */
export function checkoutTag(path: string, tag: string): Step {
  return {
    name: `checkout ${tag}`,
    command: all(
      argv('git', '-C', path, 'checkout', '--quiet', '--force', '--detach', `refs/tags/${tag}`),
      argv('rm', '-f', '--', releaseMarker(path)),
    ),
  };
}

/** Record an rsync-pushed release. `tag` passed validateTag and `commit` is hex, so the line is plain. */
export function writeReleaseMarker(path: string, tag: string, commit: string): Step {
  return {
    name: `record ${tag} (rsync)`,
    command: argv('sh', '-c', 'cat > "$1.tmp" && mv -f -- "$1.tmp" "$1"', 'write-marker', releaseMarker(path)),
    stdin: `${tag} ${commit} rsync\n`,
  };
}

/** Prints HEAD's commit, then the tag's commit: the checkout is right when the two lines match. */
export function headAndTagCommits(path: string, tag: string): Step {
  return {
    name: `verify HEAD is ${tag}`,
    command: argv('git', '-C', path, 'rev-parse', 'HEAD', `refs/tags/${tag}^{commit}`),
    readOnly: true,
  };
}

/**
 * The deployed tag: the rsync marker's if there is one, else the tag at HEAD when HEAD is exactly
 * a release tag (exit 128 otherwise).
 */
export function currentTag(path: string): Step {
  return {
    name: 'read the deployed tag',
    command: any(
      argv('awk', 'NR == 1 && NF >= 1 { print $1; found = 1 } END { exit !found }', releaseMarker(path)),
      argv('git', '-C', path, 'describe', '--tags', '--exact-match', 'HEAD'),
    ),
    okExitCodes: [128],
    readOnly: true,
  };
}

export function install(path: string, commands: readonly (readonly string[])[]): Step {
  const steps = commands.map((words) => ({ kind: 'argv' as const, argv: words as [string, ...string[]] }));
  return {
    name: 'install',
    command: { kind: 'in', dir: path, command: steps.length === 1 ? steps[0]! : all(...steps) },
  };
}
