import type { HistoryEntry } from '../commands/state.js';
import type { HostProgress, OperationEvent, OperationSummary } from '../events.js';
import type { StatusReport } from '../engine/read.js';
import { noColour, type Paint } from './colour.js';

export function seconds(ms: number | undefined): string {
  return ms === undefined ? '-' : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)}s`;
}

/** One human line per event (no timestamp; the plain reporter adds it). */
export function describeEvent(event: OperationEvent): string | undefined {
  switch (event.type) {
    case 'start':
      return `${event.dryRun ? 'dry run: ' : ''}${event.operation} ${event.role}${event.tag ? ` ${event.tag}` : ''} on ${event.hosts.join(', ')}`;
    case 'host':
      return `${event.host}: ${event.phase}${event.message ? `: ${event.message}` : ''}`;
    case 'step':
      return event.status === 'done' ? `${event.host}: ${event.step} (${seconds(event.durationMs)})` : undefined;
    case 'worker':
      return `${event.host}: worker ${event.worker} ${event.phase}${event.message ? ` (${event.message})` : ''}`;
    case 'command':
      return `${event.host}: ${event.command}`;
    case 'warning':
      return `warning: ${event.host ? `${event.host}: ` : ''}${event.message}`;
    case 'info':
      return `${event.host ? `${event.host}: ` : ''}${event.message}`;
    case 'progress':
      return describeProgress(event.host, event.progress);
    case 'summary':
      return undefined;
  }
}

/** "fleet3: 9/16 on v1.5.0, waiting on 3 calls (longest 2m10s), 4 free, about 1m30s left" */
export function describeProgress(host: string, p: HostProgress): string {
  const longest = p.waitingOn[0];
  const waiting = p.waitingOn.length > 0 ? `, waiting on ${p.waitingOn.length} call${p.waitingOn.length === 1 ? '' : 's'} (longest ${duration(longest!.callMs)})` : '';
  const out = p.out > 0 ? `, ${p.out} restarting` : '';
  const eta = p.etaMs !== undefined ? `, about ${duration(p.etaMs)} left` : '';
  return `${host}: ${p.done}/${p.total} on ${p.tag}${waiting}${out}, ${p.free} free${eta}`;
}

/** 2m10s, 45s, 1h03m */
export function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd()).join('\n');
}

export function formatSummary(summary: OperationSummary, paint: Paint = noColour): string {
  const lines: string[] = [];
  const verdict = summary.exitCode === 0 ? paint('ok', 'ok') : paint('error', `FAILED (exit ${summary.exitCode})`);
  lines.push(`${summary.operation} ${summary.role}${summary.tag ? ` ${summary.tag}` : ''}: ${verdict} in ${seconds(summary.durationMs)}`);
  if (summary.hosts.length > 0) {
    lines.push(
      table([
        ['host', 'from', 'to', 'outcome', 'took'],
        ...summary.hosts.map((h) => [h.host, h.from ?? '-', h.to, h.outcome, seconds(h.durationMs)]),
      ]),
    );
  }
  if (summary.workers.length > 0) {
    lines.push(
      table([
        ['host', 'worker', 'outcome', 'version', 'waited for call', 'out of rotation', 'down (restart->healthy)'],
        ...summary.workers.map((w) => [
          w.host,
          String(w.worker),
          w.outcome,
          w.version ?? '-',
          seconds(w.idleAt && w.drainedAt ? w.idleAt - w.drainedAt : undefined),
          seconds(w.outOfRotationMs),
          seconds(w.downtimeMs),
        ]),
      ]),
    );
  }
  return lines.join('\n');
}

export function formatStatus(status: StatusReport, paint: Paint = noColour): string {
  const blocks: string[] = [];
  for (const host of status.hosts) {
    const lock = host.lock ? `locked by ${host.lock.user}@${host.lock.machine} since ${host.lock.startedAt}` : 'unlocked';
    const capacity = host.capacity ? `, capacity ${host.capacity.healthy}/${host.capacity.configured}` : '';
    const health = host.health ? `, health ${host.health}` : '';
    const lines = [`${host.name} (${host.role}): ${host.tag ?? '(no tag)'}, last-known-good ${host.lastKnownGood ?? '-'}, ${lock}${capacity}${health}`];
    if (host.workersSetting) {
      const s = host.workersSetting;
      lines.push(`  ${s.variable}=${s.value ?? '(unset)'}, ${s.enabledUnits} units enabled${s.matches ? '' : '  <-- MISMATCH'}`);
    }
    if (host.workers.length > 0) {
      lines.push(
        table([
          ['  worker', 'unit', 'active', 'socket', 'health', 'version', 'calls'],
          ...host.workers.map((w) => [`  ${w.index}`, w.unit, w.active, w.socket ? 'yes' : 'NO', w.health, w.version ?? '-', w.activeCalls === null ? '-' : String(w.activeCalls)]),
        ]),
      );
    }
    if (host.backends && host.backends.length > 0) {
      lines.push(
        table([
          ['  backend', 'address', 'status', 'calls', 'maxconn'],
          ...host.backends.map((b) => [`  ${b.name}`, b.address, b.status, b.sessions === null ? '-' : String(b.sessions), b.maxconn === null ? '-' : String(b.maxconn)]),
        ]),
      );
    }
    for (const p of host.problems) lines.push(paint('warning', `  ! ${p}`));
    blocks.push(lines.join('\n'));
  }
  return blocks.join('\n');
}

export function formatHistory(history: { host: string; entries: HistoryEntry[] }[]): string {
  const rows = history.flatMap((h) => h.entries.map((e) => ({ ...e, host: h.host })));
  rows.sort((a, b) => a.at.localeCompare(b.at));
  if (rows.length === 0) return 'no history recorded yet';
  return table([
    ['at', 'host', 'role', 'action', 'from', 'to', 'outcome', 'took', 'by'],
    ...rows.map((e) => [e.at, e.host, e.role, e.action, e.from ?? '-', e.to, e.outcome, seconds(e.durationMs), e.user]),
  ]);
}
