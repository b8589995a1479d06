import { validateTag } from '../commands/tag.js';
import { hostsForRole, type Host } from '../config/inventory.js';
import {
  ConfigError,
  HealthGateError,
  describeHolder,
  InterruptedError,
  LockLostError,
  PreflightError,
  RollbackFailedError,
  UnreachableError,
  UsageError,
} from '../errors.js';
import type { HostOutcome, OperationSummary, WorkerTimeline } from '../events.js';
import type { HeldLock } from '../errors.js';
import { poll } from '../wait.js';
import type { HostSession } from '../exec/executor.js';
import {
  appendHistory,
  clearProgress,
  parseProgress,
  readProgress,
  writeProgress,
  type HistoryEntry,
  type Progress,
} from '../commands/state.js';
import { ReleaseWorkspace } from '../release/workspace.js';
import type { AnyDriver, HostContext, HostFacts, HostPlan, HostResult, OperationRequest, RoleDefinition } from '../roles/contract.js';
import { definitionOf } from '../roles/registry.js';
import { rerunCommand, resumable } from '../roles/shared/rerun.js';
import { makeHolder, stopSignal, whoAmI, type OperationContext } from './context.js';
import { agreeOnLastKnownGood, readLastKnownGood } from './history.js';
import { hostContext } from './host.js';
import { acquireAll, canTakeOver, keepLeases, leaseLeft, lockHeldError, lockIsStale, readHolder, releaseAll } from './locks.js';
import { printPlan } from './printer.js';
import { closeAll, connectAll } from './sessions.js';
import { runHosts } from './strategy.js';
import { summarise } from './summary.js';

/** The driver of a role that runs this action. */
export function driverFor(definition: RoleDefinition, action: OperationRequest['action']): AnyDriver {
  const driver = definition.drivers.find((d) => d.actions.includes(action));
  if (!driver) throw new UsageError(`${definition.role} has no ${action}`, { next: 'voxops --help' });
  return driver;
}

/** The hosts an operation touches: the role's, or the ones named with --hosts (every name must exist). */
export function operationHosts(ctx: OperationContext, request: OperationRequest): Host[] {
  const hosts = hostsForRole(ctx.inventory, request.role, request.hosts);
  if (hosts.length === 0) {
    throw new ConfigError(`environment ${ctx.inventory.environment} has no ${request.role} hosts`, [], {
      next: `list them under environments.${ctx.inventory.environment}.hosts.${request.role}, then: voxops config check`,
    });
  }
  return hosts;
}

/**
 * Every operation that changes hosts runs through here, once:
 * connect -> inspect (read only, every host) -> judge (pure) -> a dry run's printed plan, or:
 * lock every host -> change each host in order, undo on failure -> one history line per host ->
 * release the locks -> the summary (the last event, whatever happened).
 */
export async function runOperation(
  ctx: OperationContext,
  request: OperationRequest,
  definition = definitionOf(request.role),
): Promise<OperationSummary> {
  const driver = driverFor(definition, request.action);
  const { reporter, clock } = ctx;
  const startedAt = clock.now();
  const outcomes = new Map<string, HostOutcome>();
  const results = new Map<string, HostResult>();
  const timelines: WorkerTimeline[] = [];
  const workspace = new ReleaseWorkspace(ctx.inventory, ctx.env);
  let tag = request.tag;
  let sessions: Map<string, HostSession> | undefined;
  // the operator's Ctrl-C, or a lease this run lost: either stops every host at its next safe point
  const lost = new Set<string>();
  const leaseLost = new AbortController();
  const signal = AbortSignal.any([ctx.signal, leaseLost.signal]);
  const finish = (error?: unknown) => {
    const summary = summarise({
      operation: request.action,
      role: request.role,
      tag,
      startedAt,
      endedAt: clock.now(),
      ...(error !== undefined ? { error } : {}),
      hosts: outcomes.values(),
      workers: timelines,
    });
    reporter.emit({ type: 'summary', summary });
    return summary;
  };
  try {
    if (tag !== undefined) tag = validateTag(tag);
    const hosts = operationHosts(ctx, request);
    sessions = await connectAll(ctx.executor, hosts);
    const live = sessions;
    const contexts = new Map(hosts.map((h) => [h.name, hostContext(ctx, live.get(h.name)!, workspace, (t) => timelines.push(t), signal)]));
    if (request.lockWaitSeconds && !ctx.dryRun) await waitForLocks(ctx, [...contexts.values()], request.lockWaitSeconds);
    if (request.action === 'rollback' && !tag) tag = await resolveLastKnownGood(definition, [...contexts.values()]);
    const resolved: OperationRequest = { ...request, ...(tag ? { tag } : {}) };
    reporter.emit({
      type: 'start',
      operation: request.action,
      role: request.role,
      ...(tag ? { tag } : {}),
      hosts: hosts.map((h) => h.name),
      dryRun: ctx.dryRun,
    });

    const facts: HostFacts<unknown>[] = await Promise.all(
      hosts.map(async (host) => {
        const hc = contexts.get(host.name)!;
        const [lock, progress, found] = await Promise.all([readHolder(hc), readProgressOf(hc), driver.inspect(hc, resolved)]);
        return { host, ...(lock ? { lock } : {}), ...(progress ? { progress } : {}), facts: found };
      }),
    );
    const expired = new Map<string, HeldLock>();
    for (const f of facts) {
      if (!f.lock) continue;
      // --resume after a run of ours that was killed here: its process is gone, its lock need not run down
      const ours = request.resume === true && !canTakeOver(f.lock) && lockIsStale(f.lock) && /^[0-9a-f]{1,64}$/.test(f.lock.id);
      if (ours) f.lock = { ...f.lock, expired: true, leaseSeconds: 0 };
      if (canTakeOver(f.lock)) {
        expired.set(f.host.name, f.lock);
        const why = ours ? 'was taken by a run on this machine whose process is gone' : leaseLeft(f.lock);
        reporter.emit({
          type: 'warning',
          host: f.host.name,
          message: `the lock of ${describeHolder(f.lock)} ${why}: this run takes it over`,
        });
        continue;
      }
      if (!ctx.dryRun) throw lockHeldError(f.host.name, f.lock, ctx.clock.now());
      reporter.emit({ type: 'warning', host: f.host.name, message: `lock is held by ${f.lock.user}@${f.lock.machine}` });
    }
    const earlier = new Map(facts.map((f) => [f.host.name, f.progress]));
    const judgement = driver.judge(facts, resolved, ctx.inventory);
    if (judgement.refusal) throw judgement.refusal;
    for (const note of judgement.notes) reporter.emit({ type: 'info', ...note });
    for (const note of judgement.warnings) reporter.emit({ type: 'warning', ...note });
    if (judgement.problems.length > 0) {
      throw new PreflightError(
        `preflight refused the ${request.action} of ${request.role}: ${judgement.problems.length} problem(s); nothing was changed`,
        judgement.problems,
        {
          next: judgement.next ?? `fix the problems above (voxops status ${request.role} shows the hosts), then re-run`,
        },
      );
    }
    const plans: HostPlan[] = judgement.plans;
    for (const plan of plans) outcomes.set(plan.host.name, outcomeOf(request, plan, 'not-started'));
    await driver.prepare?.(plans, resolved, workspace, ctx.inventory);

    if (ctx.dryRun) {
      for (const plan of plans) {
        printPlan(reporter, plan, `${request.action} ${request.role}`, driver.describe(plan, resolved, ctx.inventory));
        if (!plan.noop) await driver.rehearse?.(contexts.get(plan.host.name)!, plan);
        outcomes.set(plan.host.name, outcomeOf(request, plan, 'planned'));
      }
      return finish();
    }

    for (const plan of plans.filter((p) => p.noop)) {
      reporter.emit({ type: 'info', host: plan.host.name, message: `${plan.noop}; nothing to do` });
      reporter.emit({ type: 'host', host: plan.host.name, phase: 'done', message: plan.noop! });
      outcomes.set(plan.host.name, { ...outcomeOf(request, plan, 'success'), message: plan.noop! });
    }
    const active = plans.filter((p) => !p.noop);
    if (active.length > 0) {
      const locked = active.map((p) => live.get(p.host.name)!);
      const holder = { ...makeHolder(ctx, `${request.action} ${request.role}`, tag), leaseSeconds: ctx.inventory.lock.leaseSeconds };
      await acquireAll(locked, holder, ctx.clock.now(), expired);
      const stopLeases = keepLeases(locked, holder, (host) => {
        lost.add(host);
        reporter.emit({
          type: 'warning',
          host,
          message:
            'this run lost its lock (it expired while the host was out of reach, and another run took it over): stopping at the next safe point',
        });
        leaseLost.abort('lock lost');
      });
      try {
        const change = (plan: HostPlan) =>
          changeHost(
            ctx,
            driver,
            contexts.get(plan.host.name)!,
            plan,
            resolved,
            outcomes,
            results,
            holder.id,
            timelines,
            earlier.get(plan.host.name),
          );
        const notStarted = await runHosts(active, request.parallel, signal, change);
        if (notStarted.length > 0) throw new InterruptedError(`interrupted before ${notStarted.join(', ')} started`);
      } finally {
        stopLeases();
        const stuck = await releaseAll(locked, holder);
        if (stuck.length > 0)
          reporter.emit({ type: 'warning', message: `could not release the lock on ${stuck.join(', ')}: run voxops lock release` });
      }
    }
    for (const note of driver.afterwards?.(plans, results, resolved, ctx.inventory) ?? []) reporter.emit({ type: 'warning', ...note });
    return finish();
  } catch (caught) {
    const error =
      caught instanceof InterruptedError && lost.size > 0
        ? new LockLostError(
            `lost the lock on ${[...lost].join(', ')}: it expired while this run could not renew it, and another run took it over; this run stopped at a safe point`,
            {
              cause: caught,
              next: 'voxops lock status shows who holds it now',
            },
          )
        : caught instanceof InterruptedError
          ? explainInterruption(ctx, request, tag, outcomes, caught)
          : caught;
    finish(error);
    throw error;
  } finally {
    workspace.cleanup();
    if (sessions) await closeAll(sessions);
  }
}

/** A host cut off in the middle of its change: say how far it got, that its lock runs down by itself, and how to finish. */
function cutOff(
  error: UnreachableError,
  name: string,
  request: OperationRequest,
  plan: HostPlan,
  timelines: readonly WorkerTimeline[],
  leaseSeconds: number,
): UnreachableError {
  const rolled = timelines.filter((t) => t.host === name && t.outcome === 'rolled').length;
  const how = rolled > 0 ? `; it was left part-way (${rolled} worker(s) already on ${plan.to})` : '; it may be left part-way';
  const again = rerunCommand(request, plan.to, { resume: true, host: name });
  return new UnreachableError(`${error.message}${how}; its lock expires by itself ${leaseSeconds}s after this run's last renewal`, {
    cause: error,
    next: `when ${name} answers again: voxops status --host ${name}, then ${again}`,
  });
}

/** `--lock-wait S`: wait until no host's lock is held (or it has expired), for at most S seconds. */
async function waitForLocks(ctx: OperationContext, hosts: readonly HostContext[], seconds: number): Promise<void> {
  const held = async () =>
    (await Promise.all(hosts.map(async (h) => ({ host: h.host.name, lock: await readHolder(h) })))).filter(
      (x) => x.lock && !canTakeOver(x.lock),
    );
  const wait = await poll({
    clock: ctx.clock,
    signal: ctx.signal,
    timeoutMs: seconds * 1000,
    intervalMs: LOCK_WAIT_POLL_MS,
    probe: held,
    until: (locks) => (locks.length === 0 ? true : undefined),
  });
  if (wait.outcome === 'done') return;
  const first = wait.last[0]!;
  if (wait.outcome === 'aborted') throw new InterruptedError(`interrupted while waiting for the lock on ${first.host}`);
  throw lockHeldError(first.host, first.lock, ctx.clock.now());
}

const LOCK_WAIT_POLL_MS = 2_000;

async function readProgressOf(host: HostContext): Promise<Progress | undefined> {
  const read = await host.run(readProgress());
  return read.exitCode === 0 ? parseProgress(read.stdout) : undefined;
}

/** Bare `rollback`: every host's last-known-good, from its own history. They must agree. */
async function resolveLastKnownGood(definition: RoleDefinition, hosts: readonly HostContext[]): Promise<string> {
  const found = await Promise.all(
    hosts.map(async (hc) => ({
      host: hc.host.name,
      lkg: await readLastKnownGood(hc, definition.role, await definition.observer.readTag(hc)),
    })),
  );
  return agreeOnLastKnownGood(definition.role, found);
}

function outcomeOf(request: OperationRequest, plan: HostPlan, outcome: HostOutcome['outcome']): HostOutcome {
  return { host: plan.host.name, role: request.role, from: plan.from, to: plan.to, outcome, durationMs: 0 };
}

/**
 * One host: apply the driver's change; after a failure let it undo what it did, then say so. A
 * history line records every attempt, whatever its outcome (a config nginx or HAProxy rejected is
 * a failed attempt), except a change that says it had nothing to do.
 */
async function changeHost(
  ctx: OperationContext,
  driver: AnyDriver,
  host: HostContext,
  plan: HostPlan,
  request: OperationRequest,
  outcomes: Map<string, HostOutcome>,
  results: Map<string, HostResult>,
  runId: string,
  timelines: readonly WorkerTimeline[],
  earlier: Progress | undefined,
): Promise<void> {
  const name = plan.host.name;
  const { reporter, clock } = ctx;
  const startedAt = clock.now();
  // a resumed change keeps the record it continues (when it began, what is installed), under this run
  let progress: Progress = resumable(earlier, request, plan.to)
    ? { ...earlier!, run: runId }
    : {
        run: runId,
        role: request.role,
        action: request.action,
        from: plan.from,
        to: plan.to,
        startedAt: new Date(startedAt).toISOString(),
      };

  const recording: HostContext = {
    ...host,
    recordProgress: async (done) => {
      progress = { ...progress, ...done };
      await host.run(writeProgress(progress));
    },
  };
  await host.run(writeProgress(progress));
  const change = driver.change(recording, plan, request);
  let outcome: HistoryEntry['outcome'] = 'failed';
  let result: HostResult | undefined;
  let failure: unknown;
  reporter.emit({ type: 'host', host: name, phase: 'start', message: `${plan.from ?? '(no tag)'} -> ${plan.to}` });
  try {
    result = await change.apply();
    results.set(name, result);
    outcome = 'success';
    await host.run(clearProgress()).catch(() => undefined);
    reporter.emit({ type: 'host', host: name, phase: 'done', ...(result.message ? { message: result.message } : {}) });
  } catch (error) {
    failure = error instanceof UnreachableError ? cutOff(error, name, request, plan, timelines, ctx.inventory.lock.leaseSeconds) : error;
    const undone = await undo(change, error, name, plan);
    if (error instanceof InterruptedError) outcome = 'interrupted';
    else if (undone) outcome = 'rolled-back';
    if (undone) reporter.emit({ type: 'host', host: name, phase: 'rolled-back', message: `${request.role} is back on ${undone.to}` });
    if (undone && error instanceof HealthGateError) {
      failure = new HealthGateError(`${error.message}; ${name} was rolled back to ${undone.to}`, error.details, {
        cause: error,
        ...(undone.next ? { next: undone.next } : {}),
      });
    }
    // rolled-back is where a host that was undone ends; an interrupted one is not a failure
    if (!undone && !(error instanceof InterruptedError))
      reporter.emit({ type: 'host', host: name, phase: 'failed', message: (failure as Error).message });
    throw failure;
  } finally {
    const durationMs = clock.now() - startedAt;
    const message = failure === undefined ? result?.message : (failure as Error).message;
    outcomes.set(name, {
      ...outcomeOf(request, plan, outcome),
      durationMs,
      startedAt,
      ...(result?.downMs !== undefined ? { downMs: result.downMs } : {}),
      ...(message ? { message } : {}),
    });
    if (result?.history !== false) {
      const detail = [plan.detail, failure === undefined ? undefined : (failure as Error).message].filter(Boolean).join(': ');
      const entry: HistoryEntry = {
        at: new Date(clock.now()).toISOString(),
        host: name,
        role: request.role,
        action: request.action,
        from: plan.from,
        to: plan.to,
        outcome,
        durationMs,
        user: whoAmI(ctx.env),
        ...(ctx.env.BUILD_URL ? { buildUrl: ctx.env.BUILD_URL } : {}),
        ...(detail ? { detail: detail.slice(0, 300) } : {}),
      };
      await host.run(appendHistory(entry)).catch((error: unknown) => host.warn(`could not record history: ${(error as Error).message}`));
    }
  }

  async function undo(change: ReturnType<AnyDriver['change']>, error: unknown, name: string, plan: HostPlan) {
    if (!change.undo) return undefined;
    try {
      return await change.undo(error);
    } catch (undoError) {
      reporter.emit({ type: 'host', host: name, phase: 'failed', message: (undoError as Error).message });
      const what = (error as Error).message;
      // the host's own errors start with its name already
      const said = what.startsWith(`${name}: `) ? what : `${name}: ${what}`;
      throw new RollbackFailedError(
        `${said}; then going back to ${plan.from ?? 'the previous release'} failed too: ${(undoError as Error).message}`,
        {
          cause: undoError,
          next: `check the host now: voxops status --host ${name}`,
        },
      );
    }
  }
}

/** An interrupted run says what state the hosts are in, and what to run to finish or undo it. */
function explainInterruption(
  ctx: OperationContext,
  request: OperationRequest,
  tag: string | undefined,
  outcomes: Map<string, HostOutcome>,
  error: InterruptedError,
): InterruptedError {
  const signal = stopSignal(ctx.signal);
  if (error.next)
    return error.exitCode === new InterruptedError('', { ...(signal ? { signal } : {}) }).exitCode
      ? error
      : new InterruptedError(error.message, { cause: error, next: error.next, ...(signal ? { signal } : {}) });
  const from = [...outcomes.values()].find((o) => o.from)?.from;
  const state = tag && from && tag !== from ? `; every host is serving, some may run ${tag} and some ${from}` : '; every host is serving';
  const again = request.action === 'restart' || tag ? rerunCommand(request, tag, { resume: true }) : undefined;
  const next = again
    ? `finish: ${again}${from && request.action === 'deploy' ? `, or undo: voxops rollback ${request.role} --to ${from}` : ''}`
    : `voxops status ${request.role}`;
  return new InterruptedError(`${error.message}${state}`, { cause: error, next, ...(signal ? { signal } : {}) });
}
