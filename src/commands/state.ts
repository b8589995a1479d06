import { all, any, argv, type Step } from '../exec/command.js';
import type { LockHolder } from '../errors.js';

/** voxops' own state on each host: the lock and the deploy history. */
export const stateDir = '/var/lib/voxops';
export const lockFile = `${stateDir}/lock.json`;
export const historyFile = `${stateDir}/history.jsonl`;

/**
 * Atomic lock: write the holder to a private temp file, then hard-link it to lock.json. link(2)
 * fails when lock.json exists, so exactly one deploy wins and the lock file is never half written.
 * Exit 1: somebody else holds it (or the holder could not be written; the follow-up read tells).
 */
export function acquireLock(holder: LockHolder): Step {
  const temp = `${stateDir}/lock.${holder.id}.tmp`;
  return {
    name: 'take the deploy lock',
    command: all(
      argv('mkdir', '-p', stateDir),
      argv('dd', `of=${temp}`, 'status=none'),
      any(all(argv('ln', '--', temp, lockFile), argv('rm', '-f', '--', temp)), all(argv('rm', '-f', '--', temp), argv('false'))),
    ),
    stdin: `${JSON.stringify(holder)}\n`,
    okExitCodes: [1],
  };
}

export function readLock(): Step {
  return { name: 'read the deploy lock', command: argv('cat', '--', lockFile), okExitCodes: [1], readOnly: true };
}

/** Removes the lock only if it still carries our id. Exit 1: it is not ours (or already gone). */
export function releaseOwnLock(id: string): Step {
  return {
    name: 'release the deploy lock',
    command: all(argv('grep', '-qF', `"id":${JSON.stringify(id)}`, '--', lockFile), argv('rm', '-f', '--', lockFile)),
    okExitCodes: [1, 2],
  };
}

export function forceReleaseLock(): Step {
  return { name: 'force-release the deploy lock', command: argv('rm', '-f', '--', lockFile) };
}

export function parseLock(stdout: string): LockHolder | undefined {
  const text = stdout.trim();
  if (!text) return undefined;
  try {
    return JSON.parse(text) as LockHolder;
  } catch {
    return undefined;
  }
}

export interface HistoryEntry {
  at: string;
  host: string;
  role: string;
  action: 'deploy' | 'rollback' | 'restart' | 'scale' | 'add-fleet' | 'remove-fleet';
  from: string | null;
  to: string;
  outcome: 'success' | 'rolled-back' | 'failed' | 'interrupted';
  durationMs: number;
  user: string;
  buildUrl?: string;
  detail?: string;
}

export function appendHistory(entry: HistoryEntry): Step {
  return {
    name: 'record history',
    command: all(argv('mkdir', '-p', stateDir), argv('dd', `of=${historyFile}`, 'oflag=append', 'conv=notrunc', 'status=none')),
    stdin: `${JSON.stringify(entry)}\n`,
  };
}

export function readHistory(lines: number): Step {
  return { name: 'read history', command: argv('tail', '-n', String(lines), '--', historyFile), okExitCodes: [1], readOnly: true };
}

export function parseHistory(stdout: string): HistoryEntry[] {
  const entries: HistoryEntry[] = [];
  for (const line of stdout.split('\n')) {
    if (!line.trim()) continue;
    try {
      entries.push(JSON.parse(line) as HistoryEntry);
    } catch {
      // a torn line (disk full mid-append) must not hide the rest of the history
    }
  }
  return entries;
}

/** Free space, in MiB, of the filesystem holding `path` (POSIX df output). */
export function freeDisk(path: string): Step {
  return { name: `free disk at ${path}`, command: argv('df', '-Pk', '--', path), readOnly: true };
}

export function parseFreeDiskMb(stdout: string): number | undefined {
  const row = stdout.trim().split('\n')[1];
  const available = row?.trim().split(/\s+/)[3];
  return available && /^\d+$/.test(available) ? Math.floor(Number(available) / 1024) : undefined;
}
