import type { HostSession } from '../exec/executor.js';
import { parseHealthProbe, type HealthProbe } from '../commands/worker.js';
import { HealthGateError, InterruptedError, tail } from '../errors.js';
import type { WorkerSteps } from '../plan/fleet.js';
import { sleep } from './context.js';
import type { Reporter, WorkerPhase, WorkerTimeline } from './events.js';

export interface RollOptions {
  /** the version /health must report after the restart */
  expectVersion: string;
  pollMs: number;
  drainTimeoutMs: number;
  onDrainTimeout: 'wait' | 'skip' | 'force';
  gateTimeoutMs: number;
  signal: AbortSignal;
  reporter: Reporter;
}

/** curl's exit code for "could not connect": nothing listens on the socket any more. */
const CURL_COULD_NOT_CONNECT = 7;
/** A worker that accepts but does not answer /health for this long is hung: whatever call it had is already lost. */
const HUNG_AFTER_MS = 10_000;

/** Poll quickly at first (a call that just ended), then back off: calls can last an hour. */
function idlePollDelay(pollMs: number, waitedMs: number): number {
  if (waitedMs < 5_000) return pollMs;
  if (waitedMs < 60_000) return Math.max(pollMs, 250);
  return Math.max(pollMs, 1_000);
}

async function probe(session: HostSession, step: WorkerSteps['probeLive']): Promise<HealthProbe & { exitCode: number | null }> {
  const result = await session.run(step);
  return { ...parseHealthProbe(result.stdout, result.stderr), exitCode: result.exitCode };
}

function describeProbe(p: HealthProbe & { exitCode?: number | null }, expectVersion: string): string {
  if (p.httpStatus === 0) return p.exitCode === CURL_COULD_NOT_CONNECT ? 'nothing is listening on the socket' : `no answer (${p.error})`;
  if (p.httpStatus !== 200) return `/health answered HTTP ${p.httpStatus}`;
  if (p.body?.version !== expectVersion) return `/health reports version ${p.body?.version ?? '(none)'}, expected ${expectVersion}`;
  return `/health reports status ${p.body?.status ?? '(none)'}`;
}

/**
 * Take one worker out of rotation, wait for its call to end, restart it, and wait until the new
 * process serves the expected release on the real socket path. Never restarts a worker that holds a
 * call unless the operator chose --on-drain-timeout force.
 */
export async function rollWorker(session: HostSession, steps: WorkerSteps, options: RollOptions): Promise<WorkerTimeline> {
  const host = session.host.name;
  const { reporter } = options;
  const timeline: WorkerTimeline = { host, worker: steps.index, unit: steps.unit, outcome: 'failed' };
  const emit = (phase: WorkerPhase, message?: string) =>
    reporter.emit({ type: 'worker', host, worker: steps.index, phase, ...(message ? { message } : {}) });

  timeline.drainedAt = Date.now();
  const drained = await session.run(steps.drain);
  const hadSocket = drained.exitCode === 0;
  emit('drained', hadSocket ? undefined : 'no socket: the worker was not serving');

  let oldPid: number | undefined;
  if (hadSocket) {
    const waitStarted = Date.now();
    let deadline = waitStarted + options.drainTimeoutMs;
    let lastAnswer = waitStarted;
    for (;;) {
      const p = await probe(session, steps.probeDrained);
      if (typeof p.body?.pid === 'number') oldPid = p.body.pid;
      if (p.exitCode === CURL_COULD_NOT_CONNECT) break;
      if (p.httpStatus !== 0) lastAnswer = Date.now();
      if (p.httpStatus !== 0 && p.body?.active_calls === 0) break;
      if (Date.now() - lastAnswer >= HUNG_AFTER_MS) {
        emit('forced', `no answer to /health for ${HUNG_AFTER_MS / 1000}s: the process is hung, restarting it`);
        break;
      }
      if (options.signal.aborted) {
        await session.run(steps.undrain);
        emit('undrained', 'interrupted while waiting for the call to end');
        timeline.outcome = 'untouched';
        throw new InterruptedError(`interrupted: ${host} worker ${steps.index} was put back in rotation unchanged`);
      }
      if (Date.now() >= deadline) {
        const waited = Math.round((Date.now() - waitStarted) / 1000);
        if (options.onDrainTimeout === 'skip') {
          await session.run(steps.undrain);
          emit('skipped', `still in a call after ${waited}s; put back in rotation, will retry at the end`);
          timeline.outcome = 'skipped';
          return timeline;
        }
        if (options.onDrainTimeout === 'force') {
          emit('forced', `still in a call after ${waited}s; restarting anyway (--on-drain-timeout force): that call is dropped`);
          break;
        }
        reporter.emit({ type: 'warning', host, message: `worker ${steps.index} still in a call after ${waited}s; still waiting` });
        deadline = Date.now() + options.drainTimeoutMs;
      }
      await sleep(idlePollDelay(options.pollMs, Date.now() - waitStarted), options.signal);
    }
    timeline.idleAt = Date.now();
    emit('idle');
  }

  await session.run(steps.restart);
  timeline.restartedAt = Date.now();
  emit('restarted');

  const last = await gateWorker(session, steps, options, timeline.restartedAt, oldPid);
  await session.run(steps.cleanup);
  timeline.healthyAt = Date.now();
  timeline.downtimeMs = timeline.healthyAt - timeline.restartedAt;
  timeline.outOfRotationMs = timeline.healthyAt - timeline.drainedAt;
  timeline.version = options.expectVersion;
  timeline.outcome = 'rolled';
  emit('healthy', `pid ${last.body?.pid}`);
  return timeline;
}

/**
 * Wait until the worker serves on its real socket path: 200, status ok, the expected version, and a
 * pid other than `oldPid` (a socket file alone proves nothing). Throws HealthGateError with the
 * journal tail after gateTimeoutMs from `startedAt`.
 */
export async function gateWorker(
  session: HostSession,
  steps: Pick<WorkerSteps, 'index' | 'unit' | 'probeLive' | 'journal'>,
  options: Pick<RollOptions, 'expectVersion' | 'pollMs' | 'gateTimeoutMs'>,
  startedAt: number,
  oldPid?: number,
): Promise<HealthProbe> {
  const host = session.host.name;
  const gateDeadline = startedAt + options.gateTimeoutMs;
  for (;;) {
    const last = await probe(session, steps.probeLive);
    const body = last.body;
    const fresh = oldPid === undefined || body?.pid !== oldPid;
    if (last.httpStatus === 200 && body?.status === 'ok' && body.version === options.expectVersion && fresh) return last;
    if (Date.now() >= gateDeadline) {
      const journal = await session.run(steps.journal).then((r) => tail(r.stdout, 15), () => '');
      throw new HealthGateError(
        `${host}: worker ${steps.index} (${steps.unit}) failed its health gate on ${options.expectVersion} after ${Math.round(options.gateTimeoutMs / 1000)}s: ${describeProbe(last, options.expectVersion)}`,
        { host, worker: steps.index, journal },
      );
    }
    await sleep(options.pollMs);
  }
}
