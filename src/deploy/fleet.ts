import pLimit from 'p-limit';
import type { Step } from '../commands/command.js';
import { buildsToPrune, hasBuild, listBuilds, pruneBuilds, restoreBuild, saveBuild } from '../commands/build-cache.js';
import { currentTag } from '../commands/git.js';
import { acquireLock, appendHistory, releaseOwnLock, type HistoryEntry } from '../commands/state.js';
import { compareTags, validateTag } from '../commands/tag.js';
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
  RollbackFailedError,
  UsageError,
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
import { recordHistory, resolveLastKnownGood, runStep, summarise } from './operation.js';
import { chooseSource, lookUpTag, placeRelease, ReleaseWorkspace } from './release.js';
import type { ReleaseSource } from '../cli/args.js';

export interface FleetDeployOptions {
  action: 'deploy' | 'rollback' | 'restart';
  /** deploy: required; rollback: absent means each host's last-known-good; restart: ignored */
  tag?: string;
  hosts?: string[];
  /** restart only: these workers instead of all */
  workers?: number[];
  /** rollback only: allow a "rollback" to a newer tag */
  force?: boolean;
  parallel: number;
  batch: number;
  drainTimeoutSeconds?: number;
  onDrainTimeout?: 'wait' | 'skip' | 'force';
  allowUnhealthy?: boolean;
  /** deploy and rollback: how the release reaches the hosts (default auto: git, else rsync) */
  source?: ReleaseSource;
}

export function fleetRole(ctx: OperationContext): FleetRoleConfig {
  const role = ctx.inventory.roles.fleet;
  if (!role) throw new ConfigError(`${ctx.inventory.file} has no roles.fleet section`);
  return role;
}

/**
 * Deploy, rollback and rolling restart of the fleet share one shape: preflight everywhere, lock
 * everywhere, then host by host, worker by worker, each drained and gated.
 */
export async function runFleetOperation(ctx: OperationContext, options: FleetDeployOptions): Promise<OperationSummary> {
  const role = fleetRole(ctx);
  if (options.action === 'deploy' && !options.tag) throw new UsageError('deploy needs --tag');
  let tag = options.tag ? validateTag(options.tag) : undefined;
  const hosts = hostsForRole(ctx.inventory, 'fleet', options.hosts);
  if (hosts.length === 0) throw new ConfigError(`environment ${ctx.inventory.environment} has no fleet hosts`);
  const startedAt = Date.now();
  const outcomes = new Map<string, HostOutcome>();
  const timelines: WorkerTimeline[] = [];

  const finish = (summary: OperationSummary) => {
    ctx.reporter.emit({ type: 'summary', summary });
    return summary;
  };
  let failure: unknown;
  const workspace = new ReleaseWorkspace(ctx.inventory, ctx.env);
  const sessions = await connectAll(ctx.executor, hosts).catch((error: unknown) => {
    failure = error;
    return undefined;
  });
  try {
    if (!sessions) throw failure;
    const list = hosts.map((h) => sessions.get(h.name)!);
    if (options.action === 'rollback' && !tag) tag = await resolveLastKnownGood(list, 'fleet', async (session) => {
      const result = await session.run(currentTag(role.path));
      return result.exitCode === 0 ? result.stdout.trim() || null : null;
    });
    ctx.reporter.emit({ type: 'start', operation: options.action, role: 'fleet', ...(tag ? { tag } : {}), hosts: hosts.map((h) => h.name), dryRun: ctx.dryRun });
    const lookup = options.action === 'deploy' ? 'origin' : options.action === 'rollback' ? 'local-then-origin' : 'none';
    const facts = await Promise.all(list.map((s) => gatherFleetFacts(s, role, tag, lookup)));
    preflight(ctx, role, facts, list, { ...options, ...(tag ? { tag } : {}) });
    const plans = list.map((s, i) => {
      const f = facts[i]!;
      const plan = planFleetHost(role, s.host, f.currentTag, tag ?? f.currentTag!, {
        batch: options.batch,
        readmitDelayMs: f.failTimeoutSeconds * 1000,
        ...(options.workers ? { workers: options.workers } : {}),
      });
      if (options.action === 'restart') delete plan.release;
      else if (plan.release && f.tagLookup) {
        const choice = chooseSource(s.host.name, plan.to, options.source ?? 'auto', f.tagLookup);
        plan.release.skipFetch = choice.skipFetch;
        plan.release.source = choice.source;
      }
      return plan;
    });
    for (const plan of plans) outcomes.set(plan.host.name, outcomeOf(plan, 'not-started', 0));
    // an rsync push's tree is built before any host changes: a tag missing from the local clone stops here
    if (tag && plans.some((p) => p.release?.source === 'rsync')) await workspace.tree('fleet', role, tag);
    if (ctx.dryRun) {
      for (const plan of plans) printPlan(ctx, plan, role);
      for (const plan of plans) outcomes.set(plan.host.name, outcomeOf(plan, 'planned', 0));
      return finish(summarise({ operation: options.action, role: 'fleet', tag, startedAt, exitCode: ExitCode.ok, hosts: outcomes.values(), workers: timelines }));
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
              await runHost(ctx, sessions.get(plan.host.name)!, plan, role, options, outcomes, timelines, workspace);
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
    return finish(summarise({ operation: options.action, role: 'fleet', tag, startedAt, exitCode: ExitCode.ok, hosts: outcomes.values(), workers: timelines }));
  } catch (error) {
    const code = error instanceof VoxopsError ? error.exitCode : ExitCode.internal;
    finish(summarise({ operation: options.action, role: 'fleet', tag, startedAt, exitCode: code, hosts: outcomes.values(), workers: timelines }));
    if (error instanceof InterruptedError && !error.next) {
      const from = [...outcomes.values()].find((o) => o.from)?.from;
      throw new InterruptedError(`${error.message}; every worker is serving, some may run ${tag ?? 'the new release'} and some ${from ?? 'the old one'}`, {
        cause: error,
        next: tag ? `finish: voxops ${options.action === 'restart' ? 'restart fleet' : `deploy fleet --tag ${tag}`}${from ? `, or undo: voxops rollback fleet --to ${from}` : ''}` : 'voxops status',
      });
    }
    throw error;
  } finally {
    workspace.cleanup();
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
      // a restart is how an unhealthy worker comes back, so it never refuses one
      ...(options.allowUnhealthy || options.action === 'restart' ? { allowUnhealthy: true } : {}),
    });
    for (const warning of judged.warnings) ctx.reporter.emit({ type: 'warning', host: f.host, message: warning });
    problems.push(...judged.problems);
    ctx.reporter.emit({
      type: 'info',
      host: f.host,
      message: `on ${f.currentTag ?? '(no tag)'}, ${f.workers.length} workers, ${f.freeMb ?? '?'} MiB free${f.failTimeoutSeconds ? `; nginx fail_timeout paces the roll: ${f.failTimeoutSeconds}s per worker (max_fails=0 on the upstream servers removes it)` : ''}`,
    });
  });
  if (options.action === 'rollback' && options.tag) {
    const newer = facts.filter((f) => f.currentTag && compareTags(options.tag!, f.currentTag) > 0);
    for (const f of newer) {
      const line = `${f.host}: ${options.tag} is newer than the deployed ${f.currentTag}: this "rollback" rolls forward`;
      if (options.force) ctx.reporter.emit({ type: 'warning', host: f.host, message: line });
      else problems.push(`${line} (add --force if that is what you want)`);
    }
  }
  if (options.action === 'restart') {
    for (const index of options.workers ?? []) {
      for (const s of sessions) {
        const count = s.host.workers ?? role.workers.count;
        if (index > count) problems.push(`${s.host.name}: there is no worker ${index} (the host has ${count})`);
      }
    }
  }
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
  if (plan.release?.source === 'rsync') {
    ctx.reporter.emit({ type: 'info', host, message: `rsync push of ${plan.to} from the local clone (git archive), host-owned paths untouched; then:` });
    show(plan.release.install);
  } else if (plan.release) {
    for (const step of [plan.release.fetch, plan.release.checkout, plan.release.verify, plan.release.install]) {
      if (step !== plan.release.fetch || !plan.release.skipFetch) show(step);
    }
  }
  if (plan.release && role.build) show(saveBuild('fleet', '<commit>', role.path, role.build.outputs), 'then, or instead of install when going back to a kept build: ');
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

/**
 * Put the tag on the host (git checkout, or an rsync push), then install it, or, going back to code
 * this host has built before (rollbacks), restore the kept build instead of installing again.
 */
async function runRelease(
  ctx: OperationContext,
  session: HostSession,
  role: FleetRoleConfig,
  release: ReleaseSteps,
  tag: string,
  preferKeptBuild: boolean,
  workspace: ReleaseWorkspace,
): Promise<void> {
  const host = session.host.name;
  const timed = (step: Step) => runStep(ctx, session, step);
  const build = role.build;
  const head = await placeRelease(ctx, session, {
    path: role.path,
    tag,
    choice: { source: release.source ?? 'git', skipFetch: release.skipFetch ?? false },
    workspace,
    role: 'fleet',
    repo: role,
    preserve: [...role.preserve, ...(build?.outputs ?? []).map((o) => `/${o}`)],
  });
  if (build && preferKeptBuild && (await session.run(hasBuild('fleet', head))).exitCode === 0) {
    await timed(restoreBuild('fleet', head, role.path, build.outputs));
    return;
  }
  await timed(release.install);
  if (!build) return;
  try {
    await timed(saveBuild('fleet', head, role.path, build.outputs));
    const listing = await session.run(listBuilds('fleet'));
    const old = buildsToPrune(listing.stdout, build.keep, head);
    if (old.length > 0) await session.run(pruneBuilds('fleet', old));
  } catch (error) {
    // a full disk must not fail a deploy whose install succeeded; the next rollback just installs
    ctx.reporter.emit({ type: 'warning', host, message: `could not keep this build for rollback: ${(error as Error).message}` });
  }
}

/** How a worker is rolled: the inventory's timings, unless the operator overrode the drain. */
export function rollOptions(
  ctx: OperationContext,
  role: FleetRoleConfig,
  options: Pick<FleetDeployOptions, 'drainTimeoutSeconds' | 'onDrainTimeout'>,
  expectVersion: string,
): RollOptions {
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
  workspace: ReleaseWorkspace,
): Promise<void> {
  const host = plan.host.name;
  const started = Date.now();
  const moved: number[] = [];
  let outcome: HistoryEntry['outcome'] = 'failed';
  let detail: string | undefined;
  ctx.reporter.emit({ type: 'host', host, phase: 'start', message: `${plan.from ?? '(no tag)'} -> ${plan.to}` });
  try {
    if (plan.release) await runRelease(ctx, session, role, plan.release, plan.to, options.action === 'rollback', workspace);
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
        await rollBackHost(ctx, session, role, options, plan.from, moved, timelines, plan.readmitDelayMs, workspace);
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
export async function waitForReadmission(ctx: OperationContext, host: string, rolled: WorkerTimeline[], delayMs: number): Promise<void> {
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
  workspace: ReleaseWorkspace,
): Promise<void> {
  // the host's own clone first (an rsync push never touches .git), then origin, then rsync
  const choice = chooseSource(session.host.name, previous, 'auto', await lookUpTag(session, role.path, previous, true));
  if (choice.problem) throw new RollbackFailedError(choice.problem, { next: `voxops status --host ${session.host.name}` });
  await runRelease(ctx, session, role, { ...releaseSteps(role, previous), skipFetch: choice.skipFetch, source: choice.source }, previous, true, workspace);
  // No Ctrl-C and no skipping here: a half-finished rollback is the worst state to leave.
  const roll = { ...rollOptions(ctx, role, options, previous), signal: new AbortController().signal, onDrainTimeout: 'wait' as const };
  for (const index of moved) {
    const timeline = { ...(await rollWorker(session, workerSteps(role, index), roll)), outcome: 'rolled-back' as const };
    timelines.push(timeline);
    await waitForReadmission({ ...ctx, signal: roll.signal }, session.host.name, [timeline], readmitDelayMs);
  }
}



function outcomeOf(plan: FleetHostPlan, outcome: HostOutcome['outcome'], durationMs: number): HostOutcome {
  return { host: plan.host.name, role: 'fleet', from: plan.from, to: plan.to, outcome, durationMs };
}

