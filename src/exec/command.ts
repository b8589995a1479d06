/**
 * A remote command as data. Builders return these; only src/exec/render.ts turns them into the
 * single string that goes over SSH, so quoting lives in exactly one place.
 */
export type Argv = readonly [string, ...string[]];

export type Command =
  | { readonly kind: 'argv'; readonly argv: Argv }
  /** run every command while the previous one succeeded (`a && b`) */
  | { readonly kind: 'all'; readonly commands: readonly Command[] }
  /** run the first command; if it fails, the next (`a || b`) */
  | { readonly kind: 'any'; readonly commands: readonly Command[] }
  /** run in a directory (`cd dir && cmd`) */
  | { readonly kind: 'in'; readonly dir: string; readonly command: Command };

export function argv(...words: Argv): Command {
  return { kind: 'argv', argv: words };
}

export function all(...commands: Command[]): Command {
  return { kind: 'all', commands };
}

export function any(...commands: Command[]): Command {
  return { kind: 'any', commands };
}

export function inDir(dir: string, command: Command): Command {
  return { kind: 'in', dir, command };
}

/** A command with its purpose, so failures and dry runs say what the step was for. */
export interface Step {
  /** short name of the step, e.g. "checkout v1.5.0" */
  readonly name: string;
  readonly command: Command;
  /** bytes fed to the command's stdin (never secrets) */
  readonly stdin?: string;
  /** exit codes that are answers rather than failures (e.g. 1 from `mkdir` when a lock is held) */
  readonly okExitCodes?: readonly number[] | 'any';
  /** which stderr line says why it failed: the last (most tools), or the first (git: what follows is boilerplate) */
  readonly reasonLine?: 'first' | 'last';
  /** per-step timeout; the executor's default applies when absent */
  readonly timeoutMs?: number;
  /** true when the step changes nothing on the host (dry runs still execute these) */
  readonly readOnly?: boolean;
}
