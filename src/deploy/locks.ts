import { acquireLock, forceReleaseLock, parseLock, readLock, releaseOwnLock } from '../commands/state.js';
import { LockHeldError, type LockHolder } from '../errors.js';
import type { HostSession } from '../exec/executor.js';
import { lockAge, lockIsStale } from './context.js';

export async function readHolder(session: HostSession): Promise<LockHolder | undefined> {
  const result = await session.run(readLock());
  return result.exitCode === 0 ? parseLock(result.stdout) : undefined;
}

export function lockHeldNext(holder: LockHolder | undefined): string {
  if (holder && lockIsStale(holder)) {
    return `the holder's process (pid ${holder.pid}) is gone, so the lock is stale: voxops lock release --force`;
  }
  const age = holder ? ` (held for ${lockAge(holder)})` : '';
  return `wait for it to finish${age}, or if it is dead: voxops lock status, then voxops lock release --force`;
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
    throw new LockHeldError(session.host.name, current, { next: lockHeldNext(current) });
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

/**
 * Release locks. Without force only "your own" lock goes: same user on the same machine (a deploy
 * of yours that crashed). With force anyone's, and the report says whose it was.
 */
export async function releaseLocks(
  sessions: readonly HostSession[],
  me: { user: string; machine: string },
  force: boolean,
): Promise<{ host: string; holder: LockHolder | null; released: boolean; reason?: string }[]> {
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
