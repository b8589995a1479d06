import type { OperationEvent, OperationSummary } from '../deploy/events.js';

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
    case 'summary':
      return undefined;
  }
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd()).join('\n');
}

export function formatSummary(summary: OperationSummary): string {
  const lines: string[] = [];
  const verdict = summary.exitCode === 0 ? 'ok' : `FAILED (exit ${summary.exitCode})`;
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
