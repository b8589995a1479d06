import pLimit from 'p-limit';
import type { Step } from '../commands/command.js';
import { acquireLock, appendHistory, releaseOwnLock, type HistoryEntry } from '../commands/state.js';
import { validateTag } from '../commands/tag.js';
import { hostsForRole } from '../config/inventory.js';
import type { FleetRoleConfig } from '../config/schema.js';
import {
  ConfigError,
  DrainTimeoutError,
  ExitCode,
  HealthGateError,
  InterruptedError,
  LockHeldError,
  PreflightError,
  RemoteCommandError,
  RollbackFailedError,
  VoxopsError,
} from '../errors.js';
import type { HostSession } from '../exec/executor.js';
import { renderCommand } from '../exec/render.js';
import { planFleetHost, releaseSteps, workerSteps, type FleetHostPlan, type ReleaseSteps } from '../plan/fleet.js';
import { makeHolder, sleep, whoAmI, type OperationContext } from './context.js';
import type { HostOutcome, OperationSummary, WorkerTimeline } from './events.js';
import { gatherFleetFacts, judgeFleetFacts, type FleetHostFacts } from './fleet-facts.js';
import { acquireAll, lockHeldNext, releaseAll } from './locks.js';
import { rollWorker, type RollOptions } from './roll-worker.js';
import { closeAll, connectAll } from './sessions.js';

export interface FleetDeployOptions {
  action: 'deploy' | 'rollback';
  tag: string;
  hosts?: string[];
  parallel: number;
  batch: number;
  drainTimeoutSeconds?: number;
  onDrainTimeout?: 'wait' | 'skip' | 'force';
  allowUnhealthy?: boolean;
}

export function fleetRole(ctx: OperationContext): FleetRoleConfig {
  const role = ctx.inventory.roles.fleet;
  if (!role) throw new ConfigError(`${ctx.inventory.file} has no roles.fleet section`);
  return role;
}

/** The fleet's rolling deploy: preflight everywhere, lock everywhere, then host by host, worker by worker. */
export async function deployFleet(ctx: OperationContext, options: FleetDeployOptions): Promise<OperationSummary> {
  const role = fleetRole(ctx);
  const tag = validateTag(options.tag);
  const hosts = hostsForRole(ctx.inventory, 'fleet', options.hosts);
  if (hosts.length === 0) throw new ConfigError(`environment ${ctx.inventory.environment} has no fleet hosts`);
  const startedAt = Date.now();
  const outcomes = new Map<string, HostOutcome>();
  const timelines: WorkerTimeline[] = [];
  ctx.reporter.emit({ type: 'start', operation: options.action, role: 'fleet', tag, hosts: hosts.map((h) => h.name), dryRun: ctx.dryRun });

  const finish = (summary: OperationSummary) => {
    ctx.reporter.emit({ type: 'summary', summary });
    return summary;
  };
  let failure: unknown;
  const sessions = await connectAll(ctx.executor, hosts).catch((error: unknown) => {
    failure = error;
    return undefined;
  });
  try {
    if (!sessions) throw failure;
    const list = hosts.map((h) => sessions.get(h.name)!);
    const facts = await Promise.all(list.map((s) => gatherFleetFacts(s, role, tag)));
    preflight(ctx, role, facts, list, options);
    const plans = list.map((s, i) =>
      planFleetHost(role, s.host, facts[i]!.currentTag, tag, { batch: options.batch, readmitDelayMs: facts[i]!.failTimeoutSeconds * 1000 }),
    );
    for (const plan of plans) outcomes.set(plan.host.name, outcomeOf(plan, 'not-started', 0));
    if (ctx.dryRun) {
      for (const plan of plans) printPlan(ctx, plan, role);
      for (const plan of plans) outcomes.set(plan.host.name, outcomeOf(plan, 'planned', 0));
      return finish(summarise(options.action, tag, startedAt, ExitCode.ok, outcomes, timelines));
    }
    const holder = makeHolder(ctx.env, options.action, tag);
    await acquireAll(list, holder);
    try {
      const limit = pLimit(Math.max(1, options.parallel));
      let stop = false;
      const results = await Promise.allSettled(
        plans.map((plan) =>
          limit(async () => {
            if (stop || ctx.signal.aborted) return;
            try {
              await runHost(ctx, sessions.get(plan.host.name)!, plan, role, options, outcomes, timelines);
            } catch (error) {
              stop = true;
              throw error;
            }
          }),
        ),
      );
      const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (rejected) throw rejected.reason;
      if (ctx.signal.aborted) throw new InterruptedError('interrupted before every host was deployed');
    } finally {
      const stuck = await releaseAll(list, holder);
      if (stuck.length > 0) {
        ctx.reporter.emit({ type: 'warning', message: `could not release the lock on ${stuck.join(', ')}: run voxops lock release` });
      }
    }
    return finish(summarise(options.action, tag, startedAt, ExitCode.ok, outcomes, timelines));
  } catch (error) {
    const code = error instanceof VoxopsError ? error.exitCode : ExitCode.internal;
    finish(summarise(options.action, tag, startedAt, code, outcomes, timelines));
    throw error;
  } finally {
    if (sessions) await closeAll(sessions);
  }
}

function preflight(
  ctx: OperationContext,
  role: FleetRoleConfig,
  facts: FleetHostFacts[],
  sessions: HostSession[],
  options: FleetDeployOptions,
): void {
  const problems: string[] = [];
  facts.forEach((f, i) => {
    const host = sessions[i]!.host;
    if (f.lock && !ctx.dryRun) throw new LockHeldError(f.host, f.lock, { next: lockHeldNext(f.lock) });
    if (f.lock) ctx.reporter.emit({ type: 'warning', host: f.host, message: `lock is held by ${f.lock.user}@${f.lock.machine}` });
    const judged = judgeFleetFacts(f, role, {
      tag: options.tag,
      workers: host.workers ?? role.workers.count,
      ...(options.allowUnhealthy ? { allowUnhealthy: true } : {}),
    });
    for (const warning of judged.warnings) ctx.reporter.emit({ type: 'warning', host: f.host, message: warning });
    problems.push(...judged.problems);
    ctx.reporter.emit({
      type: 'info',
      host: f.host,
      message: `on ${f.currentTag ?? '(no tag)'}, ${f.workers.length} workers, ${f.freeMb ?? '?'} MiB free${f.failTimeoutSeconds ? `; nginx fail_timeout paces the roll: ${f.failTimeoutSeconds}s per worker (max_fails=0 on the upstream servers removes it)` : ''}`,
    });
  });
  if (problems.length > 0) {
    const tagMissing = problems.some((p) => p.includes('does not exist in origin'));
    throw new PreflightError(`preflight refused the ${options.action}: ${problems.length} problem(s); nothing was changed`, problems, {
      next: tagMissing
        ? `check the tag name; the tags are listed by: git ls-remote --tags ${role.repo}`
        : 'fix the problems above (voxops status shows the fleet), then re-run',
    });
  }
}

function printPlan(ctx: OperationContext, plan: FleetHostPlan, role: FleetRoleConfig): void {
  const host = plan.host.name;
  const show = (step: Step, prefix = '') =>
    ctx.reporter.emit({ type: 'command', host, step: step.name, command: `${prefix}${renderCommand(step.command)}` });
  ctx.reporter.emit({ type: 'info', host, message: `plan: ${plan.from ?? '(no tag)'} -> ${plan.to}, batches ${JSON.stringify(plan.batches)}` });
  show(acquireLock(makeHolder(ctx.env, 'deploy', plan.to)));
  for (const step of Object.values(plan.release)) show(step);
  for (const batch of plan.batches) {
    for (const index of batch) {
      const w = plan.workers.find((x) => x.index === index)!;
      show(w.drain);
      show(w.probeDrained, `poll every ${role.health.pollMilliseconds} ms until active_calls=0: `);
      show(w.restart);
      show(w.probeLive, `poll until 200, version ${plan.to}, new pid (at most ${role.health.gateTimeoutSeconds}s): `);
      show(w.cleanup);
    }
    if (plan.readmitDelayMs > 0) {
      ctx.reporter.emit({ type: 'info', host, message: `wait ${plan.readmitDelayMs / 1000}s: nginx fail_timeout keeps the worker out of rotation after its drain` });
    }
  }
  show(appendHistory({ at: '', host, role: 'fleet', action: 'deploy', from: plan.from, to: plan.to, outcome: 'success', durationMs: 0, user: '' }));
  show(releaseOwnLock('<id>'));
}

async function runRelease(ctx: OperationContext, session: HostSession, release: ReleaseSteps, tag: string, skipFetch = false): Promise<void> {
  const host = session.host.name;
  const timed = async (step: Step) => {
    const started = Date.now();
    ctx.reporter.emit({ type: 'step', host, step: step.name, status: 'start' });
    const result = await session.run(step);
    ctx.reporter.emit({ type: 'step', host, step: step.name, status: 'done', durationMs: Date.now() - started });
    return result;
  };
  if (!skipFetch) await timed(release.fetch);
  await timed(release.checkout);
  const verified = await timed(release.verify);
  const [head, tagged] = verified.stdout.trim().split('\n');
  if (!head || head !== tagged) {
    throw new RemoteCommandError({
      host,
      step: release.verify.name,
      command: renderCommand(release.verify.command),
      exitCode: verified.exitCode,
      stdout: verified.stdout,
      stderr: `HEAD ${head ?? '?'} is not ${tag} (${tagged ?? '?'})`,
    });
  }
  await timed(release.install);
}

function rollOptions(ctx: OperationContext, role: FleetRoleConfig, options: FleetDeployOptions, expectVersion: string): RollOptions {
  return {
    expectVersion,
    pollMs: role.health.pollMilliseconds,
    drainTimeoutMs: (options.drainTimeoutSeconds ?? role.drain.timeoutSeconds) * 1000,
    onDrainTimeout: options.onDrainTimeout ?? role.drain.onTimeout,
    gateTimeoutMs: role.health.gateTimeoutSeconds * 1000,
    signal: ctx.signal,
    reporter: ctx.reporter,
  };
}

async function runHost(
  ctx: OperationContext,
  session: HostSession,
  plan: FleetHostPlan,
  role: FleetRoleConfig,
  options: FleetDeployOptions,
  outcomes: Map<string, HostOutcome>,
  timelines: WorkerTimeline[],
): Promise<void> {
  const host = plan.host.name;
  const started = Date.now();
  const moved: number[] = [];
  let outcome: HistoryEntry['outcome'] = 'failed';
  let detail: string | undefined;
  ctx.reporter.emit({ type: 'host', host, phase: 'start', message: `${plan.from ?? '(no tag)'} -> ${plan.to}` });
  try {
    await runRelease(ctx, session, plan.release, plan.to);
    const roll = rollOptions(ctx, role, options, plan.to);
    const deferred: number[] = [];
    for (const batch of plan.batches) {
      if (ctx.signal.aborted) throw new InterruptedError(`interrupted: ${host} stopped between workers`);
      const results = await Promise.allSettled(
        batch.map((index) => rollWorker(session, plan.workers.find((w) => w.index === index)!, roll)),
      );
      let firstError: unknown;
      const rolled: WorkerTimeline[] = [];
      results.forEach((result, n) => {
        const index = batch[n]!;
        if (result.status === 'fulfilled') {
          timelines.push(result.value);
          if (result.value.outcome === 'rolled') rolled.push(result.value);
          if (result.value.outcome === 'skipped') deferred.push(index);
          else moved.push(index);
        } else {
          if (result.reason instanceof HealthGateError) moved.push(index);
          firstError ??= result.reason;
        }
      });
      await waitForReadmission(ctx, host, rolled, plan.readmitDelayMs);
      if (firstError) throw firstError;
    }
    for (const index of deferred) {
      const timeline = await rollWorker(session, plan.workers.find((w) => w.index === index)!, roll);
      timelines.push(timeline);
      if (timeline.outcome === 'rolled') await waitForReadmission(ctx, host, [timeline], plan.readmitDelayMs);
      if (timeline.outcome === 'skipped') {
        throw new DrainTimeoutError(`${host}: worker ${index} still held a call after two drain timeouts; it stays on ${plan.from} and serving`, {
          next: `finish it when the call ends: voxops restart fleet --host ${host} --worker ${index}`,
        });
      }
      moved.push(index);
    }
    outcome = 'success';
  } catch (error) {
    detail = (error as Error).message;
    if (error instanceof InterruptedError) outcome = 'interrupted';
    if (error instanceof HealthGateError && plan.from) {
      ctx.reporter.emit({ type: 'host', host, phase: 'rolling-back', message: `back to ${plan.from}: workers ${moved.join(', ')}` });
      try {
        await rollBackHost(ctx, session, role, options, plan.from, moved, timelines, plan.readmitDelayMs);
      } catch (rollbackError) {
        ctx.reporter.emit({ type: 'host', host, phase: 'failed', message: (rollbackError as Error).message });
        throw new RollbackFailedError(
          `${host}: ${error.message}; then rolling back to ${plan.from} failed too: ${(rollbackError as Error).message}`,
          { cause: rollbackError, next: `check the host now: voxops status --host ${host}` },
        );
      }
      outcome = 'rolled-back';
      ctx.reporter.emit({ type: 'host', host, phase: 'rolled-back', message: `every worker is back on ${plan.from}` });
      throw new HealthGateError(`${error.message}; ${host} was rolled back to ${plan.from}`, error.details, {
        cause: error,
        next: `read the worker's log: voxops logs fleet --host ${host} --worker ${error.details.worker ?? 1}`,
      });
    }
    if (!(error instanceof InterruptedError)) ctx.reporter.emit({ type: 'host', host, phase: 'failed', message: detail });
    throw error;
  } finally {
    const durationMs = Date.now() - started;
    outcomes.set(host, { ...outcomeOf(plan, outcome, durationMs), ...(detail ? { message: detail } : {}) });
    if (outcome === 'success') ctx.reporter.emit({ type: 'host', host, phase: 'done', message: `${moved.length} workers on ${plan.to}` });
    await recordHistory(ctx, session, {
      at: new Date().toISOString(),
      host,
      role: 'fleet',
      action: options.action,
      from: plan.from,
      to: plan.to,
      outcome,
      durationMs,
      user: whoAmI(ctx.env),
      ...(ctx.env.BUILD_URL ? { buildUrl: ctx.env.BUILD_URL } : {}),
      ...(detail ? { detail: detail.slice(0, 300) } : {}),
    });
  }
}

/**
 * nginx shut each drained worker out for fail_timeout when it failed to connect to the moved
 * socket. Until that passes the worker serves nothing, so the next drain waits: at most one batch
 * is ever out of rotation.
 */
async function waitForReadmission(ctx: OperationContext, host: string, rolled: WorkerTimeline[], delayMs: number): Promise<void> {
  if (rolled.length === 0) return;
  const readmitAt = Math.max(...rolled.map((t) => t.healthyAt ?? Date.now())) + delayMs;
  for (const t of rolled) {
    t.inRotationAt = readmitAt;
    t.outOfRotationMs = readmitAt - (t.drainedAt ?? readmitAt);
  }
  const wait = readmitAt - Date.now();
  if (wait <= 0) return;
  ctx.reporter.emit({
    type: 'info',
    host,
    message: `worker ${rolled.map((t) => t.worker).join(', ')} back in nginx rotation in ${(wait / 1000).toFixed(1)}s (fail_timeout)`,
  });
  await sleep(wait, ctx.signal);
}

async function rollBackHost(
  ctx: OperationContext,
  session: HostSession,
  role: FleetRoleConfig,
  options: FleetDeployOptions,
  previous: string,
  moved: number[],
  timelines: WorkerTimeline[],
  readmitDelayMs: number,
): Promise<void> {
  await runRelease(ctx, session, releaseSteps(role, previous), previous, true);
  // No Ctrl-C and no skipping here: a half-finished rollback is the worst state to leave.
  const roll = { ...rollOptions(ctx, role, options, previous), signal: new AbortController().signal, onDrainTimeout: 'wait' as const };
  for (const index of moved) {
    const timeline = { ...(await rollWorker(session, workerSteps(role, index), roll)), outcome: 'rolled-back' as const };
    timelines.push(timeline);
    await waitForReadmission({ ...ctx, signal: roll.signal }, session.host.name, [timeline], readmitDelayMs);
  }
}

async function recordHistory(ctx: OperationContext, session: HostSession, entry: HistoryEntry): Promise<void> {
  try {
    await session.run(appendHistory(entry));
  } catch (error) {
    ctx.reporter.emit({ type: 'warning', host: entry.host, message: `could not record history: ${(error as Error).message}` });
  }
}

function outcomeOf(plan: FleetHostPlan, outcome: HostOutcome['outcome'], durationMs: number): HostOutcome {
  return { host: plan.host.name, role: 'fleet', from: plan.from, to: plan.to, outcome, durationMs };
}

function summarise(
  operation: string,
  tag: string,
  startedAt: number,
  exitCode: number,
  outcomes: Map<string, HostOutcome>,
  workers: WorkerTimeline[],
): OperationSummary {
  return {
    operation,
    role: 'fleet',
    tag,
    startedAt: new Date(startedAt).toISOString(),
    durationMs: Date.now() - startedAt,
    exitCode,
    hosts: [...outcomes.values()],
    workers,
  };
}
