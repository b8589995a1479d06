import { randomBytes } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import type { Clock } from '../clock.js';
import type { Inventory } from '../config/inventory.js';
import type { LockHolder } from '../errors.js';
import type { Reporter } from '../events.js';
import type { Executor } from '../exec/executor.js';

/** Everything an operation needs, wired once by the CLI (the composition root). */
export interface OperationContext {
  inventory: Inventory;
  executor: Executor;
  reporter: Reporter;
  /** aborted on the first Ctrl-C or SIGTERM (its reason is the signal's name) */
  signal: AbortSignal;
  dryRun: boolean;
  env: NodeJS.ProcessEnv;
  clock: Clock;
}

export function whoAmI(env: NodeJS.ProcessEnv): string {
  return env.BUILD_USER_ID ?? env.SUDO_USER ?? env.USER ?? safeUser();
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

export function makeHolder(ctx: Pick<OperationContext, 'env' | 'clock'>, action: string, tag?: string): LockHolder {
  return {
    id: randomBytes(8).toString('hex'),
    user: whoAmI(ctx.env),
    machine: hostname(),
    pid: process.pid,
    startedAt: new Date(ctx.clock.now()).toISOString(),
    action,
    ...(tag ? { tag } : {}),
    ...(ctx.env.BUILD_URL ? { buildUrl: ctx.env.BUILD_URL } : {}),
  };
}

/** The signal that stopped the run, for the exit code (SIGTERM 143, else 130). */
export function stopSignal(signal: AbortSignal): string | undefined {
  return typeof signal.reason === 'string' ? signal.reason : undefined;
}
