import { hostname } from 'node:os';
import { acquireLock, forceReleaseLock, parseLock, readLock, releaseOwnLock, renewLock, takeOverLock } from '../commands/state.js';
import { LockHeldError, type HeldLock, type LockHolder } from '../errors.js';
import type { HostSession } from '../exec/executor.js';

/** How long a lock outlives its holder's last renewal, unless the inventory says otherwise. */
export const DEFAULT_LEASE_SECONDS = 120;

export async function readHolder(session: Pick<HostSession, 'run'>): Promise<HeldLock | undefined> {
  const result = await session.run(readLock());
  return result.exitCode === 0 ? parseLock(result.stdout) : undefined;
}

/** A lock another run may take over: expired, and with an id that is safe to name a file after. */
export function canTakeOver(lock: HeldLock | undefined): lock is HeldLock & { expired: true } {
  return lock?.expired === true && /^[0-9a-f]{1,64}$/.test(lock.id);
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

export function lockAge(holder: LockHolder, now: number): string {
  const ms = now - Date.parse(holder.startedAt);
  if (!Number.isFinite(ms)) return 'unknown age';
  const minutes = Math.floor(ms / 60_000);
  return minutes < 60 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** When a held lock frees itself: its holder's lease, counted from its last renewal. */
export function leaseLeft(lock: HeldLock): string | undefined {
  if (lock.leaseSeconds === undefined || lock.idleSeconds === undefined) return undefined;
  const left = lock.leaseSeconds - lock.idleSeconds;
  return left > 0 ? `expires ${left}s from now unless its holder renews it` : `EXPIRED ${-left}s ago: its holder stopped renewing it`;
}

export function lockHeldNext(holder: HeldLock | undefined, now: number): string {
  if (holder && lockIsStale(holder)) {
    return `the holder's process (pid ${holder.pid}) is gone: its lock expires by itself ${holder.leaseSeconds ? `${Math.max(0, holder.leaseSeconds - (holder.idleSeconds ?? 0))}s from now` : 'never (an old lock without a lease)'}; or now: voxops lock release --force`;
  }
  const age = holder ? ` (held for ${lockAge(holder, now)}${holder.leaseSeconds ? `; a lease of ${holder.leaseSeconds}s` : ''})` : '';
  return `wait for it to finish${age}, or re-run with --lock-wait <seconds>; if it is dead: voxops lock status, then voxops lock release --force`;
}

export function lockHeldError(host: string, holder: HeldLock | undefined, now: number): LockHeldError {
  return new LockHeldError(host, holder, { next: lockHeldNext(holder, now) });
}

/**
 * Take the lock on every host, or on none: a host that refuses releases the ones already taken. A
 * lock whose holder stopped renewing it (`expired`, seen at preflight) is taken over instead.
 */
export async function acquireAll(
  sessions: readonly HostSession[],
  holder: LockHolder,
  now: number,
  expired: ReadonlyMap<string, HeldLock> = new Map(),
): Promise<void> {
  const taken: HostSession[] = [];
  for (const session of sessions) {
    const old = expired.get(session.host.name);
    const step = canTakeOver(old) ? takeOverLock(holder, old.id, old.leaseSeconds!) : acquireLock(holder);
    let result;
    try {
      result = await session.run(step);
    } catch (error) {
      // unreachable half-way: the locks already taken must not wait out their lease
      await releaseAll(taken, holder);
      throw error;
    }
    if (result.exitCode === 0) {
      taken.push(session);
      continue;
    }
    await releaseAll(taken, holder);
    const current = await readHolder(session).catch(() => undefined);
    throw lockHeldError(session.host.name, current, now);
  }
}

/**
 * Renew every lease while the run holds its locks, every quarter lease. A renewal that finds the
 * lock is no longer ours (it expired while the host was out of reach, and another run took it over)
 * calls `lost`: this run must stop changing that host. Timers, not the run's clock: a renewal is
 * real time on the hosts. Returns the stop function.
 */
export function keepLeases(sessions: readonly HostSession[], holder: LockHolder, lost: (host: string) => void): () => void {
  const every = Math.max(1, holder.leaseSeconds ?? DEFAULT_LEASE_SECONDS) * 250;
  // a renewal still in flight when the run releases its locks finds no lock: that is not a loss
  let stopped = false;
  const timer = setInterval(() => {
    for (const session of sessions) {
      session.run(renewLock(holder.id)).then(
        (r) => r.exitCode === 0 || stopped || lost(session.host.name),
        // out of reach: the lease runs down; the run itself finds out at its next command
        () => undefined,
      );
    }
  }, every);
  timer.unref();
  return () => {
    stopped = true;
    clearInterval(timer);
  };
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
  holder: HeldLock | null;
  stale: boolean;
  age: string | null;
  /** when it frees itself, or that it has expired */
  lease: string | null;
}

export async function lockStatus(sessions: readonly HostSession[], now: number): Promise<LockReport[]> {
  return Promise.all(
    sessions.map(async (session) => {
      const holder = (await readHolder(session)) ?? null;
      return {
        host: session.host.name,
        holder,
        stale: holder ? lockIsStale(holder) : false,
        age: holder ? lockAge(holder, now) : null,
        lease: holder ? (leaseLeft(holder) ?? null) : null,
      };
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
 * Release locks. Without force only a lock nobody can be using goes: an expired one, or your own
 * (same user, same machine) whose process is gone. With force anyone's, and the report says whose.
 */
export async function releaseLocks(
  sessions: readonly HostSession[],
  me: { user: string; machine: string },
  force: boolean,
): Promise<LockRelease[]> {
  return Promise.all(
    sessions.map(async (session) => {
      const holder = (await readHolder(session)) ?? null;
      if (!holder) return { host: session.host.name, holder, released: false, reason: 'not locked' };
      const mine = holder.user === me.user && holder.machine === me.machine;
      // without --force only a lock nobody can be using: expired, or ours with its process gone
      const unused = holder.expired === true || (mine && lockIsStale(holder, me.machine));
      if (!unused && !force) {
        return {
          host: session.host.name,
          holder,
          released: false,
          reason: mine
            ? `held by your own run (pid ${holder.pid}), which is still running: stop it, or add --force`
            : `held by ${holder.user}@${holder.machine}, not you (${me.user}@${me.machine}): add --force`,
        };
      }
      await session.run(force ? forceReleaseLock() : releaseOwnLock(holder.id));
      return { host: session.host.name, holder, released: true };
    }),
  );
}
