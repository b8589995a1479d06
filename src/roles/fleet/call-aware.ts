import { drainedSocket } from '../../commands/worker.js';
import { parseRound, probeRound, type RoundAnswer } from '../../commands/probe.js';
import { DrainTimeoutError, HealthGateError, InterruptedError, tail } from '../../errors.js';
import type { HostProgress, WorkerTimeline } from '../../events.js';
import { decide, defaultMinFree, type ScheduleLimits, type WorkerStage, type WorkerView } from '../../plan/schedule.js';
import type { WorkerSteps } from '../../plan/fleet.js';
import type { HostContext } from '../contract.js';
import { describeProbe, nothingListening, passesWorkerGate, timedOut, type Probe } from '../shared/health.js';
import { HUNG_AFTER_MS, restartOrFailGate, type RollSettings } from './roll-worker.js';

export interface CallAwareSettings extends RollSettings {
  healthPath: string;
  /** the operator's floor of free slots; undefined: derived from the host's live load */
  minFree?: number;
  /** workers moved aside or restarting at once (and shut out, while the host holds a call) */
  maxOut: number;
  /** a call older than this is hung; `onDrainTimeout` decides what happens to it */
  maxCallAgeSeconds: number;
  /** how long nginx keeps a worker out after a failed connect (0 with max_fails=0) */
  failTimeoutMs: number;
  errorLog: string;
  /** the log's size when the roll began: failed connects before it are not this roll's */
  errorLogOffset: number;
  /** how often every worker is looked at */
  roundMs: number;
  /** a rollback after a failed gate: the timelines say so */
  rollingBack?: boolean;
}

/** What the roll knows of one worker, beyond what the schedule decides on. */
interface Tracked extends WorkerView {
  steps: WorkerSteps;
  timeline: WorkerTimeline;
  oldPid?: number;
  lastAnswerAt: number;
  /** when a busy spell was first seen to begin (for call durations) */
  seenStartAt?: number;
  hungWarnedAt?: number;
  /** accepts connections but has not answered /health for HUNG_AFTER_MS: its call is lost anyway */
  hung?: boolean;
  /** answers /health without a numeric active_calls: whether it holds a call is unknown, so it counts as busy */
  countless?: boolean;
}

/** Restart time used for the default floor until the roll has measured its own. */
const FIRST_RESTART_ESTIMATE_MS = 700;
const PROGRESS_EVERY_MS = 10_000;
const SETTLE_AFTER_MOVE_MS = 150;
/** The round while a restarted worker is gated: one exec for every worker, so 20 a second at most. */
const GATE_ROUND_MS = 50;

/**
 * Roll every given worker of one host to `expectVersion`, each the moment it is idle: move its
 * socket aside, check it is still idle (a call that slipped in is waited for), restart it, gate it,
 * and put it back, while the host keeps its floor of free workers. Busy workers are never touched
 * unless their call is older than the maximum call age and the policy says force. Returns when
 * every worker is on the new release; throws a gate failure (after the restarts in flight have
 * settled), a drain timeout (policy skip left workers on the old release), or an interruption (no
 * worker left moved aside).
 */
export async function rollCallAware(
  host: HostContext,
  workers: readonly WorkerSteps[],
  settings: CallAwareSettings,
  onMoved: (index: number) => void,
): Promise<void> {
  const { clock } = host;
  const name = host.host.name;
  const started = clock.now();
  const tracked: Tracked[] = workers.map((steps) => ({
    index: steps.index,
    stage: 'old' as WorkerStage,
    steps,
    timeline: { host: name, worker: steps.index, unit: steps.unit, outcome: 'failed' },
    lastAnswerAt: started,
  }));
  const byIndex = new Map(tracked.map((t) => [t.index, t]));
  let offset = settings.errorLogOffset;
  let starts = 0;
  const durations: number[] = [];
  const restartTimes: number[] = [];
  let gateFailure: HealthGateError | undefined;
  /** a command that failed mid-roll: the roll stops as after a failed gate, then this is thrown */
  let failure: unknown;
  const stopOnError = (error: unknown) => {
    failure ??= error;
  };
  let lastProgress = '';
  let lastProgressAt = 0;

  const limits = (): ScheduleLimits => {
    // a rate over less than a few seconds is noise
    const elapsed = Math.max(10, (clock.now() - started) / 1000);
    const restartSeconds = (restartTimes.length > 0 ? Math.max(...restartTimes) : FIRST_RESTART_ESTIMATE_MS) / 1000;
    return {
      minFree: settings.minFree ?? defaultMinFree(starts / elapsed, restartSeconds),
      maxOut: settings.maxOut,
      maxCallAgeMs: settings.maxCallAgeSeconds * 1000,
      onHungCall: settings.onDrainTimeout,
    };
  };

  const observe = async (): Promise<void> => {
    const paths = tracked.map((t) => (t.stage === 'draining' ? drainedSocket(t.steps.socket) : t.steps.socket));
    const result = await host.run(probeRound(paths, settings.healthPath, settings.errorLog, offset));
    const answer: RoundAnswer = parseRound(result.stdout, paths.length);
    offset = answer.logSize;
    const now = clock.now();
    for (const socket of answer.failedConnects) {
      const worker = tracked.find((t) => t.steps.socket === socket);
      if (worker && settings.failTimeoutMs > 0) worker.shutOutUntil = now + settings.failTimeoutMs;
    }
    tracked.forEach((t, n) => note(t, answer.probes[n]!, now));
  };

  /** Update one worker from its probe; a restarting worker is gated here. */
  const note = (t: Tracked, p: Probe, now: number): void => {
    if (!timedOut(p)) t.lastAnswerAt = now;
    if (t.stage === 'restarting') {
      if (passesWorkerGate(p, settings.expectVersion, t.oldPid)) {
        t.stage = 'new';
        t.calls = p.body?.active_calls ?? 0;
        t.timeline.healthyAt = now;
        t.timeline.downtimeMs = now - t.timeline.restartedAt!;
        t.timeline.version = settings.expectVersion;
        t.timeline.outcome = settings.rollingBack ? 'rolled-back' : 'rolled';
        restartTimes.push(t.timeline.downtimeMs);
        host.worker(t.index, 'healthy', `pid ${p.body?.pid}`);
        void host.run(t.steps.cleanup).catch(() => undefined);
      } else if (now - t.timeline.restartedAt! >= settings.gateTimeoutSeconds * 1000) {
        t.stage = 'failed';
        gateFailure ??= new HealthGateError(
          `${name}: worker ${t.index} (${t.steps.unit}) failed its health gate on ${settings.expectVersion} after ${settings.gateTimeoutSeconds}s: ${describeProbe(p, settings.expectVersion)}`,
          { host: name, worker: t.index },
        );
      }
      return;
    }
    if (typeof p.body?.pid === 'number' && t.stage !== 'new') t.oldPid = p.body.pid;
    t.countless = p.httpStatus !== 0 && p.body?.active_calls === undefined;
    // an answer without a count may hide a call: busy, so only the maximum call age can end the wait
    const calls = p.httpStatus === 0 ? undefined : (p.body?.active_calls ?? 1);
    const wasBusy = (t.calls ?? 0) > 0;
    if (calls !== undefined && calls > 0 && !wasBusy) {
      // a call seen at the first look began before the roll: it says nothing about the start rate
      if (t.calls !== undefined) {
        starts += 1;
        t.seenStartAt = now;
      }
      const reported = p.body?.call_started_at;
      t.busySince = typeof reported === 'number' ? reported * 1000 : now;
    }
    if (calls === 0 && wasBusy) {
      if (t.seenStartAt !== undefined) durations.push(now - t.seenStartAt);
      t.busySince = undefined;
      t.seenStartAt = undefined;
    }
    t.hung = timedOut(p) && now - t.lastAnswerAt >= HUNG_AFTER_MS;
    // nothing listening holds no call; a hung process's call is lost already: both are free to restart
    t.calls = nothingListening(p) || t.hung ? 0 : calls;
  };

  const restart = async (t: Tracked): Promise<void> => {
    t.timeline.idleAt = clock.now();
    host.worker(t.index, 'idle');
    onMoved(t.index);
    try {
      await restartOrFailGate(host, t.steps, settings.expectVersion);
    } catch (error) {
      if (!(error instanceof HealthGateError)) throw error;
      t.stage = 'failed';
      gateFailure ??= error;
      return;
    }
    t.stage = 'restarting';
    t.timeline.restartedAt = clock.now();
    host.worker(t.index, 'restarted');
  };

  /**
   * Move the socket aside, look again through the moved path, restart if it is still idle. A worker
   * that seemed hung gets one more, longer look once moved: only a second timeout restarts it.
   */
  const take = async (t: Tracked, force: boolean): Promise<void> => {
    const already = t.stage === 'draining';
    if (!already) t.timeline.drainedAt = clock.now();
    // moved aside from here on: a drain that fails after its move is put back like any other
    t.stage = 'draining';
    const moved = already ? { exitCode: 0 } : await host.run(t.steps.drain);
    host.worker(t.index, 'drained', moved.exitCode === 0 ? undefined : 'no socket: the worker was not serving');
    if (force) {
      host.worker(
        t.index,
        'forced',
        `its call is older than ${settings.maxCallAgeSeconds}s; restarting anyway (--on-drain-timeout force): that call is dropped`,
      );
      return restart(t);
    }
    if (moved.exitCode !== 0) return restart(t);
    // a call nginx handed over just before the move is still connecting: give it a moment to count
    await clock.sleep(SETTLE_AFTER_MOVE_MS);
    const step = probeRound([drainedSocket(t.steps.socket)], settings.healthPath, settings.errorLog, offset, t.hung ? 2 : 1);
    const [p] = parseRound((await host.run(step)).stdout, 1).probes;
    if (t.hung && timedOut(p!)) {
      host.worker(t.index, 'forced', `no answer to /health for ${HUNG_AFTER_MS / 1000}s: the process is hung, restarting it`);
      return restart(t);
    }
    // what it answered is now what the roll knows of it (an answer resets the hung clock)
    note(t, p!, clock.now());
    if (t.calls === 0) return restart(t);
    host.info(`worker ${t.index}: a call reached it before its socket moved; waiting for that call to end`);
  };

  /** Put a moved-aside worker that was not restarted back in rotation, unchanged. */
  const putBack = async (t: Tracked, why: string): Promise<void> => {
    await host.run(t.steps.undrain);
    t.stage = 'old';
    t.timeline.outcome = 'untouched';
    host.worker(t.index, 'undrained', why);
  };

  try {
    for (;;) {
      await observe();
      const now = clock.now();
      const stopping = () => gateFailure !== undefined || failure !== undefined || host.signal.aborted;
      // a drained worker whose call has ended is restarted at once, unless the roll is stopping
      if (!stopping())
        await settle(tracked.filter((t) => t.stage === 'draining' && t.calls === 0).map((t) => restart(t))).catch(stopOnError);
      const restarting = tracked.filter((t) => t.stage === 'restarting');
      if (stopping()) {
        // stop taking workers; the ones restarting are still gated, so each ends old or new, never unknown
        const why =
          host.signal.aborted && !gateFailure ? 'interrupted while waiting for its call to end' : 'the roll stopped: put back unchanged';
        // a put-back that fails must not stop the gating of the workers still restarting
        for (const t of tracked.filter((w) => w.stage === 'draining')) await putBack(t, why).catch(stopOnError);
        if (restarting.length === 0) break;
      } else {
        const decision = decide(tracked, limits(), now);
        for (const index of decision.skip) {
          const t = byIndex.get(index)!;
          // one moved aside goes back in rotation: its call goes on there, on the old release
          if (t.stage === 'draining') await host.run(t.steps.undrain).catch(stopOnError);
          t.stage = 'skipped';
          t.timeline.outcome = 'skipped';
          host.worker(index, 'skipped', `its call is older than ${settings.maxCallAgeSeconds}s; left on the old release, serving`);
        }
        if (decision.done) break;
        for (const index of decision.hung) {
          const t = byIndex.get(index)!;
          if (t.hungWarnedAt !== undefined && now - t.hungWarnedAt < settings.maxCallAgeSeconds * 1000) continue;
          t.hungWarnedAt = now;
          const what = t.countless
            ? `worker ${index} has answered /health without active_calls for ${seconds(now - t.busySince!)}, so it may hold a call`
            : `worker ${index}'s call has run ${seconds(now - t.busySince!)}`;
          host.warn(
            `${what}, longer than ${settings.maxCallAgeSeconds}s; still waiting (--on-drain-timeout skip or force to stop waiting)`,
          );
        }
        await settle([
          ...decision.force.map((i) => take(byIndex.get(i)!, true)),
          ...decision.take.map((i) => take(byIndex.get(i)!, false)),
        ]).catch(stopOnError);
        report(Math.max(0, decision.free - decision.take.length));
      }
      // a worker being gated is out of rotation: look again soon, the next worker waits on it
      const gating = tracked.some((t) => t.stage === 'restarting');
      await clock.sleep(gating ? Math.min(settings.roundMs, GATE_ROUND_MS) : settings.roundMs);
    }
  } catch (error) {
    // the round itself failed (a lost connection, a probe that could not run): a worker left moved
    // aside serves nothing, so put back every one that can be (over a dead connection none can; the
    // next run's preflight finds them)
    for (const t of tracked.filter((w) => w.stage === 'draining'))
      await putBack(t, 'the roll stopped on an error: put back unchanged').catch(() => undefined);
    // a command that failed first (often the same lost connection) is what the operator needs to read
    throw failure ?? error;
  } finally {
    // whatever ended the roll (done, a gate, Ctrl-C, a lost connection), the summary has every worker touched
    for (const t of tracked) {
      if (t.timeline.healthyAt !== undefined) t.timeline.inRotationAt = Math.max(t.timeline.healthyAt, t.shutOutUntil ?? 0);
      if (t.timeline.drainedAt !== undefined && t.timeline.inRotationAt !== undefined)
        t.timeline.outOfRotationMs = t.timeline.inRotationAt - t.timeline.drainedAt;
      if (t.timeline.drainedAt !== undefined || t.stage === 'skipped') host.record(t.timeline);
    }
  }
  if (gateFailure) {
    const failed = tracked.find((t) => t.stage === 'failed')!;
    const journal = await host.run(failed.steps.journal).then(
      (r) => tail(r.stdout, 15),
      () => '',
    );
    throw new HealthGateError(gateFailure.message, { ...gateFailure.details, journal });
  }
  if (failure !== undefined) throw failure;
  if (host.signal.aborted)
    throw new InterruptedError(
      `interrupted: ${name} stopped between workers; ${tracked.filter((t) => t.stage === 'new').length} of ${tracked.length} on ${settings.expectVersion}`,
    );
  const skipped = tracked.filter((t) => t.stage === 'skipped').map((t) => t.index);
  if (skipped.length > 0) {
    throw new DrainTimeoutError(
      `${name}: worker ${skipped.join(', ')} held a call longer than ${settings.maxCallAgeSeconds}s; left on the old release, serving`,
      {
        next: `finish when those calls end: voxops restart fleet --host ${name} --worker ${skipped[0]}`,
      },
    );
  }

  function report(free: number): void {
    const now = clock.now();
    const busy = tracked.filter((t) => t.stage === 'old' && (t.calls ?? 0) > 0 && t.busySince !== undefined);
    const progress: HostProgress = {
      tag: settings.expectVersion,
      done: tracked.filter((t) => t.stage === 'new').length,
      total: tracked.length,
      out: tracked.filter((t) => t.stage === 'draining' || t.stage === 'restarting').length,
      free,
      waitingOn: busy.map((t) => ({ worker: t.index, callMs: now - t.busySince! })).sort((a, b) => b.callMs - a.callMs),
    };
    const eta = estimate(progress, durations, restartTimes);
    if (eta !== undefined) progress.etaMs = eta;
    const key = `${progress.done}/${progress.out}/${progress.free}/${progress.waitingOn.length}`;
    if (key === lastProgress && now - lastProgressAt < PROGRESS_EVERY_MS) return;
    lastProgress = key;
    lastProgressAt = now;
    host.emit({ type: 'progress', host: name, progress });
  }
}

/** Wait for every one (none is left running unseen), then throw the first failure. */
async function settle(work: readonly Promise<void>[]): Promise<void> {
  const failed = (await Promise.allSettled(work)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

function seconds(ms: number): string {
  return `${Math.round(ms / 1000)}s`;
}

/**
 * Time left: the longest call still to wait for, at the calls' observed mean length, plus one
 * restart. Only once at least three calls were seen from start to end; before that, no guess.
 */
export function estimate(
  progress: Pick<HostProgress, 'waitingOn'>,
  durations: readonly number[],
  restartTimes: readonly number[],
): number | undefined {
  if (durations.length < 3) return undefined;
  const mean = durations.reduce((a, b) => a + b, 0) / durations.length;
  const restart = restartTimes.length > 0 ? Math.max(...restartTimes) : FIRST_RESTART_ESTIMATE_MS;
  const longest = progress.waitingOn.reduce((m, w) => Math.max(m, mean - w.callMs), 0);
  return Math.round(longest + restart);
}
