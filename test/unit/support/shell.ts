import type { Command } from '../../../src/exec/command.js';
import { renderCommand } from '../../../src/exec/render.js';

/** What one command (or a whole tree) did: sh's exit status and its output. */
export interface Exec {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** The shell state a command sees: its working directory and what is left of the step's stdin. */
export interface ShellContext {
  cwd: string;
  stdin: { data: string };
}

/** Runs one argv (a leaf of the tree) on the simulated host. */
export type Dispatch = (argv: readonly string[], ctx: ShellContext) => Exec;

export const ok = (stdout = ''): Exec => ({ exitCode: 0, stdout, stderr: '' });
export const fail = (exitCode: number, stderr: string, stdout = ''): Exec => ({
  exitCode,
  stdout,
  stderr: stderr && !stderr.endsWith('\n') ? `${stderr}\n` : stderr,
});

/**
 * The simulator met something it has no model for. It never guesses an answer: the whole run fails
 * with the command it could not answer.
 */
export class SimulatorGap extends Error {
  override name = 'SimulatorGap';
}

/** Throw from a handler: `argv` is a form of the command the simulator does not know. */
export function unsupported(argv: readonly string[], why = 'no model for this form'): never {
  throw new SimulatorGap(`${why}: ${renderCommand({ kind: 'argv', argv: argv as [string, ...string[]] })}`);
}

/** Read (and consume) the step's stdin, as the first command of a pipeline that reads it would. */
export function readStdin(ctx: ShellContext): string {
  const data = ctx.stdin.data;
  ctx.stdin.data = '';
  return data;
}

function join(a: Exec, b: Exec): Exec {
  return { exitCode: b.exitCode, stdout: a.stdout + b.stdout, stderr: a.stderr + b.stderr };
}

/**
 * Evaluate a command tree the way `sh -c "$(renderCommand(tree))"` would: `all` is `a && b`
 * (stop at the first failure), `any` is `a || b` (stop at the first success), `in` is
 * `cd dir && cmd`. The exit status is the last command's; output accumulates.
 */
export function evaluate(command: Command, ctx: ShellContext, dispatch: Dispatch, exists: (dir: string) => boolean): Exec {
  switch (command.kind) {
    case 'argv':
      return dispatch(command.argv, ctx);
    case 'all':
    case 'any': {
      let result: Exec = ok();
      for (const [i, part] of command.commands.entries()) {
        result = i === 0 ? evaluate(part, ctx, dispatch, exists) : join(result, evaluate(part, ctx, dispatch, exists));
        if (command.kind === 'all' ? result.exitCode !== 0 : result.exitCode === 0) break;
      }
      return result;
    }
    case 'in': {
      const dir = command.dir.startsWith('/') ? command.dir : `${ctx.cwd}/${command.dir}`;
      if (!exists(dir)) return fail(2, `sh: 1: cd: can't cd to ${command.dir}`);
      return evaluate(command.command, { ...ctx, cwd: dir }, dispatch, exists);
    }
  }
}

/**
 * Parse `argv` against the exact shapes voxops sends: leading options from `options` (`-x`,
 * `--long`, `--long=value`; a trailing `:` takes the next word as its value, `-n:`), an optional
 * `--`, then operands. Anything else is a gap, not a guess.
 */
export function parseFlags(
  argv: readonly string[],
  options: readonly string[],
  from = 1,
): { flags: Map<string, string>; operands: string[] } {
  const found = new Map<string, string>();
  let i = from;
  for (; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === '--') {
      i++;
      break;
    }
    if (!word.startsWith('-') || word === '-') break;
    const eq = word.indexOf('=');
    const name = eq > 0 ? word.slice(0, eq) : word;
    if (options.includes(`${name}:`)) {
      const value = eq > 0 ? word.slice(eq + 1) : argv[++i];
      if (value === undefined) unsupported(argv, `option ${name} without its value`);
      found.set(name, value);
    } else if (options.includes(name)) {
      found.set(name, eq > 0 ? word.slice(eq + 1) : '');
    } else {
      unsupported(argv, `unknown option ${name}`);
    }
  }
  return { flags: found, operands: argv.slice(i) };
}
