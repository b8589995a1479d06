import { hostname } from 'node:os';
import { acquireLock, forceReleaseLock, parseLock, readLock, releaseOwnLock } from '../commands/state.js';
import { LockHeldError, type LockHolder } from '../errors.js';
import type { HostSession } from '../exec/executor.js';

export async function readHolder(session: Pick<HostSession, 'run'>): Promise<LockHolder | undefined> {
  const result = await session.run(readLock());
  return result.exitCode === 0 ? parseLock(result.stdout) : undefined;
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

export function lockHeldNext(holder: LockHolder | undefined): string {
  if (holder && lockIsStale(holder)) {
    return `the holder's process (pid ${holder.pid}) is gone, so the lock is stale: voxops lock release --force`;
  }
  const age = holder ? ` (held for ${lockAge(holder)})` : '';
  return `wait for it to finish${age}, or if it is dead: voxops lock status, then voxops lock release --force`;
}

export function lockHeldError(host: string, holder: LockHolder | undefined): LockHeldError {
  return new LockHeldError(host, holder, { next: lockHeldNext(holder) });
}

/** Take the lock on every host, or on none: a host that refuses releases the ones already taken. */
export async function acquireAll(sessions: readonly HostSession[], holder: LockHolder): Promise<void> {
  const taken: HostSession[] = [];
  for (const session of sessions) {
    const result = await session.run(acquireLock(holder));
    if (result.exitCode === 0) {
      taken.push(session);
      continue;
    }
    await releaseAll(taken, holder);
    const current = await readHolder(session).catch(() => undefined);
    throw lockHeldError(session.host.name, current);
  }
}

/** Best effort on every path (failure, Ctrl-C): a release that fails must not hide the real error. */
export async function releaseAll(sessions: readonly HostSession[], holder: LockHolder): Promise<string[]> {
  const failed: string[] = [];
  await Promise.all(
    sessions.map(async (session) => {
      try {
        await session.run(releaseOwnLock(holder.id));
      } catch {
        failed.push(session.host.name);
      }
    }),
  );
  return failed;
}

export interface LockReport {
  host: string;
  holder: LockHolder | null;
  stale: boolean;
  age: string | null;
}

export async function lockStatus(sessions: readonly HostSession[]): Promise<LockReport[]> {
  return Promise.all(
    sessions.map(async (session) => {
      const holder = (await readHolder(session)) ?? null;
      return { host: session.host.name, holder, stale: holder ? lockIsStale(holder) : false, age: holder ? lockAge(holder) : null };
    }),
  );
}

export interface LockRelease {
  host: string;
  holder: LockHolder | null;
  released: boolean;
  reason?: string;
}

/**
 * Release locks. Without force only "your own" lock goes: same user on the same machine (a deploy
 * of yours that crashed). With force anyone's, and the report says whose it was.
 */
export async function releaseLocks(sessions: readonly HostSession[], me: { user: string; machine: string }, force: boolean): Promise<LockRelease[]> {
  return Promise.all(
    sessions.map(async (session) => {
      const holder = (await readHolder(session)) ?? null;
      if (!holder) return { host: session.host.name, holder, released: false, reason: 'not locked' };
      const mine = holder.user === me.user && holder.machine === me.machine;
      if (!mine && !force) {
        return { host: session.host.name, holder, released: false, reason: `held by ${holder.user}@${holder.machine}, not you (${me.user}@${me.machine}): add --force` };
      }
      await session.run(force ? forceReleaseLock() : releaseOwnLock(holder.id));
      return { host: session.host.name, holder, released: true };
    }),
  );
}
