import type { HealthProbe } from '../../commands/worker.js';
import { HealthGateError, InterruptedError, RemoteCommandError, tail } from '../../errors.js';
import type { WorkerTimeline } from '../../events.js';
import type { WorkerSteps } from '../../plan/fleet.js';
import { poll } from '../../wait.js';
import type { DrainPolicy, HostContext } from '../contract.js';
import { describeProbe, nothingListening, passesWorkerGate, probe, timedOut } from '../shared/health.js';

export interface RollSettings {
  /** the version /health must report after the restart */
  expectVersion: string;
  pollMs: number;
  drainTimeoutSeconds: number;
  onDrainTimeout: DrainPolicy;
  gateTimeoutSeconds: number;
}

/** A worker that accepts but does not answer /health for this long is hung: whatever call it had is already lost. */
export const HUNG_AFTER_MS = 10_000;

/** Poll quickly at first (a call that just ended), then back off: calls can last an hour. */
export function idlePollDelay(pollMs: number, waitedMs: number): number {
  if (waitedMs < 5_000) return pollMs;
  if (waitedMs < 60_000) return Math.max(pollMs, 250);
  return Math.max(pollMs, 1_000);
}

type IdleWait = { idle: 'call ended' | 'gone' | 'hung'; oldPid?: number } | { idle: 'skipped' | 'interrupted'; oldPid?: number };

/**
 * Wait until the drained worker holds no call. The old process answers on the moved socket; its
 * pid is remembered for the gate. A timeout is handled as the operator chose: keep waiting, skip the
 * worker for now (back in rotation), or restart it anyway.
 */
async function waitUntilIdle(host: HostContext, steps: WorkerSteps, settings: RollSettings): Promise<IdleWait> {
  const { clock } = host;
  const started = clock.now();
  let lastAnswer = started;
  let oldPid: number | undefined;
  for (;;) {
    const wait = await poll({
      clock,
      signal: host.signal,
      timeoutMs: settings.drainTimeoutSeconds * 1000,
      intervalMs: () => idlePollDelay(settings.pollMs, clock.now() - started),
      probe: () => probe(host, steps.probeDrained),
      until: (p) => {
        if (typeof p.body?.pid === 'number') oldPid = p.body.pid;
        if (nothingListening(p)) return 'gone' as const;
        if (!timedOut(p)) lastAnswer = clock.now();
        if (p.httpStatus !== 0 && p.body?.active_calls === 0) return 'call ended' as const;
        return clock.now() - lastAnswer >= HUNG_AFTER_MS ? ('hung' as const) : undefined;
      },
    });
    const pid = oldPid === undefined ? {} : { oldPid };
    if (wait.outcome === 'done') return { idle: wait.result, ...pid };
    if (wait.outcome === 'aborted') return { idle: 'interrupted', ...pid };
    const waited = Math.round((clock.now() - started) / 1000);
    if (settings.onDrainTimeout === 'skip') {
      host.worker(steps.index, 'skipped', `still in a call after ${waited}s; put back in rotation, will retry at the end`);
      return { idle: 'skipped', ...pid };
    }
    if (settings.onDrainTimeout === 'force') {
      host.worker(
        steps.index,
        'forced',
        `still in a call after ${waited}s; restarting anyway (--on-drain-timeout force): that call is dropped`,
      );
      return { idle: 'call ended', ...pid };
    }
    host.warn(`worker ${steps.index} still in a call after ${waited}s; still waiting`);
  }
}

/**
 * Take one worker out of rotation, wait for its call to end, restart it, and wait until the new
 * process serves the expected release on the real socket path. Never restarts a worker that holds a
 * call unless the operator chose --on-drain-timeout force.
 */
export async function rollWorker(host: HostContext, steps: WorkerSteps, settings: RollSettings): Promise<WorkerTimeline> {
  const { clock } = host;
  const name = host.host.name;
  const timeline: WorkerTimeline = { host: name, worker: steps.index, unit: steps.unit, outcome: 'failed', drainedAt: clock.now() };
  const drained = await host.run(steps.drain);
  const hadSocket = drained.exitCode === 0;
  host.worker(steps.index, 'drained', hadSocket ? undefined : 'no socket: the worker was not serving');

  let oldPid: number | undefined;
  if (hadSocket) {
    const wait = await waitUntilIdle(host, steps, settings);
    oldPid = wait.oldPid;
    if (wait.idle === 'interrupted' || wait.idle === 'skipped') {
      await host.run(steps.undrain);
      if (wait.idle === 'skipped') return { ...timeline, outcome: 'skipped' };
      host.worker(steps.index, 'undrained', 'interrupted while waiting for the call to end');
      throw new InterruptedError(`interrupted: ${name} worker ${steps.index} was put back in rotation unchanged`);
    }
    if (wait.idle === 'hung')
      host.worker(steps.index, 'forced', `no answer to /health for ${HUNG_AFTER_MS / 1000}s: the process is hung, restarting it`);
    timeline.idleAt = clock.now();
    host.worker(steps.index, 'idle');
  }

  await restartOrFailGate(host, steps, settings.expectVersion);
  timeline.restartedAt = clock.now();
  host.worker(steps.index, 'restarted');

  const last = await gateWorker(host, steps, settings, timeline.restartedAt, oldPid);
  await host.run(steps.cleanup);
  timeline.healthyAt = clock.now();
  timeline.downtimeMs = timeline.healthyAt - timeline.restartedAt;
  timeline.outOfRotationMs = timeline.healthyAt - timeline.drainedAt!;
  timeline.version = settings.expectVersion;
  timeline.outcome = 'rolled';
  host.worker(steps.index, 'healthy', `pid ${last.body?.pid}`);
  return timeline;
}

/**
 * Restart a worker's unit. A unit systemd cannot start on the new release did not come up: that is
 * a failed gate (the host is rolled back), not a failed command.
 */
export async function restartOrFailGate(
  host: HostContext,
  steps: Pick<WorkerSteps, 'index' | 'unit' | 'restart' | 'journal'>,
  expectVersion: string,
): Promise<void> {
  try {
    await host.run(steps.restart);
  } catch (error) {
    if (!(error instanceof RemoteCommandError)) throw error;
    const name = host.host.name;
    const journal = await host.run(steps.journal).then(
      (r) => tail(r.stdout, 15),
      () => '',
    );
    throw new HealthGateError(
      `${name}: worker ${steps.index} (${steps.unit}) did not start on ${expectVersion}: ${error.message.replace(`${name}: `, '')}`,
      { host: name, worker: steps.index, journal },
      { cause: error },
    );
  }
}

/**
 * Wait until the worker serves on its real socket path: 200, status ok, the expected version, and a
 * pid other than `oldPid` (a socket file alone proves nothing). Throws HealthGateError with the
 * journal tail `gateTimeoutSeconds` after `startedAt`. Never abandoned on Ctrl-C: the unit was
 * restarted, so its health must be known.
 */
export async function gateWorker(
  host: HostContext,
  steps: Pick<WorkerSteps, 'index' | 'unit' | 'probeLive' | 'journal'>,
  settings: Pick<RollSettings, 'expectVersion' | 'pollMs' | 'gateTimeoutSeconds'>,
  startedAt: number,
  oldPid?: number,
): Promise<HealthProbe> {
  const name = host.host.name;
  const gate = await poll({
    clock: host.clock,
    timeoutMs: Math.max(0, startedAt + settings.gateTimeoutSeconds * 1000 - host.clock.now()),
    intervalMs: settings.pollMs,
    probe: () => probe(host, steps.probeLive),
    until: (p) => (passesWorkerGate(p, settings.expectVersion, oldPid) ? p : undefined),
  });
  if (gate.outcome === 'done') return gate.result;
  const journal = await host.run(steps.journal).then(
    (r) => tail(r.stdout, 15),
    () => '',
  );
  throw new HealthGateError(
    `${name}: worker ${steps.index} (${steps.unit}) failed its health gate on ${settings.expectVersion} after ${settings.gateTimeoutSeconds}s: ${describeProbe(gate.last, settings.expectVersion)}`,
    { host: name, worker: steps.index, journal },
  );
}

/**
 * nginx shut each drained worker out for fail_timeout when it failed to connect to the moved
 * socket. Until that passes the worker serves nothing, so the next drain waits: at most one batch
 * is ever out of rotation.
 */
export async function waitForReadmission(host: HostContext, rolled: WorkerTimeline[], delayMs: number): Promise<void> {
  if (rolled.length === 0) return;
  const now = host.clock.now();
  const readmitAt = Math.max(...rolled.map((t) => t.healthyAt ?? now)) + delayMs;
  for (const t of rolled) {
    t.inRotationAt = readmitAt;
    t.outOfRotationMs = readmitAt - (t.drainedAt ?? readmitAt);
  }
  const wait = readmitAt - now;
  if (wait <= 0) return;
  host.info(`worker ${rolled.map((t) => t.worker).join(', ')} back in nginx rotation in ${(wait / 1000).toFixed(1)}s (fail_timeout)`);
  await host.clock.sleep(wait, host.signal);
}
