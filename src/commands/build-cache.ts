import { all, any, argv, type Step } from '../exec/command.js';
import { stateDir } from './state.js';

/**
 * Kept builds: after install, the inventory's build outputs (e.g. `.venv`) are copied to
 * /var/lib/voxops/builds/<role>/<commit>/, so a rollback to that commit restores them instead of
 * running a slow install again. Keyed by commit, not tag: the same code is the same build.
 */
export function buildDir(role: string, commit: string): string {
  return `${stateDir}/builds/${role}/${commit}`;
}

/** Exit 0: a complete kept build exists for this commit. */
export function hasBuild(role: string, commit: string): Step {
  return { name: 'look for a kept build', command: argv('test', '-f', `${buildDir(role, commit)}/.complete`), okExitCodes: [1], readOnly: true };
}

export function saveBuild(role: string, commit: string, path: string, outputs: readonly string[]): Step {
  const dir = buildDir(role, commit);
  const temp = `${dir}.partial`;
  return {
    name: 'keep this build for rollback',
    command: all(
      argv('rm', '-rf', '--', temp, dir),
      argv('mkdir', '-p', temp),
      ...outputs.map((out) => argv('cp', '-a', '--', `${path}/${out}`, `${temp}/`)),
      argv('touch', '--', `${temp}/.complete`),
      argv('mv', '-T', '--', temp, dir),
    ),
  };
}

/** Swap each output for the kept copy; the old one is only removed once the copy is in place. */
export function restoreBuild(role: string, commit: string, path: string, outputs: readonly string[]): Step {
  const dir = buildDir(role, commit);
  return {
    name: 'restore the kept build',
    command: all(
      ...outputs.map((out) => {
        const target = `${path}/${out}`;
        return all(
          argv('rm', '-rf', '--', `${target}.voxops-new`, `${target}.voxops-old`),
          argv('cp', '-a', '--', `${dir}/${out.split('/').pop()}`, `${target}.voxops-new`),
          any(argv('test', '!', '-e', target), argv('mv', '-T', '--', target, `${target}.voxops-old`)),
          argv('mv', '-T', '--', `${target}.voxops-new`, target),
          argv('rm', '-rf', '--', `${target}.voxops-old`),
        );
      }),
    ),
  };
}

/** Kept builds, newest first (by modification time), one commit per line. */
export function listBuilds(role: string): Step {
  return {
    name: 'list kept builds',
    command: argv('ls', '-1t', '--', `${stateDir}/builds/${role}`),
    okExitCodes: [2],
    readOnly: true,
  };
}

export function pruneBuilds(role: string, commits: readonly string[]): Step {
  return { name: 'prune kept builds', command: argv('rm', '-rf', '--', ...commits.map((c) => buildDir(role, c))) };
}

/** Which kept builds to delete: all but the newest `keep`, never the one just made. */
export function buildsToPrune(listing: string, keep: number, current: string): string[] {
  const commits = listing
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^[0-9a-f]{7,64}$/.test(l));
  return commits.filter((c, i) => i >= keep && c !== current);
}
