import type { HostOutcome, OperationSummary, WorkerTimeline } from '../events.js';

/** Every attempt at one worker, in order: a failed gate and its rollback, or a skip and its retry. */
export interface WorkerAttempts {
  host: string;
  worker: number;
  unit: string;
  attempts: WorkerTimeline[];
}

export interface HostRow {
  host: string;
  role: string;
  /** absent when only worker timelines name the host */
  outcome?: HostOutcome;
  workers: WorkerAttempts[];
}

export interface RoleGroup {
  role: string;
  hosts: HostRow[];
}

/** Outcomes after which a host had been changed (or was being changed). */
const STARTED: readonly HostOutcome['outcome'][] = ['success', 'failed', 'rolled-back', 'interrupted'];

export function hostStarted(h: HostOutcome): boolean {
  return h.startedAt !== undefined || STARTED.includes(h.outcome);
}

/** Did the operation change anything, or did it stop in connect, preflight or argument checks? */
export function anyHostStarted(summary: OperationSummary): boolean {
  return summary.hosts.some(hostStarted) || summary.workers.length > 0;
}

/** Hosts grouped by role in the order they ran (deploy all: api first; rollback: reverse), each with its workers. */
export function roleGroups(summary: OperationSummary): RoleGroup[] {
  const rows = new Map<string, HostRow>();
  const key = (role: string, host: string) => `${role}\u0000${host}`;
  for (const h of summary.hosts) rows.set(key(h.role, h.host), { host: h.host, role: h.role, outcome: h, workers: [] });
  const rowOf = (host: string): HostRow => {
    const known = rows.get(key('fleet', host)) ?? [...rows.values()].find((r) => r.host === host);
    if (known) return known;
    // workers of a host the summary does not list: a single-role run (scale) names its own role
    const role = summary.role === 'all' ? 'fleet' : summary.role;
    const row: HostRow = { host, role, workers: [] };
    rows.set(key(role, host), row);
    return row;
  };
  for (const w of summary.workers) {
    const row = rowOf(w.host);
    let entry = row.workers.find((x) => x.worker === w.worker);
    if (!entry) row.workers.push((entry = { host: w.host, worker: w.worker, unit: w.unit, attempts: [] }));
    entry.attempts.push(w);
  }
  const groups: RoleGroup[] = [];
  for (const row of rows.values()) {
    row.workers.sort((a, b) => a.worker - b.worker);
    let group = groups.find((g) => g.role === row.role);
    if (!group) groups.push((group = { role: row.role, hosts: [] }));
    group.hosts.push(row);
  }
  return groups;
}

/** How one worker's roll ended, over all its attempts. */
export type WorkerVerdict =
  | { kind: 'passed'; rolledBack: boolean }
  | { kind: 'failed'; rolledBack: boolean }
  | { kind: 'skipped'; why: string };

export function workerVerdict(w: WorkerAttempts): WorkerVerdict {
  const outcomes = w.attempts.map((a) => a.outcome);
  const rolledBack = outcomes.includes('rolled-back');
  if (outcomes.includes('failed')) return { kind: 'failed', rolledBack };
  const last = outcomes.at(-1);
  if (last === 'skipped') return { kind: 'skipped', why: 'its call outlasted the drain timeout; it stays on the old release, serving' };
  if (last === 'untouched') return { kind: 'skipped', why: 'interrupted while waiting for its call; put back in rotation unchanged' };
  return { kind: 'passed', rolledBack };
}
