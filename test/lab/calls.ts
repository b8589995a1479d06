// Call load generator for the lab: holds WebSocket "phone calls" open against fleet or ingress
// URLs and classifies how each one ended. Library (`runCalls`) plus a CLI (`npm run lab:calls`).
import { readFileSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';

/** How a call ended. Every started call ends in exactly one of these. */
export type CallOutcome =
  | 'completed' // established, held, and closed by us with a clean close handshake
  | 'rejected' // server closed with 1008 (at capacity) or answered the handshake with 429
  | 'unavailable' // handshake answered 502/503/504: no free upstream
  | 'dropped' // established (101), then ended by anything but our own clean close
  | 'failed' // never established for another reason (refused, reset, timeout, other HTTP status)
  | 'cancelled'; // still in progress when the run was aborted or hit its hard deadline

export const OUTCOMES: readonly CallOutcome[] = ['completed', 'rejected', 'unavailable', 'dropped', 'failed', 'cancelled'];

export interface CallRecord {
  id: number;
  target: string;
  /** Milliseconds since the start of the run. */
  startMs: number;
  openMs?: number;
  endMs?: number;
  holdMs: number;
  outcome?: CallOutcome;
  /** WebSocket close code, when a close was seen. */
  code?: number;
  /** HTTP status of a refused handshake. */
  httpStatus?: number;
  /** Server frames received while the call was up. */
  frames: number;
  reason?: string;
}

export type TargetStats = Record<CallOutcome, number> & { started: number };

export interface CallStats extends TargetStats {
  errors: string[];
  perTarget: Record<string, TargetStats>;
  calls: CallRecord[];
  /** Most calls established at the same moment. */
  peakConcurrent: number;
  elapsedMs: number;
  aborted: boolean;
  /** The concurrency a `load` run aimed for; undefined for `rate` runs. */
  targetConcurrency?: number;
}

export interface RunCallsOptions {
  /** ws:// or wss:// URLs; calls go round-robin over them. */
  targets: string[];
  /** New calls are started during this window; running calls then finish their hold. */
  durationSeconds: number;
  /** New calls per second. Default when neither `rate` nor `load` is given: 1. */
  rate?: number;
  /** Keep about this fraction of `capacity` busy (1 = every worker). */
  load?: number;
  /** Total worker capacity for `load`; default: sum of fleet workers in .lab/lab.json. */
  capacity?: number;
  /** Seconds each call is held, uniformly random in [min, max]. */
  holdSeconds: [number, number];
  signal?: AbortSignal;
  /** Upper bound on calls started (the run is bounded in count even if misconfigured). */
  maxCalls?: number;
  handshakeTimeoutMs?: number;
  /** A call with no server frame for this long is cut (the fleet sends one every 500 ms). 0 = off. */
  silenceTimeoutMs?: number;
  /** How long our close may wait for the server's close frame. */
  closeTimeoutMs?: number;
  /** Pause before refilling a load slot whose call ended within 250 ms. */
  retryDelayMs?: number;
  /** For tests: a deterministic random source in [0, 1). */
  random?: () => number;
  /** Path of lab.json, for the default `capacity`. */
  labFile?: string;
}

interface LabHost {
  name: string;
  role: string;
  address: string;
  workers?: number;
}
export interface LabFile {
  hosts: LabHost[];
  subnet?: string;
  bridge?: string;
}

export type TargetSet = 'fleet' | 'ingress' | 'all';

const DEFAULT_WORKERS_PER_FLEET = 4; // the lab topology's default (--workers 4)
const MAX_DURATION_SECONDS = 24 * 3600;
const FAST_END_MS = 250;

export function defaultLabFile(): string {
  return resolvePath(process.cwd(), '.lab', 'lab.json');
}

export function readLabFile(file: string = defaultLabFile()): LabFile {
  const data: unknown = JSON.parse(readFileSync(file, 'utf8'));
  if (typeof data !== 'object' || data === null || !Array.isArray((data as LabFile).hosts)) {
    throw new Error(`${file}: expected an object with a "hosts" array`);
  }
  return data as LabFile;
}

/** ws URLs of the lab's fleet hosts, ingress hosts, or both. */
export function labTargets(lab: LabFile, which: TargetSet): string[] {
  const roles = which === 'all' ? ['fleet', 'ingress'] : [which];
  return lab.hosts.filter((h) => roles.includes(h.role)).map((h) => `ws://${h.address}/ws/call`);
}

/** Total calls the lab's fleets can hold: one per worker. */
export function labCapacity(lab: LabFile): number {
  return lab.hosts.filter((h) => h.role === 'fleet').reduce((sum, h) => sum + (h.workers ?? DEFAULT_WORKERS_PER_FLEET), 0);
}

function emptyTargetStats(): TargetStats {
  return { started: 0, completed: 0, rejected: 0, unavailable: 0, dropped: 0, failed: 0, cancelled: 0 };
}

function validate(opts: RunCallsOptions): void {
  const problems: string[] = [];
  if (!Array.isArray(opts.targets) || opts.targets.length === 0) problems.push('targets: at least one URL');
  for (const t of opts.targets ?? []) {
    if (!/^(wss?:\/\/|ws\+unix:)/.test(t)) problems.push(`targets: not a ws://, wss:// or ws+unix: URL: ${t}`);
  }
  const d = opts.durationSeconds;
  if (!(Number.isFinite(d) && d > 0 && d <= MAX_DURATION_SECONDS)) {
    problems.push(`durationSeconds: must be in (0, ${MAX_DURATION_SECONDS}]`);
  }
  if (opts.rate !== undefined && opts.load !== undefined) problems.push('rate and load: give one, not both');
  if (opts.rate !== undefined && !(Number.isFinite(opts.rate) && opts.rate > 0 && opts.rate <= 1000)) {
    problems.push('rate: must be in (0, 1000] calls per second');
  }
  if (opts.load !== undefined && !(Number.isFinite(opts.load) && opts.load > 0 && opts.load <= 10)) {
    problems.push('load: must be in (0, 10] (a fraction of capacity)');
  }
  if (opts.capacity !== undefined && !(Number.isInteger(opts.capacity) && opts.capacity > 0)) {
    problems.push('capacity: must be a positive integer');
  }
  const [lo, hi] = opts.holdSeconds ?? [];
  if (!(Number.isFinite(lo) && Number.isFinite(hi) && (lo as number) >= 0 && (lo as number) <= (hi as number) && (hi as number) <= 3600)) {
    problems.push('holdSeconds: [min, max] with 0 <= min <= max <= 3600');
  }
  if (opts.maxCalls !== undefined && !(Number.isInteger(opts.maxCalls) && opts.maxCalls > 0)) {
    problems.push('maxCalls: must be a positive integer');
  }
  if (problems.length > 0) throw new RangeError(`runCalls: ${problems.join('; ')}`);
}

interface LiveCall {
  record: CallRecord;
  /** Hang up now as if the hold had ended (abort). */
  hangUp(reason: string): void;
  /** End at once and count the call as cancelled (hard deadline, or abort before answer). */
  cancel(reason: string): void;
}

interface CallTimings {
  handshakeTimeoutMs: number;
  silenceTimeoutMs: number;
  closeTimeoutMs: number;
}

/** Place one call; resolves (never rejects) once `record.outcome` is set. */
function placeCall(record: CallRecord, now: () => number, t: CallTimings, live: Set<LiveCall>, onOpen: () => void): Promise<void> {
  return new Promise((done) => {
    let settled = false;
    let established = false;
    let hangingUp = false;
    let lastError: string | undefined;
    let holdTimer: NodeJS.Timeout | undefined;
    let silenceTimer: NodeJS.Timeout | undefined;
    let closeTimer: NodeJS.Timeout | undefined;

    const ws = new WebSocket(record.target, {
      handshakeTimeout: t.handshakeTimeoutMs,
      perMessageDeflate: false,
    });

    const finish = (outcome: CallOutcome, extra: Partial<CallRecord> = {}): void => {
      if (settled) return;
      settled = true;
      clearTimeout(holdTimer);
      clearTimeout(silenceTimer);
      clearTimeout(closeTimer);
      Object.assign(record, extra, { outcome, endMs: now() });
      live.delete(call);
      if (ws.readyState !== WebSocket.CLOSED) ws.terminate();
      done();
    };

    const armSilence = (): void => {
      if (t.silenceTimeoutMs <= 0 || hangingUp) return;
      clearTimeout(silenceTimer);
      silenceTimer = setTimeout(() => {
        finish('dropped', { reason: `no frame from the server for ${t.silenceTimeoutMs} ms` });
      }, t.silenceTimeoutMs);
    };

    const hangUp = (reason?: string): void => {
      if (settled || hangingUp) return;
      hangingUp = true;
      if (reason) record.reason = reason;
      clearTimeout(holdTimer);
      clearTimeout(silenceTimer);
      ws.close(1000, 'hangup');
      closeTimer = setTimeout(() => {
        finish('dropped', { reason: `no close frame within ${t.closeTimeoutMs} ms of our hangup` });
      }, t.closeTimeoutMs);
    };

    const call: LiveCall = {
      record,
      hangUp(reason) {
        if (established) hangUp(reason);
        else finish('cancelled', { reason });
      },
      cancel(reason) {
        finish('cancelled', { reason });
      },
    };
    live.add(call);

    ws.on('unexpected-response', (_req, res) => {
      const status = res.statusCode ?? 0;
      res.resume();
      if (status === 429) finish('rejected', { httpStatus: status });
      else if (status === 502 || status === 503 || status === 504) finish('unavailable', { httpStatus: status });
      else finish('failed', { httpStatus: status, reason: `handshake answered HTTP ${status}` });
    });

    ws.on('open', () => {
      established = true;
      record.openMs = now();
      onOpen();
      holdTimer = setTimeout(() => hangUp(), record.holdMs);
      armSilence();
    });

    ws.on('message', () => {
      record.frames += 1;
      armSilence();
    });

    ws.on('error', (err: Error) => {
      lastError = err.message;
      // Before the answer, an error is the end of the attempt; after it, 'close' follows.
      if (!established) finish('failed', { reason: err.message });
    });

    ws.on('close', (code: number) => {
      if (!established) {
        finish('failed', { code, reason: lastError ?? `closed before the answer (${code})` });
      } else if (code === 1008) {
        // Also when it crossed our own hangup: the server refused the call.
        finish('rejected', { code });
      } else if (hangingUp && code !== 1006) {
        finish('completed', { code });
      } else if (hangingUp) {
        finish('dropped', { code, reason: lastError ?? 'connection lost while hanging up' });
      } else {
        const why = code === 1006 ? 'connection lost without a close frame' : 'the server ended the call';
        finish('dropped', { code, reason: lastError ?? why });
      }
    });
  });
}

function summarise(records: CallRecord[], targets: string[]): Pick<CallStats, keyof TargetStats | 'perTarget' | 'errors'> {
  const total = emptyTargetStats();
  const perTarget: Record<string, TargetStats> = {};
  for (const t of targets) perTarget[t] = emptyTargetStats();
  const errorCounts = new Map<string, number>();
  for (const r of records) {
    const outcome = r.outcome ?? 'cancelled';
    const slot = (perTarget[r.target] ??= emptyTargetStats());
    total.started += 1;
    slot.started += 1;
    total[outcome] += 1;
    slot[outcome] += 1;
    if (outcome === 'completed') continue;
    const detail = [r.httpStatus !== undefined ? `HTTP ${r.httpStatus}` : '', r.code !== undefined ? `close ${r.code}` : '', r.reason ?? '']
      .filter(Boolean)
      .join(', ');
    const key = `${r.target}: ${outcome}${detail ? ` (${detail})` : ''}`;
    errorCounts.set(key, (errorCounts.get(key) ?? 0) + 1);
  }
  const errors = [...errorCounts].slice(0, 100).map(([k, n]) => (n > 1 ? `${k} x${n}` : k));
  return { ...total, perTarget, errors };
}

/**
 * Run calls against `targets` for `durationSeconds`, then let running calls finish their hold.
 * Resolves with the stats; an abort resolves too (calls in progress are hung up normally).
 * Bounded: at most `maxCalls` calls, and everything ends by duration + max hold + timeouts.
 */
export async function runCalls(opts: RunCallsOptions): Promise<CallStats> {
  validate(opts);
  const random = opts.random ?? Math.random;
  const timings: CallTimings = {
    handshakeTimeoutMs: opts.handshakeTimeoutMs ?? 5000,
    silenceTimeoutMs: opts.silenceTimeoutMs ?? 3000,
    closeTimeoutMs: opts.closeTimeoutMs ?? 3000,
  };
  const retryDelayMs = opts.retryDelayMs ?? 250;
  const [holdMin, holdMax] = opts.holdSeconds;
  const durationMs = opts.durationSeconds * 1000;

  let targetConcurrency: number | undefined;
  let rate = opts.rate;
  if (opts.load !== undefined) {
    const capacity = opts.capacity ?? labCapacity(readLabFile(opts.labFile));
    targetConcurrency = Math.max(1, Math.round(opts.load * capacity));
  } else {
    rate ??= 1;
  }
  // A load slot restarts no faster than its shortest call (a completed call lasts at least the
  // minimum hold; a quick failure waits retryDelayMs), so this bound only caps a misbehaving run.
  const slotPeriodMs = Math.max(1, Math.min(retryDelayMs, FAST_END_MS, holdMin * 1000));
  const naturalMax =
    targetConcurrency !== undefined
      ? targetConcurrency * (Math.ceil(durationMs / slotPeriodMs) + 1)
      : Math.ceil((rate as number) * opts.durationSeconds);
  const maxCalls = Math.min(opts.maxCalls ?? naturalMax, naturalMax);

  const t0 = performance.now();
  const now = (): number => Math.round(performance.now() - t0);
  const hardDeadlineMs = durationMs + holdMax * 1000 + timings.handshakeTimeoutMs + timings.closeTimeoutMs + 2000;

  const records: CallRecord[] = [];
  const live = new Set<LiveCall>();
  const pending = new Set<Promise<void>>();
  const timers = new Set<NodeJS.Timeout>();
  let nextTarget = 0;
  let aborted = false;
  let established = 0;
  let peakConcurrent = 0;

  const later = (ms: number, fn: () => void): void => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
  };
  const mayStart = (): boolean => !aborted && now() < durationMs && records.length < maxCalls;

  let wake: () => void = () => {};
  const startCall = (onEnd?: (record: CallRecord) => void): void => {
    const target = opts.targets[nextTarget % opts.targets.length] as string;
    nextTarget += 1;
    const holdMs = Math.round((holdMin + (holdMax - holdMin) * random()) * 1000);
    const record: CallRecord = { id: records.length + 1, target, startMs: now(), holdMs, frames: 0 };
    records.push(record);
    const onOpen = (): void => {
      established += 1;
      peakConcurrent = Math.max(peakConcurrent, established);
    };
    const p = placeCall(record, now, timings, live, onOpen).then(() => {
      pending.delete(p);
      if (record.openMs !== undefined) established -= 1;
      onEnd?.(record);
      wake();
    });
    pending.add(p);
  };

  if (targetConcurrency !== undefined) {
    const refill = (record: CallRecord): void => {
      if (!mayStart()) return;
      const lasted = (record.endMs ?? now()) - record.startMs;
      if (record.outcome !== 'completed' && lasted < FAST_END_MS) later(retryDelayMs, () => mayStart() && startCall(refill));
      else startCall(refill);
    };
    for (let i = 0; i < targetConcurrency; i += 1) {
      // Stagger the first calls a little, as real traffic would arrive.
      later(i * 20, () => mayStart() && startCall(refill));
    }
  } else {
    const intervalMs = 1000 / (rate as number);
    let nextAt = 0;
    const tick = (): void => {
      while (mayStart() && now() >= nextAt) {
        startCall();
        nextAt += intervalMs;
      }
      if (mayStart() && nextAt < durationMs) later(Math.max(0, nextAt - now()), tick);
    };
    tick();
  }

  await new Promise<void>((resolveRun) => {
    let finished = false;
    const finishRun = (): void => {
      if (finished) return;
      finished = true;
      clearTimeout(windowTimer);
      clearTimeout(deadline);
      opts.signal?.removeEventListener('abort', onAbort);
      resolveRun();
    };
    wake = (): void => {
      if (!mayStart() && pending.size === 0) finishRun();
    };
    const onAbort = (): void => {
      aborted = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      for (const call of [...live]) call.hangUp('aborted');
      wake();
    };
    // When the start window closes with nothing in flight, finish without waiting for a call.
    const windowTimer = setTimeout(() => wake(), durationMs + 1);
    const deadline = setTimeout(() => {
      for (const call of [...live]) call.cancel(`still running at the hard deadline (${hardDeadlineMs} ms)`);
      finishRun();
    }, hardDeadlineMs);
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener('abort', onAbort, { once: true });
  });
  for (const timer of timers) clearTimeout(timer);
  await Promise.all(pending);

  return {
    ...summarise(records, opts.targets),
    calls: records,
    peakConcurrent,
    elapsedMs: now(),
    aborted,
    targetConcurrency,
  };
}

// ---------------------------------------------------------------------------------------------
// CLI: npm run lab:calls -- --duration S [--rate R | --load F] [--targets fleet|ingress|all|URL,...]
//      [--hold MIN-MAX] [--capacity N] [--max-calls N] [--lab FILE] [--json]

export interface CliOptions {
  run: RunCallsOptions;
  json: boolean;
}

export class UsageError extends Error {}

function parseNumber(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${name}: not a number: ${value}`);
  return n;
}

/** argv (after `node calls.js`) -> options; reads lab.json only when the targets or load need it. */
export function parseCli(argv: string[], readLab: (file?: string) => LabFile = readLabFile): CliOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        duration: { type: 'string' },
        rate: { type: 'string' },
        load: { type: 'string' },
        targets: { type: 'string', default: 'fleet' },
        hold: { type: 'string', default: '1-4' },
        capacity: { type: 'string' },
        'max-calls': { type: 'string' },
        lab: { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) throw new UsageError('');
  const durationSeconds = parseNumber('duration', values.duration);
  if (durationSeconds === undefined) throw new UsageError('--duration is required');
  const hold = /^(\d+(?:\.\d+)?)(?:-(\d+(?:\.\d+)?))?$/.exec(values.hold);
  if (!hold) throw new UsageError(`--hold: expected MIN-MAX seconds, e.g. 1-4: ${values.hold}`);
  const holdSeconds: [number, number] = [Number(hold[1]), Number(hold[2] ?? hold[1])];
  const labFile = values.lab ? resolvePath(values.lab) : undefined;

  let lab: LabFile | undefined;
  const lazyLab = (): LabFile => {
    try {
      return (lab ??= readLab(labFile));
    } catch (err) {
      throw new UsageError(
        `cannot read ${labFile ?? defaultLabFile()} (${(err as Error).message}); run \`npm run lab:up\`, ` +
          'or pass ws:// URLs with --targets and a --capacity with --load',
      );
    }
  };
  const sets: Record<string, TargetSet> = { fleet: 'fleet', ingress: 'ingress', all: 'all' };
  const set = sets[values.targets];
  const targets = set
    ? labTargets(lazyLab(), set)
    : values.targets
        .split(',')
        .map((t) => t.trim())
        .filter(Boolean);
  if (targets.length === 0) throw new UsageError(`--targets ${values.targets}: no hosts with that role in lab.json`);

  const rate = parseNumber('rate', values.rate);
  const load = parseNumber('load', values.load);
  let capacity = parseNumber('capacity', values.capacity);
  if (load !== undefined && capacity === undefined) capacity = labCapacity(lazyLab());
  const maxCalls = parseNumber('max-calls', values['max-calls']);
  return {
    json: values.json,
    run: {
      targets,
      durationSeconds,
      holdSeconds,
      ...(rate !== undefined ? { rate } : {}),
      ...(load !== undefined ? { load } : {}),
      ...(capacity !== undefined ? { capacity } : {}),
      ...(maxCalls !== undefined ? { maxCalls } : {}),
    },
  };
}

export function formatStats(stats: CallStats, run: RunCallsOptions): string {
  const cols: (keyof TargetStats)[] = ['started', ...OUTCOMES];
  const mode =
    stats.targetConcurrency !== undefined
      ? `load ${run.load} of capacity ${run.capacity ?? '?'} = ${stats.targetConcurrency} concurrent`
      : `rate ${run.rate ?? 1}/s`;
  const rows: string[][] = [['target', ...cols]];
  for (const [target, s] of Object.entries(stats.perTarget)) rows.push([target, ...cols.map((c) => String(s[c]))]);
  rows.push(['total', ...cols.map((c) => String(stats[c]))]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const table = rows.map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '));
  const lines = [
    `lab:calls ${run.durationSeconds} s, ${mode}, hold ${run.holdSeconds[0]}-${run.holdSeconds[1]} s` +
      `${stats.aborted ? ', ABORTED' : ''}; took ${(stats.elapsedMs / 1000).toFixed(1)} s; peak ${stats.peakConcurrent} concurrent calls`,
    ...table,
  ];
  if (stats.errors.length > 0) lines.push('not completed:', ...stats.errors.map((e) => `  ${e}`));
  return lines.join('\n');
}

const USAGE = `usage: npm run lab:calls -- --duration S [--rate R | --load F] [--targets fleet|ingress|all|URL[,URL...]]
                          [--hold MIN-MAX] [--capacity N] [--max-calls N] [--lab FILE] [--json]
  --rate R      R new calls per second (default 1 when --load is not given)
  --load F      keep about F x capacity calls up (capacity: --capacity, else the sum of fleet workers in .lab/lab.json)
  --targets     lab roles from .lab/lab.json (default fleet), or explicit ws:// URLs
  --hold        seconds each call is held, uniformly random (default 1-4)
  --json        print the stats and the per-call timeline as JSON`;

export async function main(argv: string[]): Promise<number> {
  let cli: CliOptions;
  try {
    cli = parseCli(argv);
  } catch (err) {
    if (!(err instanceof UsageError || err instanceof RangeError)) throw err;
    if (err.message) process.stderr.write(`lab:calls: ${err.message}\n`);
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const stats = await runCalls({ ...cli.run, signal: controller.signal });
    process.stdout.write(cli.json ? `${JSON.stringify(stats, null, 2)}\n` : `${formatStats(stats, cli.run)}\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    process.stderr.write(`lab:calls: ${err.message}\n`);
    return 2;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolvePath(process.argv[1])).href) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`lab:calls: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
