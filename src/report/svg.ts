import { create } from 'xmlbuilder2';
import type { XMLBuilder } from 'xmlbuilder2/lib/interfaces.js';
import { anyHostStarted, hostStarted, roleGroups, workerVerdict, type HostRow, type WorkerAttempts } from './model.js';
import type { HostOutcome, OperationSummary, WorkerTimeline } from '../events.js';
import { REPLACEMENT, duration, oneLine } from './text.js';

export interface PictureOptions {
  /**
   * The health gate's timeout per role (inventory `health.gateTimeoutSeconds` × 1000). A worker that
   * never became healthy is drawn waiting that long; without it, until the host's next recorded step.
   */
  gateTimeoutMs?: Partial<Record<string, number>>;
}

const WIDTH = 1100;
const LABELS = 290; // the label column: host or worker, and how it ended
const PLOT_LEFT = LABELS + 14;
const PLOT_RIGHT = WIDTH - 28;
const CHAR = 7; // average advance of a 12 px sans-serif glyph (DejaVu, the widest likely font)

const colour = {
  text: '#212529',
  muted: '#6c757d',
  grid: '#e9ecef',
  axis: '#adb5bd',
  waiting: '#f0b429',
  down: '#d64545',
  readmission: '#9fb3c8',
  gateFailed: '#7a0c0c',
  rollback: '#6f42c1',
  failedRow: '#fff0f0',
  error: '#c92a2a',
  ok: '#2b8a3e',
};

const outcomeStyle: Record<HostOutcome['outcome'] | 'refused' | 'passed', { fill: string; stroke: string; label: string }> = {
  success: { fill: '#b2f2bb', stroke: '#2b8a3e', label: 'done' },
  'rolled-back': { fill: '#ffd8a8', stroke: '#e8590c', label: 'rolled back' },
  failed: { fill: '#ffc9c9', stroke: '#c92a2a', label: 'FAILED' },
  interrupted: { fill: '#dee2e6', stroke: '#868e96', label: 'interrupted' },
  'not-started': { fill: 'none', stroke: '#adb5bd', label: 'not started' },
  planned: { fill: '#f1f3f5', stroke: '#adb5bd', label: 'planned (dry run)' },
  passed: { fill: '#e9ecef', stroke: '#adb5bd', label: 'passed' },
  refused: { fill: '#ffc9c9', stroke: '#c92a2a', label: 'REFUSED' },
};

type Row =
  | { kind: 'group'; role: string }
  | { kind: 'preflight' }
  | { kind: 'host'; row: HostRow; start?: number; end?: number }
  | { kind: 'worker'; row: HostRow; worker: WorkerAttempts; hostEnd?: number };

const ROW_HEIGHT: Record<Row['kind'], number> = { group: 26, preflight: 24, host: 26, worker: 20 };

/**
 * The run as a picture: a time axis, a preflight row, then per role its hosts (a bar from start
 * for its duration, in the outcome's colour, ending in the api/dialler down window) and under each
 * fleet host its workers (waiting for the call, down, waiting for nginx), with failed gates and
 * rollbacks drawn where they happened. Failure is in the title and on the failed rows.
 */
export function svg(summary: OperationSummary, options: PictureOptions = {}): string {
  const groups = roleGroups(summary);
  const runStart = Date.parse(summary.startedAt);
  const runEnd = runStart + summary.durationMs;
  const rows: Row[] = [{ kind: 'preflight' }];
  let previousEnd = runStart;
  for (const group of groups) {
    if (groups.length > 1) rows.push({ kind: 'group', role: group.role });
    for (const row of group.hosts) {
      const span = hostSpan(row, previousEnd);
      if (span.end !== undefined) previousEnd = span.end;
      rows.push({ kind: 'host', row, ...span });
      for (const worker of row.workers) rows.push({ kind: 'worker', row, worker, ...(span.end !== undefined ? { hostEnd: span.end } : {}) });
    }
  }

  const times = [runStart, runEnd];
  for (const r of rows) {
    if (r.kind === 'host') times.push(...[r.start, r.end].filter((t): t is number => t !== undefined));
    if (r.kind === 'worker') for (const a of r.worker.attempts) times.push(...attemptTimes(a));
  }
  const t0 = Math.min(...times);
  const t1 = Math.max(...times, t0 + 1000);
  const x = (t: number) => PLOT_LEFT + ((t - t0) / (t1 - t0)) * (PLOT_RIGHT - PLOT_LEFT);

  const failed = summary.exitCode !== 0;
  const errorLines = summary.error ? errorBlock(summary) : [];
  const headerHeight = 62 + (errorLines.length > 0 ? errorLines.length * 17 + 20 : 0);
  const axisTop = headerHeight + 22;
  const rowsTop = axisTop + 8;
  const rowsHeight = rows.reduce((sum, r) => sum + ROW_HEIGHT[r.kind], 0);
  const axisBottom = rowsTop + rowsHeight + 6;
  const legend = legendItems(summary, rows);
  const legendRows = Math.ceil(legend.length / 3);
  const height = axisBottom + 28 + legendRows * 20 + 10;

  const doc = create({ version: '1.0', encoding: 'UTF-8', invalidCharReplacement: REPLACEMENT }).ele('svg', {
    xmlns: 'http://www.w3.org/2000/svg',
    width: WIDTH,
    height,
    viewBox: `0 0 ${WIDTH} ${height}`,
    'font-family': 'DejaVu Sans, Helvetica, Arial, sans-serif',
    'font-size': 12,
  });
  const defs = doc.ele('defs');
  hatch(defs, 'gate-failed', colour.gateFailed, '#ffffff');
  hatch(defs, 'rollback', colour.rollback, 'none');
  doc.ele('rect', { x: 0, y: 0, width: WIDTH, height, fill: '#ffffff' });

  // title: what ran and whether it worked, readable from across the room
  const head = doc.ele('text', { x: 16, y: 30, 'font-size': 20, 'font-weight': 'bold', fill: colour.text });
  head.ele('tspan').txt(`voxops ${summary.operation} ${summary.role}${summary.tag ? ` ${summary.tag}` : ''}  `);
  head.ele('tspan', { fill: failed ? colour.error : colour.ok }).txt(failed ? `FAILED (exit ${summary.exitCode})` : 'ok');
  const counts = anyHostStarted(summary) ? [`${summary.hosts.length} host${summary.hosts.length === 1 ? '' : 's'}`] : ['no host changed'];
  const workers = new Set(summary.workers.map((w) => `${w.host}#${w.worker}`)).size;
  if (workers > 0) counts.push(`${workers} worker${workers === 1 ? '' : 's'}`);
  text(doc, 16, 52, `started ${summary.startedAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')} · took ${duration(summary.durationMs)} · ${counts.join(' · ')}`, { fill: colour.muted });

  if (errorLines.length > 0) {
    const top = 64;
    doc.ele('rect', { x: 12, y: top, width: WIDTH - 24, height: errorLines.length * 17 + 12, rx: 4, fill: '#fff5f5', stroke: colour.error, 'stroke-width': 1.5 });
    errorLines.forEach((line, i) => text(doc, 24, top + 20 + i * 17, line.text, { fill: line.strong ? colour.error : colour.text, ...(line.strong ? { 'font-weight': 'bold' } : {}) }));
  }

  // the axis, top and bottom, with a grid the rows sit on
  const axis = ticks(t1 - t0);
  text(doc, 16, axisTop - 6, axis.caption, { fill: colour.muted, 'font-size': 11 });
  doc.ele('line', { x1: PLOT_LEFT, y1: axisTop, x2: PLOT_RIGHT, y2: axisTop, stroke: colour.axis });
  doc.ele('line', { x1: PLOT_LEFT, y1: axisBottom, x2: PLOT_RIGHT, y2: axisBottom, stroke: colour.axis });
  for (let offset = 0; offset <= t1 - t0 + 1; offset += axis.step) {
    const px = x(t0 + offset).toFixed(1);
    doc.ele('line', { x1: px, y1: axisTop, x2: px, y2: axisBottom, stroke: colour.grid });
    doc.ele('line', { x1: px, y1: axisTop - 4, x2: px, y2: axisTop, stroke: colour.axis });
    doc.ele('line', { x1: px, y1: axisBottom, x2: px, y2: axisBottom + 4, stroke: colour.axis });
    text(doc, Number(px), axisTop - 6, axis.label(offset), { 'text-anchor': 'middle', fill: colour.muted, 'font-size': 11 });
    text(doc, Number(px), axisBottom + 16, axis.label(offset), { 'text-anchor': 'middle', fill: colour.muted, 'font-size': 11 });
  }

  let y = rowsTop;
  const firstHostStart = Math.min(...rows.flatMap((r) => (r.kind === 'host' && r.start !== undefined && r.row.outcome && hostStarted(r.row.outcome) ? [r.start] : [])));
  for (const r of rows) {
    const h = ROW_HEIGHT[r.kind];
    const mid = y + h / 2;
    if (r.kind === 'group') {
      doc.ele('line', { x1: 12, y1: y + 4, x2: PLOT_RIGHT, y2: y + 4, stroke: colour.axis });
      // the role heads its hosts in capitals and grey, so it does not read as one more host
      text(doc, 16, y + 19, r.role.toUpperCase(), { 'font-weight': 'bold', 'font-size': 11, 'letter-spacing': 1, fill: colour.muted });
    } else if (r.kind === 'preflight') {
      const refused = Boolean(summary.error) && !anyHostStarted(summary);
      const style = outcomeStyle[refused ? 'refused' : summary.hosts.every((o) => o.outcome === 'planned') && summary.hosts.length > 0 ? 'planned' : 'passed'];
      if (refused) failedBand(doc, y, h);
      text(doc, 16, mid + 4, 'preflight', { fill: colour.text });
      status(doc, mid, style.label, style.stroke, refused);
      const end = Number.isFinite(firstHostStart) ? firstHostStart : runEnd;
      bar(doc, x(runStart), x(end), mid - 6, 12, { fill: style.fill, stroke: style.stroke }, `preflight: ${style.label}, ${duration(end - runStart)}`);
    } else if (r.kind === 'host') {
      const o = r.row.outcome;
      const style = outcomeStyle[o?.outcome ?? 'success'];
      const bad = o !== undefined && (o.outcome === 'failed' || o.outcome === 'rolled-back' || o.outcome === 'interrupted');
      if (bad) failedBand(doc, y, h);
      text(doc, 16, mid + 4, fit(r.row.host, 18), { 'font-weight': 'bold', fill: colour.text });
      if (o) status(doc, mid, `${style.label}${hostStarted(o) ? ` · ${duration(o.durationMs)}` : ''}`, style.stroke, bad);
      if (o?.outcome === 'not-started') {
        text(doc, PLOT_LEFT + 4, mid + 4, 'not started', { fill: colour.muted, 'font-style': 'italic' });
      } else if (r.start !== undefined && r.end !== undefined) {
        const tip = o ? `${r.row.host} (${r.row.role}): ${o.from ?? '(none)'} -> ${o.to}, ${style.label}, ${duration(o.durationMs)}${o.message ? `: ${o.message}` : ''}` : r.row.host;
        bar(doc, x(r.start), x(r.end), mid - 7, 14, { fill: style.fill, stroke: style.stroke, ...(o?.outcome === 'planned' ? { 'stroke-dasharray': '4 3' } : {}) }, tip);
        if (o?.downMs !== undefined && o.downMs > 0) {
          // the down window closes the host's change: restart -> healthy is its last step
          const from = Math.max(r.start, r.end - o.downMs);
          bar(doc, x(from), x(r.end), mid - 7, 14, { fill: colour.down }, `down (restart -> healthy, nothing served): ${duration(o.downMs)}`);
          note(doc, [[x(r.start), x(r.end)]], x(r.end), x(r.start), mid + 4, `down ${duration(o.downMs)}`, colour.down);
        }
      }
    } else {
      const verdict = workerVerdict(r.worker);
      if (verdict.kind === 'failed') failedBand(doc, y, h);
      text(doc, 34, mid + 4, fit(`worker ${r.worker.worker} · ${r.worker.unit}`, 24), { fill: colour.text, 'font-size': 11 });
      const said =
        verdict.kind === 'failed' ? { text: 'GATE FAILED', colour: colour.error, strong: true }
        : verdict.kind === 'skipped' ? { text: r.worker.attempts.at(-1)!.outcome === 'untouched' ? 'put back, unchanged' : 'skipped (call too long)', colour: '#e8590c', strong: false }
        : verdict.rolledBack ? { text: 'rolled back', colour: colour.rollback, strong: false }
        : { text: 'rolled', colour: colour.muted, strong: false };
      status(doc, mid, said.text, said.colour, said.strong, 11);
      drawWorker(doc, x, mid, r, options);
    }
    y += h;
  }

  // legend: only what the picture uses, so each swatch means something here
  const legendTop = axisBottom + 30;
  legend.forEach((item, i) => {
    const lx = 16 + (i % 3) * 360;
    const ly = legendTop + Math.floor(i / 3) * 20;
    doc.ele('rect', { x: lx, y: ly - 10, width: 22, height: 12, fill: item.fill, stroke: item.stroke ?? 'none' });
    if (item.pattern) doc.ele('rect', { x: lx, y: ly - 10, width: 22, height: 12, fill: `url(#${item.pattern})` });
    text(doc, lx + 30, ly, item.label, { fill: colour.text, 'font-size': 11 });
  });
  return doc.end({ prettyPrint: true });
}

/** When a host's change ran. A summary without startedAt (older events) places it after the host before. */
function hostSpan(row: HostRow, previousEnd: number): { start?: number; end?: number } {
  const o = row.outcome;
  const workerTimes = row.workers.flatMap((w) => w.attempts.flatMap(attemptTimes));
  if (o && !hostStarted(o)) return {};
  if (o?.startedAt !== undefined) return { start: o.startedAt, end: o.startedAt + o.durationMs };
  if (workerTimes.length > 0) {
    const end = Math.max(...workerTimes);
    return { start: o ? Math.min(Math.min(...workerTimes), end - o.durationMs) : Math.min(...workerTimes), end };
  }
  return o ? { start: previousEnd, end: previousEnd + o.durationMs } : {};
}

function attemptTimes(a: WorkerTimeline): number[] {
  return [a.drainedAt, a.idleAt, a.restartedAt, a.healthyAt, a.inRotationAt].filter((t): t is number => t !== undefined);
}

type Attrs = Record<string, string | number>;

function text(parent: XMLBuilder, x: number, y: number, content: string, attrs: Attrs = {}): void {
  parent.ele('text', { x: x.toFixed(1), y: y.toFixed(1), ...attrs }).txt(content);
}

/** How the row ended, right-aligned in the label column; a failure gets a red badge. */
function status(parent: XMLBuilder, mid: number, label: string, fill: string, badge: boolean, size = 11): void {
  if (badge) {
    // bold capitals run wider than the average glyph
    const w = [...label].reduce((sum, c) => sum + size * (/[A-Z0-9]/.test(c) ? 0.74 : 0.6), 12);
    parent.ele('rect', { x: (LABELS - w).toFixed(1), y: (mid - 8).toFixed(1), width: w.toFixed(1), height: 16, rx: 3, fill });
    text(parent, LABELS - 6, mid + 4, label, { 'text-anchor': 'end', fill: '#ffffff', 'font-size': size, 'font-weight': 'bold' });
  } else {
    text(parent, LABELS - 6, mid + 4, label, { 'text-anchor': 'end', fill, 'font-size': size });
  }
}

function bar(parent: XMLBuilder, x1: number, x2: number, y: number, h: number, attrs: Attrs, tip: string): XMLBuilder {
  const rect = parent.ele('rect', { x: x1.toFixed(1), y: y.toFixed(1), width: Math.max(2, x2 - x1).toFixed(1), height: h, ...attrs });
  rect.ele('title').txt(oneLine(tip, 600));
  return rect;
}

/** What is already drawn on a row, left to right, so a label does not land on a bar or another label. */
type Lane = [number, number][];

const free = (lane: Lane, x1: number, x2: number) => x1 >= PLOT_LEFT - 2 && x2 <= WIDTH - 8 && lane.every(([a, b]) => x2 <= a || x1 >= b);

/** A label beside a bar: after its end, else before its start, else left out (the legend and tooltip still say it). */
function note(parent: XMLBuilder, lane: Lane, after: number, before: number, y: number, label: string, fill: string): void {
  const width = label.length * CHAR;
  const attrs = { fill, 'font-size': 11, 'font-weight': 'bold' };
  if (free(lane, after + 4, after + 6 + width)) {
    text(parent, after + 6, y, label, attrs);
    lane.push([after + 4, after + 6 + width]);
  } else if (free(lane, before - 6 - width, before - 4)) {
    text(parent, before - 6, y, label, { ...attrs, 'text-anchor': 'end' });
    lane.push([before - 6 - width, before - 4]);
  }
}

function failedBand(parent: XMLBuilder, y: number, h: number): void {
  parent.ele('rect', { x: 4, y: y + 1, width: WIDTH - 8, height: h - 2, fill: colour.failedRow });
  parent.ele('rect', { x: 4, y: y + 1, width: 4, height: h - 2, fill: colour.error });
}

function hatch(defs: XMLBuilder, id: string, stroke: string, background: string): void {
  const p = defs.ele('pattern', { id, patternUnits: 'userSpaceOnUse', width: 6, height: 6, patternTransform: 'rotate(45)' });
  if (background !== 'none') p.ele('rect', { x: 0, y: 0, width: 6, height: 6, fill: background });
  // thin enough that the phases under a rollback's hatching still show
  p.ele('line', { x1: 0, y1: 0, x2: 0, y2: 6, stroke, 'stroke-width': background === 'none' ? 1.5 : 3 });
}

function drawWorker(doc: XMLBuilder, x: (t: number) => number, mid: number, r: Extract<Row, { kind: 'worker' }>, options: PictureOptions): void {
  const attempts = r.worker.attempts;
  const top = mid - 6;
  const lane: Lane = [];
  const notes: { after: number; before: number; label: string; fill: string }[] = [];
  const draw = (x1: number, x2: number, y: number, h: number, attrs: Attrs, tip: string) => {
    bar(doc, x1, x2, y, h, attrs, tip);
    lane.push([x1, Math.max(x2, x1 + 2)]);
  };
  // what the host did after a moment, across all its workers: a gate without a known timeout ended by then
  const hostTimes = r.row.workers.flatMap((w) => w.attempts.flatMap(attemptTimes));
  attempts.forEach((a) => {
    const rollback = a.outcome === 'rolled-back';
    const stroke: Attrs = rollback ? { stroke: colour.rollback, 'stroke-width': 1 } : {};
    const who = `worker ${a.worker}${rollback ? ' (rollback)' : ''}`;
    const idle = a.idleAt ?? a.restartedAt;
    if (a.drainedAt !== undefined && idle !== undefined) {
      draw(x(a.drainedAt), x(idle), top, 12, { fill: colour.waiting, ...stroke }, `${who}: waiting for its call to end, ${duration(idle - a.drainedAt)}`);
    }
    if (idle !== undefined && a.healthyAt !== undefined) {
      draw(x(idle), x(a.healthyAt), top, 12, { fill: colour.down, ...stroke }, `${who}: down (restart -> healthy), ${duration(a.downtimeMs ?? a.healthyAt - idle)}`);
    }
    if (a.healthyAt !== undefined && a.inRotationAt !== undefined) {
      draw(x(a.healthyAt), x(a.inRotationAt), top, 12, { fill: colour.readmission, ...stroke }, `${who}: healthy, waiting out nginx fail_timeout, ${duration(a.inRotationAt - a.healthyAt)}`);
    }
    if (a.outcome === 'failed' && a.healthyAt === undefined) {
      const from = a.restartedAt ?? a.idleAt ?? a.drainedAt;
      if (from === undefined) return;
      const timeout = options.gateTimeoutMs?.[r.row.role];
      const later = hostTimes.filter((t) => t > from);
      const until = timeout !== undefined ? from + timeout : later.length > 0 ? Math.min(...later) : (r.hostEnd ?? from + 1000);
      draw(x(from), x(until), top - 2, 16, { fill: 'url(#gate-failed)', stroke: colour.gateFailed, 'stroke-width': 1.5 }, `${who}: health gate failed after ${duration(until - from)} (restarted, never healthy on the new release)`);
      notes.push({ after: x(until), before: x(from), label: 'gate failed', fill: colour.gateFailed });
    }
    if (a.outcome === 'skipped' && a.drainedAt !== undefined) {
      notes.push({ after: x(Math.max(...attemptTimes(a))), before: x(a.drainedAt), label: 'skipped', fill: '#e8590c' });
    }
    if (rollback) {
      const times = attemptTimes(a);
      if (times.length === 0) return;
      bar(doc, x(Math.min(...times)), x(Math.max(...times)), top, 12, { fill: 'url(#rollback)' }, `${who}: back on ${a.version ?? 'the previous release'}`);
      notes.push({ after: x(Math.max(...times)), before: x(Math.min(...times)), label: `rollback → ${a.version ?? 'previous'}`, fill: colour.rollback });
    }
  });
  for (const n of notes) note(doc, lane, n.after, n.before, mid + 4, n.label, n.fill);
}

interface LegendItem {
  fill: string;
  stroke?: string;
  pattern?: string;
  label: string;
}

function legendItems(summary: OperationSummary, rows: Row[]): LegendItem[] {
  const items: LegendItem[] = [];
  const seen = new Set(summary.hosts.filter(hostStarted).map((h) => h.outcome));
  for (const outcome of ['success', 'rolled-back', 'failed', 'interrupted', 'planned'] as const) {
    if (seen.has(outcome)) items.push({ fill: outcomeStyle[outcome].fill, stroke: outcomeStyle[outcome].stroke, label: `host ${outcomeStyle[outcome].label.toLowerCase()}` });
  }
  const attempts = rows.flatMap((r) => (r.kind === 'worker' ? r.worker.attempts : []));
  if (attempts.length > 0) items.push({ fill: colour.waiting, label: 'worker drained, waiting for its call' });
  if (attempts.length > 0 || summary.hosts.some((h) => (h.downMs ?? 0) > 0)) items.push({ fill: colour.down, label: 'down: restart → healthy, nothing served' });
  if (attempts.length > 0) {
    if (attempts.some((a) => a.inRotationAt !== undefined)) items.push({ fill: colour.readmission, label: 'healthy, waiting out nginx fail_timeout' });
  }
  if (attempts.some((a) => a.outcome === 'failed')) items.push({ fill: '#ffffff', stroke: colour.gateFailed, pattern: 'gate-failed', label: 'health gate failed' });
  if (attempts.some((a) => a.outcome === 'rolled-back')) items.push({ fill: '#ffffff', stroke: colour.rollback, pattern: 'rollback', label: 'rollback to the previous release' });
  return items;
}

/** The error box: the message wrapped, what to run next, and the first problems. */
function errorBlock(summary: OperationSummary): { text: string; strong: boolean }[] {
  const error = summary.error!;
  const width = Math.floor((WIDTH - 60) / CHAR);
  const lines = wrap(oneLine(error.message, 2000), width).slice(0, 4).map((text) => ({ text, strong: true }));
  if (error.next) lines.push(...wrap(`Next: ${oneLine(error.next, 1000)}`, width).slice(0, 2).map((text) => ({ text, strong: false })));
  const problems = error.problems ?? [];
  for (const problem of problems.slice(0, 6)) lines.push(...wrap(`• ${oneLine(problem)}`, width).slice(0, 2).map((text, i) => ({ text: i === 0 ? text : `   ${text}`, strong: false })));
  if (problems.length > 6) lines.push({ text: `… and ${problems.length - 6} more (voxops-summary.md has every one)`, strong: false });
  return lines;
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = '';
    }
    line = line ? `${line} ${word}` : word.length > width ? fit(word, width) : word;
  }
  if (line) lines.push(line);
  return lines;
}

const fit = (text: string, max: number) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

/** A step that gives 4 to 10 ticks, labelled the way the span is best read. */
function ticks(spanMs: number): { step: number; label: (offsetMs: number) => string; caption: string } {
  const steps = [100, 200, 500, 1000, 2000, 5000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000, 1_800_000, 3_600_000, 7_200_000, 14_400_000];
  const step = steps.find((s) => spanMs / s <= 10) ?? 28_800_000;
  if (spanMs < 120_000) {
    const digits = step < 1000 ? 1 : 0;
    return { step, label: (ms) => `${(ms / 1000).toFixed(digits)} s`, caption: 'seconds since start' };
  }
  if (spanMs < 3 * 3_600_000) {
    return { step, label: (ms) => `${Math.floor(ms / 60_000)}:${String(Math.round((ms % 60_000) / 1000)).padStart(2, '0')}`, caption: 'min:s since start' };
  }
  return { step, label: (ms) => `${Math.floor(ms / 3_600_000)}:${String(Math.round((ms % 3_600_000) / 60_000)).padStart(2, '0')}`, caption: 'h:min since start' };
}
