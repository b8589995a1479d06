import { acquireLock, parseLock, readLock, releaseOwnLock } from '../commands/state.js';
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
