import { all, any, argv, type Step } from '../exec/command.js';
import type { HeldLock, LockHolder } from '../errors.js';
import { isValidTag } from './tag.js';

/** voxops' own state on each host: the lock and the deploy history. */
export const stateDir = '/var/lib/voxops';
export const lockFile = `${stateDir}/lock.json`;
export const historyFile = `${stateDir}/history.jsonl`;
export const progressFile = `${stateDir}/progress.json`;

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

const AGE_MARK = '--voxops-lock-idle';

/** The text that marks a lock file as one holder's: its id field exactly as JSON.stringify writes it. */
const holderMark = (id: string) => `"id":${JSON.stringify(id)}`;

/** The holder, then how many seconds ago it was last renewed, by the host's own clock. Exit 1: no lock. */
export function readLock(): Step {
  const script = `cat -- "$1" || exit 1; printf '\\n${AGE_MARK} %s\\n' "$(( $(date +%s) - $(stat -c %Y -- "$1") ))"`;
  return { name: 'read the deploy lock', command: argv('sh', '-c', script, 'voxops-lock', lockFile), okExitCodes: [1], readOnly: true };
}

/**
 * Renew our lease: touch the lock file, but only while it still carries our id. Exit 1: it is not
 * ours any more (it expired and another run took it over).
 */
export function renewLock(id: string): Step {
  return {
    name: 'renew the deploy lock',
    command: all(argv('grep', '-qF', holderMark(id), '--', lockFile), argv('touch', '-c', '--', lockFile)),
    okExitCodes: [1, 2],
  };
}

/**
 * Take over a lock whose holder stopped renewing it. Of several runs that try at once, one wins: a
 * hard link named after the expired holder can be made only once. The winner checks again that the
 * lock is that holder's and still unrenewed, then puts its own in place. A token older than
 * TOKEN_ABANDONED_SECONDS or the lease, whichever is longer (its ctime is when it was linked), was
 * left by a taker that died half-way: it is cleared, so it cannot block every later takeover. (A
 * lease of 0, our own dead run on --resume, must not make a taker in progress look abandoned.)
 * Exit 1: not taken over.
 */
export function takeOverLock(holder: LockHolder, expiredId: string, leaseSeconds: number): Step {
  const script = [
    'set -e',
    'lock=$1; token=$2; temp=$3; holder=$4; lease=$5; abandoned=$6',
    'if [ -e "$token" ] && [ $(( $(date +%s) - $(stat -c %Z -- "$token") )) -ge "$abandoned" ]; then rm -f -- "$token"; fi',
    'ln -- "$lock" "$token" 2>/dev/null || exit 1',
    'idle=$(( $(date +%s) - $(stat -c %Y -- "$lock") ))',
    'if [ "$idle" -lt "$lease" ] || ! grep -qF -- "$holder" "$lock"; then rm -f -- "$token"; exit 1; fi',
    'cat > "$temp"',
    'rm -f -- "$lock"',
    'ln -- "$temp" "$lock"',
    'rm -f -- "$temp" "$token"',
  ].join('\n');
  return {
    name: 'take over the expired deploy lock',
    command: argv(
      'sh',
      '-c',
      script,
      'voxops-takeover',
      lockFile,
      `${stateDir}/lock.takeover.${expiredId}`,
      `${stateDir}/lock.${holder.id}.tmp`,
      holderMark(expiredId),
      String(leaseSeconds),
      String(Math.max(leaseSeconds, TOKEN_ABANDONED_SECONDS)),
    ),
    stdin: `${JSON.stringify(holder)}\n`,
    okExitCodes: [1],
  };
}

/** A takeover takes well under a second; a token this old was left by a taker that died. */
const TOKEN_ABANDONED_SECONDS = 60;

/** Removes the lock only if it still carries our id. Exit 1: it is not ours (or already gone). */
export function releaseOwnLock(id: string): Step {
  return {
    name: 'release the deploy lock',
    command: all(argv('grep', '-qF', holderMark(id), '--', lockFile), argv('rm', '-f', '--', lockFile)),
    okExitCodes: [1, 2],
  };
}

export function forceReleaseLock(): Step {
  // a takeover that died half-way leaves its token: it would block every later takeover of that holder
  return {
    name: 'force-release the deploy lock',
    command: argv('sh', '-c', 'rm -f -- "$1" "$2"/lock.takeover.*', 'voxops-unlock', lockFile, stateDir),
  };
}

export function parseLock(stdout: string): HeldLock | undefined {
  const mark = stdout.lastIndexOf(`\n${AGE_MARK} `);
  const text = (mark >= 0 ? stdout.slice(0, mark) : stdout).trim();
  if (!text) return undefined;
  let holder: LockHolder;
  try {
    holder = JSON.parse(text) as LockHolder;
  } catch {
    return undefined;
  }
  if (typeof holder !== 'object' || holder === null) return undefined;
  const idle = mark >= 0 ? Number(stdout.slice(mark + AGE_MARK.length + 2).trim()) : NaN;
  if (!Number.isFinite(idle)) return holder;
  const lease = typeof holder.leaseSeconds === 'number' && holder.leaseSeconds > 0 ? holder.leaseSeconds : undefined;
  return { ...holder, idleSeconds: idle, ...(lease !== undefined ? { expired: idle > lease } : {}) };
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

/**
 * Where one host's change stands, kept on the host while it runs: what it was changing from and to,
 * and what is done. Gone when the change ends well; left behind by a run that was killed, cut off or
 * failed, so `--resume` knows what the host was before and what need not be done again.
 */
export interface Progress {
  /** the run (its lock id) */
  run: string;
  role: string;
  action: HistoryEntry['action'];
  from: string | null;
  to: string;
  startedAt: string;
  /** the commit whose install finished on this host */
  installed?: string;
}

/** Written whole to a temp file and renamed: a reader never sees half a record. */
export function writeProgress(progress: Progress): Step {
  const temp = `${progressFile}.tmp`;
  return {
    name: 'record progress',
    command: all(argv('mkdir', '-p', stateDir), argv('dd', `of=${temp}`, 'status=none'), argv('mv', '-f', '--', temp, progressFile)),
    stdin: `${JSON.stringify(progress)}\n`,
  };
}

export function readProgress(): Step {
  return { name: 'read progress', command: argv('cat', '--', progressFile), okExitCodes: [1], readOnly: true };
}

export function clearProgress(): Step {
  return { name: 'clear progress', command: argv('rm', '-f', '--', progressFile) };
}

/** A progress record read back from a host is its text: only a well-formed one counts. */
export function parseProgress(stdout: string): Progress | undefined {
  try {
    const j = JSON.parse(stdout) as Partial<Progress>;
    const text = (v: unknown) => typeof v === 'string' && v.length > 0 && v.length < 200;
    // its tags become command lines (--resume, a rollback's target): only release tags count
    const tag = (v: unknown) => typeof v === 'string' && isValidTag(v);
    if (!text(j.run) || !text(j.role) || !text(j.action) || !text(j.startedAt) || !tag(j.to) || !(j.from === null || tag(j.from)))
      return undefined;
    if (j.installed !== undefined && !(typeof j.installed === 'string' && /^[0-9a-f]{7,64}$/.test(j.installed))) return undefined;
    return j as Progress;
  } catch {
    return undefined;
  }
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
