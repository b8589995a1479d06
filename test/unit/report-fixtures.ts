import type { HostOutcome, OperationSummary, WorkerTimeline } from '../../src/report/report.js';

/** Summaries shaped like the lab's runs (timings from the README's measurements), for the report tests. */
export const T0 = Date.parse('2026-11-25T10:00:00Z');

/** A fleet deploy of v1.5.0 that started at T0; the rest is the caller's. */
const deployFleet = (rest: Omit<OperationSummary, 'operation' | 'role' | 'tag' | 'startedAt'>): OperationSummary => ({
  operation: 'deploy',
  role: 'fleet',
  tag: 'v1.5.0',
  startedAt: new Date(T0).toISOString(),
  ...rest,
});

interface Roll {
  /** waits for each worker's call to end, ms */
  calls: number[];
  readmitMs?: number;
  downMs?: number;
  outcome?: WorkerTimeline['outcome'];
  version: string;
}

/** One host's workers rolled one after another from `start`; returns the timelines and when the last is back in rotation. */
export function rollWorkers(host: string, start: number, roll: Roll, first = 1): { workers: WorkerTimeline[]; end: number } {
  const workers: WorkerTimeline[] = [];
  let t = start;
  roll.calls.forEach((wait, i) => {
    const drainedAt = t;
    const idleAt = drainedAt + wait;
    const restartedAt = idleAt + 40;
    const healthyAt = restartedAt + (roll.downMs ?? 306);
    const inRotationAt = healthyAt + (roll.readmitMs ?? 10_000);
    workers.push({
      host,
      worker: first + i,
      unit: `voxcore@${first + i}`,
      drainedAt,
      idleAt,
      restartedAt,
      healthyAt,
      inRotationAt,
      downtimeMs: healthyAt - restartedAt,
      outOfRotationMs: inRotationAt - drainedAt,
      version: roll.version,
      outcome: roll.outcome ?? 'rolled',
    });
    t = inRotationAt + 20;
  });
  return { workers, end: t };
}

function fleetHost(
  name: string,
  start: number,
  calls: number[],
  from: string,
  to: string,
): { host: HostOutcome; workers: WorkerTimeline[]; end: number } {
  const release = 2300; // checkout and install before the first worker
  const { workers, end } = rollWorkers(name, start + release, { calls, version: to });
  return {
    host: { host: name, role: 'fleet', from, to, outcome: 'success', startedAt: start, durationMs: end + 120 - start },
    workers,
    end: end + 120,
  };
}

export function fleetSuccess(): OperationSummary {
  const a = fleetHost('fleet1', T0 + 1700, [2100, 0, 7800, 450], 'v1.4.2', 'v1.5.0');
  const b = fleetHost('fleet2', a.end + 50, [300, 5200, 0, 1200], 'v1.4.2', 'v1.5.0');
  return deployFleet({ durationMs: b.end + 200 - T0, exitCode: 0, hosts: [a.host, b.host], workers: [...a.workers, ...b.workers] });
}

/** Worker 3 of fleet1 never answers healthy on the new release: the host goes back to v1.5.0, fleet2 is never started. */
export function gateFailure(gateTimeoutMs = 30_000): OperationSummary {
  const start = T0 + 1600;
  const { workers: rolled, end } = rollWorkers('fleet1', start + 2300, { calls: [1800, 600], version: 'v1.5.1-badhealth' });
  const failed: WorkerTimeline = {
    host: 'fleet1',
    worker: 3,
    unit: 'voxcore@3',
    drainedAt: end,
    idleAt: end + 3400,
    restartedAt: end + 3440,
    outcome: 'failed',
  };
  const rollbackStart = failed.restartedAt! + gateTimeoutMs + 400 + 2100; // journal tail, then the previous release back in place
  const back = rollWorkers('fleet1', rollbackStart, { calls: [900, 0, 0], version: 'v1.5.0', outcome: 'rolled-back' });
  const hostEnd = back.end + 150;
  const message = `fleet1: worker 3 (voxcore@3) failed its health gate on v1.5.1-badhealth after ${gateTimeoutMs / 1000}s: /health answered HTTP 500 {"status":"error"}`;
  return {
    operation: 'deploy',
    role: 'fleet',
    tag: 'v1.5.1-badhealth',
    startedAt: new Date(T0).toISOString(),
    durationMs: hostEnd + 100 - T0,
    exitCode: 4,
    error: {
      message: `${message}; fleet1 was rolled back to v1.5.0`,
      next: "read the worker's log: voxops logs fleet --host fleet1 --worker 3",
    },
    hosts: [
      {
        host: 'fleet1',
        role: 'fleet',
        from: 'v1.5.0',
        to: 'v1.5.1-badhealth',
        outcome: 'rolled-back',
        startedAt: start,
        durationMs: hostEnd - start,
        message,
      },
      { host: 'fleet2', role: 'fleet', from: 'v1.5.0', to: 'v1.5.1-badhealth', outcome: 'not-started', durationMs: 0 },
    ],
    workers: [...rolled, failed, ...back.workers],
  };
}

/** Preflight found problems on two hosts: no host was touched, and the summary has no host at all. */
export function preflightRefused(): OperationSummary {
  return deployFleet({
    durationMs: 1840,
    exitCode: 7,
    error: {
      message: 'preflight refused on 2 of 2 fleet hosts; nothing was changed',
      next: 'fix what it lists, then voxops deploy fleet --tag v1.5.0 --dry-run',
      problems: [
        'fleet1: worker 2 (voxcore@2) is unreachable (unit active, socket present)',
        'fleet2: 512 MB free on /opt/voxcore, 1024 MB needed (minFreeDiskMb)',
        'fleet2: upstream voxcore_workers in /etc/nginx/sites-enabled/voxcore-fleet.conf has keepalive: cached connections would still reach a drained worker',
      ],
    },
    hosts: [],
    workers: [],
  });
}

function serviceHost(
  host: string,
  role: string,
  start: number,
  durationMs: number,
  downMs: number | undefined,
  outcome: HostOutcome['outcome'] = 'success',
): HostOutcome {
  return { host, role, from: 'v1.4.2', to: 'v1.5.0', outcome, startedAt: start, durationMs, ...(downMs !== undefined ? { downMs } : {}) };
}

/** api, console (on the api's host), two fleet hosts, the dialler and the ingress config, in deploy order. */
export function deployAll(options: { fleetFails?: boolean } = {}): OperationSummary {
  const preflight = 1700;
  const api = serviceHost('app-1', 'api', T0 + preflight, 3200, 500);
  const consoleHost = serviceHost('app-1', 'console', api.startedAt! + api.durationMs + 60, 2300, undefined);
  const fleetStart = consoleHost.startedAt! + consoleHost.durationMs + 80;
  const f1 = fleetHost('fleet1', fleetStart, [1200, 0, 3900, 200], 'v1.4.2', 'v1.5.0');
  const f2 = fleetHost('fleet2', f1.end + 40, [0, 2600, 800, 0], 'v1.4.2', 'v1.5.0');
  const hosts = [api, consoleHost, f1.host];
  const workers = [...f1.workers];
  let end: number;
  let tail: Pick<OperationSummary, 'exitCode' | 'error'> = { exitCode: 0 };
  if (options.fleetFails) {
    const failed: WorkerTimeline = {
      host: 'fleet2',
      worker: 1,
      unit: 'voxcore@1',
      drainedAt: f1.end + 40 + 2300,
      idleAt: f1.end + 2340 + 500,
      restartedAt: f1.end + 2340 + 540,
      outcome: 'failed',
    };
    const back = rollWorkers('fleet2', failed.restartedAt! + 90_000 + 2500, { calls: [0], version: 'v1.4.2', outcome: 'rolled-back' });
    end = back.end + 100;
    const message = 'fleet2: worker 1 (voxcore@1) failed its health gate on v1.5.0 after 90s: no answer on /tmp/voxcore_1.sock';
    hosts.push({
      host: 'fleet2',
      role: 'fleet',
      from: 'v1.4.2',
      to: 'v1.5.0',
      outcome: 'rolled-back',
      startedAt: f1.end + 40,
      durationMs: end - (f1.end + 40),
      message,
    });
    hosts.push({ host: 'sip-1', role: 'dialler', from: 'v1.4.2', to: 'v1.5.0', outcome: 'not-started', durationMs: 0 });
    hosts.push({ host: 'wss-1', role: 'ingress', from: null, to: 'v1.5.0', outcome: 'not-started', durationMs: 0 });
    workers.push(failed, ...back.workers);
    tail = {
      exitCode: 4,
      error: {
        message: `deploy all v1.5.0: fleet failed (${message}; fleet2 was rolled back to v1.4.2); done: api, console; not started: dialler, ingress`,
        next: 'voxops logs fleet --host fleet2 --worker 1',
      },
    };
  } else {
    hosts.push(f2.host);
    workers.push(...f2.workers);
    const dialler = serviceHost('sip-1', 'dialler', f2.end + 60, 5800 + 2100 + 500, 500);
    const ingress = serviceHost('wss-1', 'ingress', dialler.startedAt! + dialler.durationMs + 40, 1500, undefined);
    hosts.push(dialler, { ...ingress, from: null });
    end = ingress.startedAt! + ingress.durationMs;
  }
  return {
    operation: 'deploy',
    role: 'all',
    tag: 'v1.5.0',
    startedAt: new Date(T0).toISOString(),
    durationMs: end + 50 - T0,
    ...tail,
    hosts,
    workers,
  };
}

/** What a remote stderr can carry: colour codes, a NUL, a bell, a lone surrogate, markup and quotes. */
export const NASTY = '\u001b[31mE: \u0000unit\u0007 failed\u001b[0m <voxcore@1> & "x" \'y\' ]]> \ud800 \uffff\r\nline 2 | pipe';

export function nastyFailure(): OperationSummary {
  const host = 'fleet-1.prod.example.com';
  return deployFleet({
    durationMs: 9000,
    exitCode: 5,
    error: {
      message: `${host}: install failed (exit 1): ${NASTY}`,
      next: `voxops logs fleet --host ${host} --worker 1`,
      problems: [NASTY],
    },
    hosts: [
      {
        host,
        role: 'fleet',
        from: 'v1.4.2',
        to: 'v1.5.0',
        outcome: 'failed',
        startedAt: T0 + 1000,
        durationMs: 7000,
        message: `install failed (exit 1): ${NASTY}`,
      },
    ],
    workers: [],
  });
}
