import type { Step } from '../commands/command.js';
import {
  dropConfigBackup,
  dumpNginxConfig,
  installConfigFile,
  nginxErrorLines,
  readConfigFile,
  reloadNginx,
  renderScaledUpstream,
  resolveConfigFile,
  restoreConfigFile,
  testNginxConfig,
  upstreamSockets,
} from '../commands/nginx.js';
import { acquireLock, appendHistory, releaseOwnLock, type HistoryEntry } from '../commands/state.js';
import { disableUnitNow, enableUnitNow, unitEnabledStates, unitStates } from '../commands/systemd.js';
import { parseHealthProbe, probeHealth, probeHealthUrl, readEnvVariable, workerSocket } from '../commands/worker.js';
import { hostsForRole } from '../config/inventory.js';
import type { FleetRoleConfig } from '../config/schema.js';
import {
  ConfigError,
  ConfigRejectedError,
  DrainTimeoutError,
  HealthGateError,
  ExitCode,
  InterruptedError,
  LockHeldError,
  PreflightError,
  UnhealthyError,
  UsageError,
  VoxopsError,
} from '../errors.js';
import type { HostSession } from '../exec/executor.js';
import { renderCommand } from '../exec/render.js';
import { workerIndices, workerSteps, type WorkerSteps } from '../plan/fleet.js';
import { planScale, socketIndex, type ScalePlan } from '../plan/scale.js';
import { makeHolder, sleep, whoAmI, type OperationContext } from './context.js';
import type { HostOutcome, WorkerTimeline } from './events.js';
import { recordHistory, summarise } from './operation.js';
import { gatherFleetFacts, judgeFleetFacts } from './fleet-facts.js';
import { fleetRole, rollOptions, waitForReadmission } from './fleet.js';
import { acquireAll, lockHeldNext, releaseAll } from './locks.js';
import { gateWorker, rollWorker, type RollOptions } from './roll-worker.js';
import { closeAll, connectAll } from './sessions.js';

export interface ScaleOptions {
  /** the fleet host, by inventory name */
  host: string;
  workers: number;
  drainTimeoutSeconds?: number;
}

/** curl's "could not connect": nothing listens on the socket any more. */
const CURL_COULD_NOT_CONNECT = 7;
/** How long the final check through nginx may take to see the new count (a busy host can answer 502). */
const VERIFY_TIMEOUT_MS = 30_000;

/** What preflight learned about the host; nothing has changed when it returns. */
interface ScaleFacts {
  tag: string;
  /** the host's current count: the env variable */
  current: number;
  /** the file that holds the upstream, symlinks resolved */
  target: string;
  /** the upstream after the change */
  rendered: string;
  upstreamChanged: boolean;
  plan: ScalePlan;
  failTimeoutSeconds: number;
}

/**
 * `voxops scale fleet --host H --workers N`: change the number of single-call workers on one fleet
 * host without dropping a call. Growing starts and gates the new workers before nginx sends them
 * anything; shrinking takes workers out of nginx first and stops each only when its call has ended.
 * Then every worker that stays is restarted, drained and gated like `voxops restart fleet`, to read
 * the new count (the app reads it only at start), and nginx's view is checked.
 */
export async function runScale(ctx: OperationContext, options: ScaleOptions): Promise<void> {
  const role = fleetRole(ctx);
  const envFile = role.workers.envFile;
  if (!envFile) {
    throw new ConfigError(`${ctx.inventory.file}: scale needs roles.fleet.workers.envFile (where ${role.workers.countVariable} is set)`, [], {
      next: 'add it, then: voxops config check',
    });
  }
  const fleet = hostsForRole(ctx.inventory, 'fleet');
  const host = fleet.find((h) => h.name === options.host);
  if (!host) {
    const known = fleet.map((h) => h.name);
    throw new UsageError(`no fleet host named ${options.host} in environment ${ctx.inventory.environment}; the fleet hosts are: ${known.join(', ') || '(none)'}`, {
      next: `voxops scale fleet --host ${known[0] ?? '<host>'} --workers ${options.workers}`,
    });
  }
  const to = options.workers;
  if (!Number.isInteger(to) || to < 1 || to > 256) throw new UsageError(`--workers ${to}: must be a whole number from 1 to 256`);

  const startedAt = Date.now();
  const timelines: WorkerTimeline[] = [];
  let outcome: HostOutcome = { host: host.name, role: 'fleet', from: null, to: '', outcome: 'not-started', durationMs: 0 };
  const finish = (exitCode: number) =>
    ctx.reporter.emit({ type: 'summary', summary: summarise({ operation: 'scale', role: 'fleet', startedAt, exitCode, hosts: [outcome], workers: timelines }) });

  ctx.reporter.emit({ type: 'start', operation: 'scale', role: 'fleet', hosts: [host.name], dryRun: ctx.dryRun });
  let sessions: Map<string, HostSession> | undefined;
  try {
    sessions = await connectAll(ctx.executor, [host]);
    const session = sessions.get(host.name)!;
    const facts = await preflight(ctx, session, role, envFile, to);
    outcome = { ...outcome, from: facts.tag, to: facts.tag };
    if (facts.current === to && facts.plan.removed.length === 0) {
      ctx.reporter.emit({ type: 'info', host: host.name, message: `${host.name} already runs ${to} workers; nothing to do` });
      outcome = { ...outcome, outcome: 'success', message: 'nothing to do' };
      warnAboutInventory(ctx, role, host.name, host.workers, to);
      finish(ExitCode.ok);
      return;
    }
    if (ctx.dryRun) {
      printPlan(ctx, role, facts);
      outcome = { ...outcome, outcome: 'planned' };
      finish(ExitCode.ok);
      return;
    }
    const holder = makeHolder(ctx.env, 'scale');
    await acquireAll([session], holder);
    const started = Date.now();
    let result: HistoryEntry['outcome'] = 'failed';
    let detail: string | undefined;
    try {
      ctx.reporter.emit({ type: 'host', host: host.name, phase: 'start', message: `${facts.current} -> ${to} workers` });
      await applyScale(ctx, session, role, facts, options, timelines);
      result = 'success';
      ctx.reporter.emit({ type: 'host', host: host.name, phase: 'done', message: `${to} workers, capacity ${to}` });
    } catch (error) {
      detail = (error as Error).message;
      if (error instanceof InterruptedError) result = 'interrupted';
      else ctx.reporter.emit({ type: 'host', host: host.name, phase: 'failed', message: detail });
      throw error;
    } finally {
      outcome = { ...outcome, outcome: result, durationMs: Date.now() - started, ...(detail ? { message: detail } : {}) };
      await recordHistory(ctx, session, {
        at: new Date().toISOString(),
        host: host.name,
        role: 'fleet',
        action: 'scale',
        from: facts.tag,
        to: facts.tag,
        outcome: result,
        durationMs: Date.now() - started,
        user: whoAmI(ctx.env),
        ...(ctx.env.BUILD_URL ? { buildUrl: ctx.env.BUILD_URL } : {}),
        detail: `workers ${facts.current} -> ${to}${detail ? `: ${detail}` : ''}`.slice(0, 300),
      });
      const stuck = await releaseAll([session], holder);
      if (stuck.length > 0) ctx.reporter.emit({ type: 'warning', host: host.name, message: 'could not release the lock: run voxops lock release' });
    }
    warnAboutInventory(ctx, role, host.name, host.workers, to);
    finish(ExitCode.ok);
  } catch (error) {
    finish(error instanceof VoxopsError ? error.exitCode : ExitCode.internal);
    throw error;
  } finally {
    if (sessions) await closeAll(sessions);
  }
}

/** voxops does not edit the inventory, and deploy/restart roll the inventory's count. */
function warnAboutInventory(ctx: OperationContext, role: FleetRoleConfig, host: string, configured: number | undefined, to: number): void {
  const count = configured ?? role.workers.count;
  if (count === to) return;
  ctx.reporter.emit({
    type: 'warning',
    host,
    message: `set workers: ${to} for ${host} in ${ctx.inventory.file} (environments.${ctx.inventory.environment}.hosts.fleet): it says ${count}, and deploy/restart roll the inventory's count${
      ctx.inventory.hosts.some((h) => h.role === 'ingress') ? `; then voxops deploy ingress, so HAProxy's maxconn for ${host} is ${to} too` : ''
    }`,
  });
}

/** Read-only: every refusal is found before the lock is taken and before anything changes. */
async function preflight(ctx: OperationContext, session: HostSession, role: FleetRoleConfig, envFile: string, to: number): Promise<ScaleFacts> {
  const host = session.host.name;
  const again = `voxops scale fleet --host ${host} --workers ${to}`;
  const tested = await session.run(testNginxConfig());
  if (tested.exitCode !== 0) {
    throw new ConfigRejectedError(`${host}: nginx rejects its configuration as it is now, before any change: ${nginxErrorLines(tested.stderr)}; nothing was changed`, {
      next: `fix what nginx -t names on ${host}, then: ${again}`,
    });
  }
  const [countLine, resolved, dump] = await Promise.all([
    session.run(readEnvVariable(envFile, role.workers.countVariable)),
    session.run(resolveConfigFile(role.nginx.config)),
    session.run(dumpNginxConfig()),
  ]);
  const problems: string[] = [];
  const value = countLine.exitCode === 0 ? countLine.stdout.trim().split('=')[1]?.replace(/["']/g, '') : undefined;
  const current = value !== undefined && /^\d+$/.test(value) ? Number(value) : undefined;
  if (current === undefined || current < 1) {
    throw new PreflightError(`${host}: ${role.workers.countVariable} is not set to a worker count in ${envFile}; nothing was changed`, [], {
      next: `voxops status --host ${host}`,
    });
  }
  if (resolved.exitCode !== 0) {
    throw new PreflightError(`${host}: ${role.nginx.config} (roles.fleet.nginx.config) does not exist; nothing was changed`, [], { next: 'voxops config check' });
  }
  const target = resolved.stdout.trim();
  const config = (await session.run(readConfigFile(target))).stdout;

  const upstream = role.nginx.upstream;
  const live = upstreamSockets(dump.stdout, upstream);
  const inFile = upstreamSockets(config, upstream);
  if (!live) problems.push(`${host}: nginx -T has no upstream ${upstream}`);
  else if (!inFile) problems.push(`${host}: upstream ${upstream} is not in ${target} (roles.fleet.nginx.config)`);
  else if (live.join(' ') !== inFile.join(' ')) problems.push(`${host}: upstream ${upstream} in ${target} is not what nginx runs (a reload pending?)`);
  const listed = (live ?? []).map((s) => socketIndex(role.workers.socket, s));
  if (listed.some((i) => i === undefined)) problems.push(`${host}: upstream ${upstream} lists sockets that do not match ${role.workers.socket}`);
  const upstreamCount = listed.length;

  // every unit that could be enabled: beyond both counts, so a stray one is seen
  const span = workerIndices(Math.max(current, to, upstreamCount) + 2);
  const units = span.map((i) => workerSteps(role, i).unit);
  const [enabledOut, activeOut] = await Promise.all([session.run(unitEnabledStates(units)), session.run(unitStates(units))]);
  const enabledLines = enabledOut.stdout.trim().split('\n');
  const activeLines = activeOut.stdout.trim().split('\n');
  const enabled = span.filter((_, n) => enabledLines[n]?.trim() === 'enabled');
  const active = span.filter((_, n) => ['active', 'activating', 'reloading'].includes(activeLines[n]?.trim() ?? ''));
  const same = (a: readonly (number | undefined)[], b: readonly number[]) => a.length === b.length && a.every((x, n) => x === b[n]);
  const all = (n: number) => workerIndices(n);

  // A shrink that stopped at a drain timeout left the upstream at `to` and some removed units running.
  const resuming = to < current && same(listed, all(to)) && all(to).every((i) => enabled.includes(i)) && enabled.every((i) => i <= current);
  const consistent = same(listed, all(current)) && same(enabled, all(current));
  if (!consistent && !resuming) {
    problems.push(
      `${host}: the worker count is inconsistent: ${role.workers.countVariable}=${current}, enabled units ${enabled.join(',') || '(none)'}, upstream ${upstream} lists workers ${listed.join(',') || '(none)'}; they must agree before a scale`,
    );
  }
  if (to > current) {
    const busy = all(to).filter((i) => i > current && active.includes(i));
    if (busy.length > 0) problems.push(`${host}: ${busy.map((i) => workerSteps(role, i).unit).join(', ')} already running though not in use`);
  }

  const healthView: HostSession = { host: { ...session.host, workers: resuming ? to : current }, run: (step: Step) => session.run(step), close: async () => {} };
  const facts = await gatherFleetFacts(healthView, role);
  const judged = judgeFleetFacts(facts, role, { workers: current });
  if (facts.lock && !ctx.dryRun) throw new LockHeldError(host, facts.lock, { next: lockHeldNext(facts.lock) });
  if (facts.lock) ctx.reporter.emit({ type: 'warning', host, message: `lock is held by ${facts.lock.user}@${facts.lock.machine}` });
  for (const warning of judged.warnings) ctx.reporter.emit({ type: 'warning', host, message: warning });
  problems.push(...judged.problems);

  const plan = planScale(role, envFile, { host, from: current, to, ...(resuming ? { stillEnabled: enabled } : {}) });
  const rendered = renderScaledUpstream(config, { upstream, sockets: plan.sockets, tries: to });
  if (!rendered.ok) problems.push(`${host}: cannot rewrite ${target}: ${rendered.problem}`);
  if (problems.length > 0) {
    throw new PreflightError(`preflight refused the scale of ${host}: ${problems.length} problem(s); nothing was changed`, problems, {
      next: `fix the problems above (voxops status --host ${host} shows the host), then: ${again}`,
    });
  }
  ctx.reporter.emit({
    type: 'info',
    host,
    message: `on ${facts.currentTag}, ${current} workers${resuming ? ` (resuming a shrink: still to remove ${plan.removed.join(', ') || 'none'})` : ''}; nginx fail_timeout paces the restarts: ${facts.failTimeoutSeconds}s per worker`,
  });
  const text = (rendered as { text: string }).text;
  return {
    tag: facts.currentTag!,
    current,
    target,
    rendered: text,
    upstreamChanged: text !== config,
    plan,
    failTimeoutSeconds: facts.failTimeoutSeconds,
  };
}


async function applyScale(
  ctx: OperationContext,
  session: HostSession,
  role: FleetRoleConfig,
  facts: ScaleFacts,
  options: ScaleOptions,
  timelines: WorkerTimeline[],
): Promise<void> {
  const { plan } = facts;
  const host = session.host.name;
  const roll = rollOptions(ctx, role, options, facts.tag);
  if (plan.direction === 'grow') {
    // nginx must accept the new upstream before any unit starts: try it, and put the old file back
    if (facts.upstreamChanged) await tryUpstream(ctx, session, facts, false);
    await setCount(ctx, session, role, plan.setCount, plan.to);
    const started: WorkerSteps[] = [];
    try {
      for (const index of plan.added) {
        if (ctx.signal.aborted) throw new InterruptedError(`interrupted: ${host} was growing; the new workers were stopped again`);
        const steps = workerSteps(role, index);
        started.push(steps);
        await session.run(enableUnitNow(steps.unit));
        const at = Date.now();
        ctx.reporter.emit({ type: 'worker', host, worker: index, phase: 'started', message: `${steps.unit} enabled and started` });
        const probe = await gateWorker(session, steps, roll, at);
        timelines.push({ host, worker: index, unit: steps.unit, restartedAt: at, healthyAt: Date.now(), downtimeMs: Date.now() - at, version: facts.tag, outcome: 'rolled' });
        ctx.reporter.emit({ type: 'worker', host, worker: index, phase: 'healthy', message: `pid ${probe.body?.pid}, not in nginx yet` });
      }
      if (facts.upstreamChanged) await tryUpstream(ctx, session, facts, true);
    } catch (error) {
      // the new workers never served a call: stop them and put the old count back
      ctx.reporter.emit({ type: 'host', host, phase: 'rolling-back', message: `stopping ${started.map((s) => s.unit).join(', ') || 'nothing'}, ${role.workers.countVariable} back to ${plan.from}` });
      for (const steps of started) await session.run(disableUnitNow(steps.unit));
      await setCount(ctx, session, role, plan.restoreCount, plan.from);
      throw error;
    }
    ctx.reporter.emit({ type: 'info', host, message: `workers ${plan.added.join(', ')} in nginx rotation` });
  } else {
    if (facts.upstreamChanged) await tryUpstream(ctx, session, facts, true);
    ctx.reporter.emit({ type: 'info', host, message: `workers ${plan.removed.join(', ') || '(none)'} out of nginx rotation; their live calls go on` });
    await removeWorkers(ctx, session, role, facts, options, roll);
    await setCount(ctx, session, role, plan.setCount, plan.to);
  }
  await restartWorkers(ctx, session, role, facts, roll, timelines);
  await verify(ctx, session, role, plan.to);
}

/** Write the new count, then read the one line back (the rest of the file holds secrets). */
async function setCount(ctx: OperationContext, session: HostSession, role: FleetRoleConfig, step: Step, count: number): Promise<void> {
  const host = session.host.name;
  const envFile = role.workers.envFile!;
  const started = Date.now();
  ctx.reporter.emit({ type: 'step', host, step: `set ${role.workers.countVariable}=${count} in ${envFile}`, status: 'start' });
  await session.run(step);
  const line = (await session.run(readEnvVariable(envFile, role.workers.countVariable))).stdout.trim();
  if (line !== `${role.workers.countVariable}=${count}`) {
    throw new PreflightError(`${host}: ${envFile} does not read ${role.workers.countVariable}=${count} after the edit`, [], { next: `voxops status --host ${host}` });
  }
  ctx.reporter.emit({ type: 'step', host, step: `set ${role.workers.countVariable}=${count} in ${envFile}`, status: 'done', durationMs: Date.now() - started });
}

/**
 * Put the new upstream in place and `nginx -t` it. Rejected: the backup goes back (byte for byte)
 * and nothing is loaded, exit 11. Accepted: reload when `load`, else put the old file back for now
 * (a grow tries the config before it starts any unit).
 */
async function tryUpstream(ctx: OperationContext, session: HostSession, facts: ScaleFacts, load: boolean): Promise<void> {
  const host = session.host.name;
  const name = load ? `new upstream (${facts.plan.to} workers): nginx -t, reload` : `new upstream (${facts.plan.to} workers): nginx -t only`;
  ctx.reporter.emit({ type: 'step', host, step: name, status: 'start' });
  const started = Date.now();
  await session.run(installConfigFile(facts.target, facts.rendered));
  let tested;
  try {
    tested = await session.run(testNginxConfig());
  } finally {
    if (!load || tested?.exitCode !== 0) await session.run(restoreConfigFile(facts.target));
  }
  if (tested.exitCode !== 0) {
    throw new ConfigRejectedError(
      `${host}: nginx -t rejected the ${facts.plan.to}-worker upstream: ${nginxErrorLines(tested.stderr)}; it was not loaded and ${facts.target} is back as it was`,
      { next: `fix what nginx names on ${host} (nginx -t), then: voxops scale fleet --host ${host} --workers ${facts.plan.to}` },
    );
  }
  if (load) {
    try {
      await session.run(reloadNginx());
    } catch (error) {
      // nginx kept its old config: the file must say the same, or the next reload by anything loads ours
      await session.run(restoreConfigFile(facts.target));
      throw error;
    }
    await session.run(dropConfigBackup()).catch(() => undefined);
  }
  ctx.reporter.emit({ type: 'step', host, step: name, status: 'done', durationMs: Date.now() - started });
}

/**
 * Removed workers are out of the upstream. Move each one's socket aside as well (no late
 * connection can reach it), wait until its call has ended, then disable it. All wait together,
 * bounded by the drain timeout; a worker still in a call then stays up, out of rotation.
 */
async function removeWorkers(
  ctx: OperationContext,
  session: HostSession,
  role: FleetRoleConfig,
  facts: ScaleFacts,
  options: ScaleOptions,
  roll: RollOptions,
): Promise<void> {
  const host = session.host.name;
  const timeoutMs = roll.drainTimeoutMs;
  const deadline = Date.now() + timeoutMs;
  const busy: number[] = [];
  let interrupted = false;
  await Promise.all(
    facts.plan.removed.map(async (index) => {
      const steps = workerSteps(role, index);
      const drained = await session.run(steps.drain);
      ctx.reporter.emit({ type: 'worker', host, worker: index, phase: 'drained', ...(drained.exitCode === 0 ? {} : { message: 'no socket: it was not serving' }) });
      if (drained.exitCode === 0) {
        const waitStarted = Date.now();
        for (;;) {
          const result = await session.run(steps.probeDrained);
          const p = parseHealthProbe(result.stdout, result.stderr);
          if (result.exitCode === CURL_COULD_NOT_CONNECT || (p.httpStatus !== 0 && p.body?.active_calls === 0)) break;
          if (ctx.signal.aborted || Date.now() >= deadline) {
            await session.run(steps.undrain);
            interrupted ||= ctx.signal.aborted;
            if (!ctx.signal.aborted) busy.push(index);
            ctx.reporter.emit({ type: 'worker', host, worker: index, phase: 'undrained', message: 'still in a call: left running, out of nginx rotation' });
            return;
          }
          await sleep(Math.max(roll.pollMs, 200), ctx.signal);
        }
        ctx.reporter.emit({ type: 'worker', host, worker: index, phase: 'idle', message: `waited ${((Date.now() - waitStarted) / 1000).toFixed(1)}s for its call to end` });
      }
      await session.run(disableUnitNow(steps.unit));
      await session.run(steps.cleanup);
      ctx.reporter.emit({ type: 'worker', host, worker: index, phase: 'removed', message: `${steps.unit} disabled and stopped` });
    }),
  );
  const again = `voxops scale fleet --host ${host} --workers ${facts.plan.to}`;
  if (interrupted) {
    throw new InterruptedError(`interrupted: ${host} is half scaled: nginx sends calls to ${facts.plan.to} workers, the removed ones still running are out of rotation`, { next: again });
  }
  if (busy.length > 0) {
    const units = busy.map((i) => workerSteps(role, i).unit).join(', ');
    throw new DrainTimeoutError(
      `${host}: ${units} still held a call after ${Math.round(timeoutMs / 1000)}s; left running out of nginx rotation (its call goes on). ${role.workers.countVariable} is still ${facts.current} and the other workers were not restarted`,
      { next: `when its call has ended, finish with: ${again}${options.drainTimeoutSeconds ? '' : ' --drain-timeout <seconds>'}` },
    );
  }
}

/** The workers that stay read the new count only at start: restart them like `voxops restart fleet`. */
async function restartWorkers(
  ctx: OperationContext,
  session: HostSession,
  role: FleetRoleConfig,
  facts: ScaleFacts,
  roll: RollOptions,
  timelines: WorkerTimeline[],
): Promise<void> {
  const host = session.host.name;
  const readmitMs = facts.failTimeoutSeconds * 1000;
  const deferred: number[] = [];
  const interrupted = () =>
    new InterruptedError(`interrupted: ${host} runs ${facts.plan.to} workers, but some still report ${facts.current}`, { next: `voxops restart fleet --host ${host}` });
  // the same release restarted: a worker that fails its gate is a host problem, not a bad release
  const gated = (index: number) =>
    rollWorker(session, workerSteps(role, index), roll).catch((error: unknown) => {
      if (!(error instanceof HealthGateError)) throw error;
      throw new HealthGateError(
        `${error.message}; ${host} is scaled to ${facts.plan.to} workers (${role.workers.countVariable}=${facts.plan.to}, nginx updated), but worker ${index} did not come back`,
        error.details,
        { cause: error, next: `read its log (voxops logs fleet --host ${host} --worker ${index}), then: voxops restart fleet --host ${host}` },
      );
    });
  for (const index of facts.plan.restarted) {
    if (ctx.signal.aborted) throw interrupted();
    const timeline = await gated(index);
    timelines.push(timeline);
    if (timeline.outcome === 'skipped') deferred.push(index);
    else await waitForReadmission(ctx, host, [timeline], readmitMs);
  }
  for (const index of deferred) {
    if (ctx.signal.aborted) throw interrupted();
    const timeline = await gated(index);
    timelines.push(timeline);
    if (timeline.outcome === 'skipped') {
      throw new DrainTimeoutError(`${host}: worker ${index} still held a call after two drain timeouts; it serves on, still reading ${facts.current} workers`, {
        next: `when its call ends: voxops restart fleet --host ${host} --worker ${index}`,
      });
    }
    await waitForReadmission(ctx, host, [timeline], readmitMs);
  }
}

function fleetHealthPath(role: FleetRoleConfig): string {
  return `${role.health.path.replace(/\/$/, '')}/fleet`;
}

function fleetHealthUrl(role: FleetRoleConfig): string {
  return `http://127.0.0.1${fleetHealthPath(role)}`;
}

/**
 * Through nginx on the host: the app's own view of the fleet must be N expected and N capacity. When
 * every worker holds a call nginx has no free upstream (502); then worker 1 is asked over its socket.
 */
async function verify(ctx: OperationContext, session: HostSession, role: FleetRoleConfig, to: number): Promise<void> {
  const host = session.host.name;
  const viaNginx = probeHealthUrl(fleetHealthUrl(role), 5);
  const direct = probeHealth(workerSocket(role.workers.socket, 1), fleetHealthPath(role), 5);
  const deadline = Date.now() + VERIFY_TIMEOUT_MS;
  let seen = '';
  for (let attempt = 0; ; attempt++) {
    let step = viaNginx;
    let p = parseHealthProbe(...outputOf(await session.run(step)));
    if ([502, 503, 504].includes(p.httpStatus) && attempt >= 5) {
      step = direct;
      p = parseHealthProbe(...outputOf(await session.run(step)));
    }
    const expected = p.body?.expected_workers;
    const capacity = p.body?.capacity;
    if (p.httpStatus === 200 && expected === to && capacity === to) {
      const how = step === viaNginx ? 'through nginx' : `over worker 1's socket (nginx had no free worker: all busy)`;
      ctx.reporter.emit({ type: 'info', host, message: `${fleetHealthPath(role)} ${how}: expected_workers ${to}, capacity ${to}` });
      return;
    }
    seen = p.httpStatus === 200 ? `expected_workers ${String(expected)}, capacity ${String(capacity)}` : p.httpStatus ? `HTTP ${p.httpStatus}` : (p.error ?? 'no answer');
    if (ctx.signal.aborted) {
      throw new InterruptedError(`interrupted while checking ${host}'s capacity: the scale to ${to} workers itself is done`, { next: `voxops status --host ${host}` });
    }
    if (Date.now() >= deadline) {
      throw new UnhealthyError(`${host}: ${step.name} reports ${seen}, not ${to}`, [`${host}: ${fleetHealthPath(role)}: ${seen}`], {
        next: `voxops status --host ${host}`,
      });
    }
    await sleep(1_000, ctx.signal);
  }
}

function outputOf(result: { stdout: string; stderr: string }): [string, string] {
  return [result.stdout, result.stderr];
}

function printPlan(ctx: OperationContext, role: FleetRoleConfig, facts: ScaleFacts): void {
  const { plan } = facts;
  const host = plan.host;
  const show = (step: Step, prefix = '') => ctx.reporter.emit({ type: 'command', host, step: step.name, command: `${prefix}${renderCommand(step.command)}` });
  const upstream = (load: boolean) => {
    show(installConfigFile(facts.target, facts.rendered), '(new file on stdin) ');
    show(testNginxConfig(), 'on failure restore the backup and stop (exit 11): ');
    if (load) show(reloadNginx());
    show(load ? dropConfigBackup() : restoreConfigFile(facts.target));
  };
  ctx.reporter.emit({ type: 'info', host, message: `plan: ${plan.from} -> ${plan.to} workers (${plan.direction}); restart ${plan.restarted.join(', ')} afterwards` });
  show(acquireLock(makeHolder(ctx.env, 'scale')));
  if (plan.direction === 'grow') {
    if (facts.upstreamChanged) upstream(false);
    show(plan.setCount);
    for (const index of plan.added) {
      const steps = workerSteps(role, index);
      show(enableUnitNow(steps.unit));
      show(steps.probeLive, `poll until 200, version ${facts.tag} (at most ${role.health.gateTimeoutSeconds}s): `);
    }
    if (facts.upstreamChanged) upstream(true);
  } else {
    if (facts.upstreamChanged) upstream(true);
    for (const index of plan.removed) {
      const steps = workerSteps(role, index);
      show(steps.drain);
      show(steps.probeDrained, `poll until active_calls=0 (drain timeout): `);
      show(disableUnitNow(steps.unit));
      show(steps.cleanup);
    }
    show(plan.setCount);
  }
  for (const index of plan.restarted) {
    const w = workerSteps(role, index);
    show(w.drain);
    show(w.probeDrained, `poll every ${role.health.pollMilliseconds} ms until active_calls=0: `);
    show(w.restart);
    show(w.probeLive, `poll until 200, version ${facts.tag}, new pid: `);
    show(w.cleanup);
    if (facts.failTimeoutSeconds > 0) ctx.reporter.emit({ type: 'info', host, message: `wait ${facts.failTimeoutSeconds}s: nginx fail_timeout` });
  }
  show(probeHealthUrl(fleetHealthUrl(role), 5), `until expected_workers=${plan.to} and capacity=${plan.to}: `);
  show(appendHistory({ at: '', host, role: 'fleet', action: 'scale', from: facts.tag, to: facts.tag, outcome: 'success', durationMs: 0, user: '' }));
  show(releaseOwnLock('<id>'));
}
