import { mkdirSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { create } from 'xmlbuilder2';
import type { OperationError, OperationSummary } from '../events.js';
import { anyHostStarted, hostStarted, roleGroups, workerVerdict, type WorkerAttempts } from './model.js';
import { svg, type PictureOptions } from './svg.js';
import { REPLACEMENT, duration, oneLine, printable, seconds } from './text.js';

// the one place src/report names where the summary types live
export type { HostOutcome, OperationError, OperationSummary, WorkerTimeline } from '../events.js';
export { svg, type PictureOptions } from './svg.js';

/** What writeReports wrote, and why it stopped if it did not write everything. */
export type WrittenReports = string[] & {
  /** one line for a warning, e.g. `reports not written to /proc/x: ENOENT: no such file or directory, mkdir '/proc/x'` */
  problem?: string;
};

export const REPORT_FILES = ['voxops-junit.xml', 'voxops-report.json', 'voxops-summary.md', 'voxops-roll.svg'] as const;

/**
 * `--report DIR`: what Jenkins archives after a run. JUnit XML (a testcase per host and per worker,
 * under names that do not change with the outcome, so Jenkins keeps each one's history), the JSON
 * summary, a Markdown summary and an SVG picture of the run.
 *
 * Contract for the caller (the CLI writes reports in a `finally`, after the operation's own error):
 * - It never throws and never blocks on a path that cannot be created (`/proc/x`, a file in the
 *   way, a read-only directory): it returns at the first file-system error.
 * - The result is the list of files written, in REPORT_FILES order (an array, so `files.join(', ')`
 *   keeps working). When `problem` is set, some or all were not written: print it as a warning and
 *   keep the operation's exit code. Never turn it into an exit code of its own.
 * - Each file is written beside its final name and renamed into place, so Jenkins never archives a
 *   half-written XML file; a file that could not be written is not left behind.
 */
export function writeReports(dir: string, summary: OperationSummary, options: PictureOptions = {}): WrittenReports {
  const written: string[] = [];
  const result = (problem?: string): WrittenReports => Object.assign(written, problem ? { problem } : {});
  try {
    ensureDirectory(dir);
  } catch (error) {
    return result(`reports not written to ${dir}: ${reason(error)}`);
  }
  const render: Record<(typeof REPORT_FILES)[number], () => string> = {
    'voxops-junit.xml': () => junit(summary),
    'voxops-report.json': () => `${JSON.stringify(summary, null, 2)}\n`,
    'voxops-summary.md': () => markdown(summary),
    'voxops-roll.svg': () => svg(summary, options),
  };
  for (const name of REPORT_FILES) {
    const path = join(dir, name);
    const partial = `${path}.${process.pid}.partial`;
    try {
      writeFileSync(partial, render[name]());
      renameSync(partial, path);
      written.push(path);
    } catch (error) {
      try {
        unlinkSync(partial);
      } catch {
        // never created: the write itself failed
      }
      const rest = REPORT_FILES.slice(REPORT_FILES.indexOf(name)).join(', ');
      return result(`reports not written to ${dir} (${rest}): ${reason(error)}`);
    }
  }
  return result();
}

const reason = (error: unknown) => oneLine(error instanceof Error ? error.message : String(error));

/**
 * mkdir -p, one level at a time. Node's recursive mkdirSync never returns for a path under /proc
 * (ENOENT from a directory that exists makes it retry forever, ignoring signals), and the report
 * is written after the operation, so it must not be able to hang the run.
 */
function ensureDirectory(dir: string): void {
  const missing: string[] = [];
  for (let path = resolve(dir); ; path = dirname(path)) {
    let isDirectory: boolean;
    try {
      isDirectory = statSync(path).isDirectory();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(path) === path) throw error;
      missing.unshift(path);
      continue;
    }
    if (!isDirectory) throw new Error(`${path} is not a directory`);
    break;
  }
  for (const path of missing) mkdirSync(path);
}

/** The error as a reader needs it: what happened, what to run next, every problem. */
function errorText(error: OperationError): string {
  const lines = [printable(error.message)];
  if (error.next) lines.push(`Next: ${printable(error.next)}`);
  for (const problem of error.problems ?? []) lines.push(`  - ${printable(problem).replace(/\n/g, '\n    ')}`);
  return lines.join('\n');
}

const title = (s: OperationSummary) => `voxops ${s.operation} ${s.role}${s.tag ? ` ${s.tag}` : ''}`;
// Jenkins splits a classname at dots into package and class: a dotted host name must stay one part
const classPart = (name: string) => name.replace(/\./g, '_');

interface Case {
  kind: 'preflight' | 'host' | 'worker' | 'run';
  classname: string;
  name: string;
  /** the host the case is about, so the operation's error lands on the case it concerns */
  host?: string;
  timeMs: number;
  failure?: { message: string; body: string };
  skipped?: string;
}

const workerName = (operation: string, w: WorkerAttempts) => `${operation} worker ${w.worker} (${w.unit}) on ${w.host}`;

function workerCase(operation: string, role: string, w: WorkerAttempts, hostMessage: string | undefined): Case {
  const verdict = workerVerdict(w);
  const first = w.attempts[0]!;
  const base: Case = {
    kind: 'worker',
    classname: `${role}.${classPart(w.host)}`,
    name: workerName(operation, w),
    host: w.host,
    timeMs: first.outOfRotationMs ?? 0,
  };
  if (verdict.kind === 'skipped') return { ...base, skipped: verdict.why };
  if (verdict.kind === 'passed') return base;
  const lines = [`worker ${w.worker} (${w.unit}) failed its health gate${verdict.rolledBack ? '; it was rolled back' : ''}`];
  for (const a of w.attempts) lines.push(`  ${a.outcome}: ${phases(a)}`);
  if (hostMessage && hostMessage.includes(`worker ${w.worker} `)) lines.push('', printable(hostMessage));
  return { ...base, failure: { message: oneLine(lines[0]!), body: lines.join('\n') } };
}

function phases(w: {
  drainedAt?: number;
  idleAt?: number;
  restartedAt?: number;
  healthyAt?: number;
  inRotationAt?: number;
  version?: string;
}): string {
  const at = (label: string, t: number | undefined) => (t === undefined ? undefined : `${label} ${clock(t)}`);
  const parts = [
    at('drained', w.drainedAt),
    at('idle', w.idleAt),
    at('restarted', w.restartedAt),
    at('healthy', w.healthyAt),
    at('back in rotation', w.inRotationAt),
  ].filter(Boolean);
  if (w.restartedAt !== undefined && w.healthyAt === undefined) parts.push('never healthy');
  if (w.version) parts.push(`on ${w.version}`);
  return parts.join(', ') || 'no phase recorded';
}

function cases(summary: OperationSummary): Case[] {
  const op = summary.operation;
  const started = anyHostStarted(summary);
  const firstStart = Math.min(...summary.hosts.flatMap((h) => (h.startedAt === undefined ? [] : [h.startedAt])));
  const preflightMs = Number.isFinite(firstStart) ? Math.max(0, firstStart - Date.parse(summary.startedAt)) : summary.durationMs;
  const out: Case[] = [];
  // always present, so a run that stops before any host has the same test as one that goes on
  out.push({
    kind: 'preflight',
    classname: `${classPart(summary.role)}.preflight`,
    name: `${op} ${summary.role} preflight`,
    timeMs: preflightMs,
    ...(summary.error && !started ? { failure: { message: oneLine(summary.error.message), body: errorText(summary.error) } } : {}),
  });
  for (const group of roleGroups(summary)) {
    for (const row of group.hosts) {
      const h = row.outcome;
      if (h) {
        const base: Case = {
          kind: 'host',
          classname: `${classPart(row.role)}.${classPart(row.host)}`,
          name: `${op} ${row.role} on ${row.host}`,
          host: row.host,
          timeMs: h.durationMs,
        };
        if (h.outcome === 'not-started') out.push({ ...base, skipped: 'not started: the run stopped before this host' });
        else if (h.outcome === 'success' || h.outcome === 'planned') out.push(base);
        else {
          const what = `${row.role} on ${row.host}: ${h.outcome}${hostStarted(h) ? ` after ${duration(h.durationMs)}` : ''}`;
          out.push({
            ...base,
            failure: {
              message: oneLine(`${what}${h.message ? `: ${h.message}` : ''}`),
              body: `${what}\n${printable(h.message ?? '')}`.trimEnd(),
            },
          });
        }
      }
      for (const w of row.workers) out.push(workerCase(op, row.role, w, h?.message));
    }
  }
  if (summary.error && started) {
    const error = summary.error;
    const failing = out.filter((c) => c.failure);
    const hosts = failing.filter((c) => c.kind === 'host');
    const about = hosts.find((c) => c.host !== undefined && error.message.includes(c.host)) ?? hosts[0] ?? failing[0];
    if (about) about.failure!.body += `\n\n${errorText(error)}`;
    else
      out.push({
        kind: 'run',
        classname: `${classPart(summary.role)}.run`,
        name: `${op} ${summary.role}`,
        timeMs: summary.durationMs,
        failure: { message: oneLine(error.message), body: errorText(error) },
      });
  }
  return out;
}

export function junit(summary: OperationSummary): string {
  const all = cases(summary);
  const name = `voxops ${summary.operation} ${summary.role}`;
  const root = create({ version: '1.0', encoding: 'UTF-8', invalidCharReplacement: REPLACEMENT }).ele('testsuites', { name });
  const suite = root.ele('testsuite', {
    name,
    tests: all.length,
    failures: all.filter((c) => c.failure).length,
    errors: 0,
    skipped: all.filter((c) => c.skipped !== undefined && !c.failure).length,
    time: seconds(summary.durationMs).toFixed(3),
    timestamp: summary.startedAt,
  });
  // the tag and exit code change from run to run, so they live here and not in any test's name
  const properties = suite.ele('properties');
  if (summary.tag) properties.ele('property', { name: 'tag', value: printable(summary.tag) });
  properties.ele('property', { name: 'exitCode', value: String(summary.exitCode) });
  for (const c of all) {
    const tc = suite.ele('testcase', { classname: printable(c.classname), name: printable(c.name), time: seconds(c.timeMs).toFixed(3) });
    if (c.failure)
      tc.ele('failure', { message: c.failure.message, type: summary.exitCode ? `exit ${summary.exitCode}` : 'failed' }).txt(c.failure.body);
    else if (c.skipped !== undefined) tc.ele('skipped', { message: oneLine(c.skipped) });
  }
  if (summary.error) suite.ele('system-err').txt(errorText(summary.error));
  return root.end({ prettyPrint: true });
}

const clock = (ms: number | undefined) => (ms === undefined ? '-' : new Date(ms).toISOString().slice(11, 23));
const cell = (text: string) => oneLine(text, 200).replace(/\|/g, '\\|');

export function markdown(summary: OperationSummary): string {
  const lines = [
    `# ${cell(title(summary))}: ${summary.exitCode === 0 ? 'ok' : `FAILED (exit ${summary.exitCode})`}`,
    '',
    `Started ${summary.startedAt}, took ${duration(summary.durationMs)}.`,
  ];
  if (summary.error) {
    const text = errorText(summary.error);
    // a fence longer than any backtick run inside, so remote output cannot close it
    const fence = '`'.repeat(Math.max(3, ...[...text.matchAll(/`+/g)].map((m) => m[0].length + 1)));
    lines.push('', '## Error', '', `${fence}text`, text, fence);
  }
  if (summary.hosts.length > 0) {
    lines.push(
      '',
      '| role | host | from | to | outcome | took | down |',
      '|---|---|---|---|---|---|---|',
      ...summary.hosts.map(
        (h) =>
          `| ${cell(h.role)} | ${cell(h.host)} | ${cell(h.from ?? '-')} | ${cell(h.to)} | ${h.outcome}${h.message ? `: ${cell(h.message)}` : ''} | ${hostStarted(h) ? duration(h.durationMs) : '-'} | ${h.downMs === undefined ? '-' : duration(h.downMs)} |`,
      ),
    );
  }
  if (summary.workers.length > 0) {
    lines.push(
      '',
      '## Timeline (UTC)',
      '',
      '| host | worker | outcome | drained | idle | restarted | healthy | back in rotation | waited for call | down (restart to healthy) | out of rotation |',
      '|---|---|---|---|---|---|---|---|---|---|---|',
      ...summary.workers.map(
        (w) =>
          `| ${cell(w.host)} | ${w.worker} | ${w.outcome} | ${clock(w.drainedAt)} | ${clock(w.idleAt)} | ${clock(w.restartedAt)} | ${clock(w.healthyAt)} | ${clock(w.inRotationAt)} | ${w.idleAt && w.drainedAt ? duration(w.idleAt - w.drainedAt) : '-'} | ${w.downtimeMs === undefined ? '-' : duration(w.downtimeMs)} | ${w.outOfRotationMs === undefined ? '-' : duration(w.outOfRotationMs)} |`,
      ),
    );
  }
  return `${lines.join('\n')}\n`;
}
