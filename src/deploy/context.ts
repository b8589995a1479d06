import { randomBytes } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import type { Inventory } from '../config/inventory.js';
import type { LockHolder } from '../errors.js';
import type { Executor } from '../exec/executor.js';
import type { Reporter } from './events.js';

/** Everything an operation needs, wired once by the CLI (the composition root). */
export interface OperationContext {
  inventory: Inventory;
  executor: Executor;
  reporter: Reporter;
  /** aborted on the first Ctrl-C or SIGTERM: operations stop at the next safe point */
  signal: AbortSignal;
  dryRun: boolean;
  env: NodeJS.ProcessEnv;
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

export function makeHolder(env: NodeJS.ProcessEnv, action: string, tag?: string): LockHolder {
  return {
    id: randomBytes(8).toString('hex'),
    user: whoAmI(env),
    machine: hostname(),
    pid: process.pid,
    startedAt: new Date().toISOString(),
    action,
    ...(tag ? { tag } : {}),
    ...(env.BUILD_URL ? { buildUrl: env.BUILD_URL } : {}),
  };
}

/** A lock is recognisably stale when its holder ran here and that process is gone. */
export function lockIsStale(holder: LockHolder, machine = hostname()): boolean {
  if (holder.machine !== machine) return false;
  try {
    process.kill(holder.pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

export function lockAge(holder: LockHolder, now = Date.now()): string {
  const ms = now - Date.parse(holder.startedAt);
  if (!Number.isFinite(ms)) return 'unknown age';
  const minutes = Math.floor(ms / 60_000);
  return minutes < 60 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
