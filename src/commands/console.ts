import { all, any, argv, type Step } from '../exec/command.js';

/**
 * Console publishing: each build is copied into its own release directory beside the `current`
 * symlink nginx serves from, and going live is one rename of a new symlink over `current`.
 * Release directory names are `<tag>-<commit12>`: the tag passed validateTag, the commit is hex.
 */
export function consoleReleasesDir(current: string): string {
  return `${current.slice(0, current.lastIndexOf('/')) || '/'}/releases`;
}

export function releaseName(tag: string, commit: string): string {
  return `${tag}-${commit.slice(0, 12)}`;
}

/** The tag a release directory (or a symlink target ending in one) holds, if it is one of ours. */
export function tagOfRelease(target: string): string | undefined {
  const name = target.replace(/\/+$/, '').split('/').pop() ?? '';
  return /^(.+)-[0-9a-f]{12}$/.exec(name)?.[1];
}

/** Copy the build into a fresh release directory; the directory only appears once it is complete. */
export function copyBuild(path: string, output: string, current: string, name: string): Step {
  const dir = `${consoleReleasesDir(current)}/${name}`;
  const partial = `${dir}.partial`;
  return {
    name: `keep the build as ${name}`,
    command: all(
      argv('rm', '-rf', '--', partial, dir),
      argv('mkdir', '-p', '--', consoleReleasesDir(current)),
      argv('cp', '-a', '--', `${path}/${output}`, partial),
      argv('mv', '-T', '--', partial, dir),
    ),
  };
}

/** Atomic: a new symlink is renamed over `current`, so every request sees the old build or the new one. */
export function flipCurrent(current: string, target: string): Step {
  const next = `${current}.voxops-next`;
  return {
    name: `serve ${target.split('/').pop()}`,
    command: all(argv('ln', '-sfn', '--', target, next), argv('mv', '-Tf', '--', next, current)),
  };
}

/** Where `current` points now (exit 1 when it is not a symlink). */
export function readCurrent(current: string): Step {
  return { name: `readlink ${current}`, command: argv('readlink', '--', current), okExitCodes: [1], readOnly: true };
}

/** One release directory name per line, oldest first. */
export function listConsoleReleases(current: string): Step {
  return {
    name: 'list kept console releases',
    command: any(argv('ls', '-1tr', '--', consoleReleasesDir(current)), argv('true')),
    readOnly: true,
  };
}

export function removeConsoleReleases(current: string, names: readonly string[]): Step {
  const dir = consoleReleasesDir(current);
  return { name: `prune ${names.length} old console release(s)`, command: argv('rm', '-rf', '--', ...names.map((n) => `${dir}/${n}`)) };
}

/**
 * Prints the sha256 of what the URL serves, then of the release's index.html: the new build is
 * live when the two lines match.
 */
export function servedAndBuiltDigests(url: string, releaseDir: string): Step {
  return {
    name: `compare ${url} with ${releaseDir.split('/').pop()}/index.html`,
    command: all(
      argv('sh', '-c', 'curl -fsS --max-time 5 -- "$1" | sha256sum', 'served-digest', url),
      argv('sha256sum', '--', `${releaseDir}/index.html`),
    ),
    okExitCodes: 'any',
    readOnly: true,
  };
}

/** Release directories to delete: all but the newest `keep`, never the ones in use. */
export function consoleReleasesToPrune(listing: string, keep: number, inUse: readonly string[]): string[] {
  const names = listing
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => tagOfRelease(l) !== undefined);
  const excess = names.slice(0, Math.max(0, names.length - keep));
  return excess.filter((n) => !inUse.includes(n));
}
