import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { create } from 'xmlbuilder2';
import type { OperationSummary, WorkerTimeline } from '../events.js';

/**
 * `--report DIR`: what Jenkins archives after a run. JUnit XML (one testcase per host and per
 * worker step, so a failed gate shows up as a failed test), the JSON summary, a Markdown timeline,
 * and an SVG picture of the roll.
 */
export function writeReports(dir: string, summary: OperationSummary): string[] {
  mkdirSync(dir, { recursive: true });
  const files = {
    'voxops-junit.xml': junit(summary),
    'voxops-report.json': `${JSON.stringify(summary, null, 2)}\n`,
    'voxops-summary.md': markdown(summary),
    'voxops-roll.svg': svg(summary),
  };
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  return Object.keys(files).map((name) => join(dir, name));
}

const secs = (ms: number | undefined) => (ms === undefined ? 0 : ms / 1000);
const at = (ms: number | undefined) => (ms === undefined ? '-' : new Date(ms).toISOString().slice(11, 23));

export function junit(summary: OperationSummary): string {
  const name = `voxops ${summary.operation} ${summary.role}${summary.tag ? ` ${summary.tag}` : ''}`;
  const cases = [
    ...summary.hosts.map((h) => ({
      classname: `${summary.role}.${h.host}`,
      name: `${summary.operation} ${h.from ?? '-'} -> ${h.to}`,
      time: secs(h.durationMs),
      failure: ['success', 'planned', 'not-started'].includes(h.outcome) ? undefined : `${h.outcome}${h.message ? `: ${h.message}` : ''}`,
      skipped: h.outcome === 'not-started',
    })),
    ...summary.workers.map((w) => ({
      classname: `${summary.role}.${w.host}`,
      name: `worker ${w.worker} (${w.unit}) ${w.outcome}`,
      time: secs(w.outOfRotationMs),
      failure: w.outcome === 'failed' ? `worker ${w.worker} failed its gate` : undefined,
      skipped: w.outcome === 'skipped',
    })),
  ];
  const root = create({ version: '1.0', encoding: 'UTF-8' }).ele('testsuites', { name });
  const suite = root.ele('testsuite', {
    name,
    tests: cases.length,
    failures: cases.filter((c) => c.failure).length,
    skipped: cases.filter((c) => c.skipped && !c.failure).length,
    time: secs(summary.durationMs).toFixed(3),
    timestamp: summary.startedAt,
  });
  for (const c of cases) {
    const tc = suite.ele('testcase', { classname: c.classname, name: c.name, time: c.time.toFixed(3) });
    if (c.failure) tc.ele('failure', { message: c.failure }).txt(c.failure);
    else if (c.skipped) tc.ele('skipped');
  }
  return root.end({ prettyPrint: true });
}

export function markdown(summary: OperationSummary): string {
  const lines = [
    `# voxops ${summary.operation} ${summary.role}${summary.tag ? ` ${summary.tag}` : ''}: ${summary.exitCode === 0 ? 'ok' : `FAILED (exit ${summary.exitCode})`}`,
    '',
    `Started ${summary.startedAt}, took ${secs(summary.durationMs).toFixed(1)} s.`,
    '',
    '| host | from | to | outcome | took |',
    '|---|---|---|---|---|',
    ...summary.hosts.map((h) => `| ${h.host} | ${h.from ?? '-'} | ${h.to} | ${h.outcome} | ${secs(h.durationMs).toFixed(1)} s |`),
  ];
  if (summary.workers.length > 0) {
    lines.push(
      '',
      '## Timeline (UTC)',
      '',
      '| host | worker | drained | idle | restarted | healthy | back in rotation | waited for call | down (restart to healthy) | out of rotation |',
      '|---|---|---|---|---|---|---|---|---|---|',
      ...summary.workers.map(
        (w) =>
          `| ${w.host} | ${w.worker} | ${at(w.drainedAt)} | ${at(w.idleAt)} | ${at(w.restartedAt)} | ${at(w.healthyAt)} | ${at(w.inRotationAt)} | ${w.idleAt && w.drainedAt ? `${secs(w.idleAt - w.drainedAt).toFixed(2)} s` : '-'} | ${w.downtimeMs === undefined ? '-' : `${secs(w.downtimeMs).toFixed(2)} s`} | ${w.outOfRotationMs === undefined ? '-' : `${secs(w.outOfRotationMs).toFixed(2)} s`} |`,
      ),
    );
  }
  return `${lines.join('\n')}\n`;
}

/** One row per worker: waiting for its call (amber), down (red), healthy but not yet readmitted by nginx (grey). */
export function svg(summary: OperationSummary): string {
  const rows: WorkerTimeline[] = summary.workers.filter((w) => w.drainedAt !== undefined);
  const t0 = Math.min(...rows.map((w) => w.drainedAt!), Date.parse(summary.startedAt));
  const t1 = Math.max(...rows.map((w) => w.inRotationAt ?? w.healthyAt ?? w.drainedAt!), t0 + 1);
  const width = 900;
  const left = 150;
  const rowHeight = 22;
  const x = (t: number) => left + ((t - t0) / (t1 - t0)) * (width - left - 20);
  const height = 50 + rows.length * rowHeight + 30;
  const doc = create().ele('svg', { xmlns: 'http://www.w3.org/2000/svg', width, height, viewBox: `0 0 ${width} ${height}`, 'font-family': 'sans-serif', 'font-size': 12 });
  doc.ele('text', { x: 10, y: 20, 'font-size': 14 }).txt(`voxops ${summary.operation} ${summary.role}${summary.tag ? ` ${summary.tag}` : ''}: ${secs(summary.durationMs).toFixed(1)} s`);
  rows.forEach((w, i) => {
    const y = 40 + i * rowHeight;
    doc.ele('text', { x: 10, y: y + 14 }).txt(`${w.host} #${w.worker}`);
    const bar = (from: number | undefined, to: number | undefined, fill: string, title: string) => {
      if (from === undefined || to === undefined || to < from) return;
      doc.ele('rect', { x: x(from).toFixed(1), y, width: Math.max(1, x(to) - x(from)).toFixed(1), height: rowHeight - 6, fill }).ele('title').txt(title);
    };
    bar(w.drainedAt, w.restartedAt ?? w.idleAt, '#f0b429', `waiting for the call to end: ${secs((w.idleAt ?? w.drainedAt!) - w.drainedAt!).toFixed(2)} s`);
    bar(w.restartedAt, w.healthyAt, '#d64545', `down (restart to healthy): ${secs(w.downtimeMs).toFixed(2)} s`);
    bar(w.healthyAt, w.inRotationAt, '#9fb3c8', 'healthy, waiting for nginx fail_timeout');
  });
  const legendY = height - 12;
  [['#f0b429', 'waiting for its call'], ['#d64545', 'restarting'], ['#9fb3c8', 'healthy, not yet back in nginx']].forEach(([fill, label], i) => {
    doc.ele('rect', { x: 10 + i * 220, y: legendY - 10, width: 12, height: 12, fill });
    doc.ele('text', { x: 28 + i * 220, y: legendY }).txt(label!);
  });
  return doc.end({ prettyPrint: true });
}
