// Local process helpers for the lab orchestrator: argv only (zx quotes every word), every call
// bounded in time. The one long-lived child, a host's systemd-nspawn, is started in host.ts.
import { $ } from 'zx';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string | Buffer;
  timeoutMs?: number;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Return the result instead of throwing when the exit code is not 0. */
  allowFail?: boolean;
  /** Stream the child's output to ours (long steps such as debootstrap). */
  inherit?: boolean;
}

export class CommandError extends Error {
  constructor(
    readonly argv: string[],
    readonly result: RunResult,
  ) {
    super(`command failed (exit ${result.code}): ${argv.join(' ')}\n${tail(result.stderr || result.stdout)}`);
    this.name = 'CommandError';
  }
}

export function tail(text: string, lines = 15): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

export async function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  // zx quotes every word (argv only, no shell text of ours) and kills the child at the timeout
  const child = $({
    cwd: opts.cwd ?? process.cwd(),
    env: opts.env ?? process.env,
    ...(opts.input !== undefined ? { input: opts.input } : {}),
    stdio: [opts.input === undefined ? 'ignore' : 'pipe', opts.inherit ? 'inherit' : 'pipe', opts.inherit ? 'inherit' : 'pipe'],
    timeout: timeoutMs,
    timeoutSignal: 'SIGKILL',
    nothrow: true,
    quiet: true,
  })`${cmd} ${args}`;
  const out = await child;
  const timedOut = out.signal === 'SIGKILL' ? `\n[lab] timed out after ${timeoutMs} ms, sending SIGKILL` : '';
  const result = { code: out.exitCode ?? (out.signal ? 128 : 1), stdout: out.stdout, stderr: `${out.stderr}${timedOut}` };
  if (result.code !== 0 && !opts.allowFail) throw new CommandError([cmd, ...args], result);
  return result;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Poll `probe` until it returns a value other than undefined, at most `attempts` times and at most
 * `timeoutMs` in total. Throws with `what` and the last error otherwise.
 */
export async function poll<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  { intervalMs = 200, timeoutMs = 60_000 }: { intervalMs?: number; timeoutMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  const attempts = Math.ceil(timeoutMs / intervalMs) + 1;
  let last: unknown;
  for (let i = 0; i < attempts && Date.now() <= deadline; i++) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await sleep(intervalMs);
  }
  const reason = last instanceof Error ? `: ${last.message}` : '';
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${reason}`);
}

/** POSIX single-quote one word; `'` becomes `'\''`. */
export function shQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}
