import { all, argv, type Step } from './command.js';

/** Builders for the release checkout. `tag` must have passed validateTag first. */
export function fetchTags(path: string): Step {
  return { name: 'git fetch', command: argv('git', '-C', path, 'fetch', '--quiet', '--tags', '--force', 'origin') };
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

export function checkoutTag(path: string, tag: string): Step {
  return { name: `checkout ${tag}`, command: argv('git', '-C', path, 'checkout', '--quiet', '--detach', `refs/tags/${tag}`) };
}

/** Prints HEAD's commit, then the tag's commit: the checkout is right when the two lines match. */
export function headAndTagCommits(path: string, tag: string): Step {
  return {
    name: `verify HEAD is ${tag}`,
    command: argv('git', '-C', path, 'rev-parse', 'HEAD', `refs/tags/${tag}^{commit}`),
    readOnly: true,
  };
}

/** The tag at HEAD, if HEAD is exactly a release tag (exit 128 otherwise). */
export function currentTag(path: string): Step {
  return {
    name: 'read the deployed tag',
    command: argv('git', '-C', path, 'describe', '--tags', '--exact-match', 'HEAD'),
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
