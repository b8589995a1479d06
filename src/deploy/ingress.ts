import type { Step } from '../commands/command.js';
import {
  checkCandidate,
  checkRendered,
  configDigest,
  deriveServerName,
  diffHaproxyConfig,
  FleetUrlError,
  fleetUrl,
  haproxyAlerts,
  installCandidate,
  isValidServerName,
  parseFleetServers,
  parseFleetUrl,
  parseInfoPid,
  parseShowStat,
  readHaproxyConfig,
  reloadHaproxy,
  removeCandidate,
  renderHaproxyConfig,
  restoreBackup,
  sameServer,
  serverAddress,
  setServerState,
  showInfo,
  showStat,
  validateFleetHost,
  writeCandidate,
  type FleetServer,
  type ServerStat,
} from '../commands/haproxy.js';
import { acquireLock, appendHistory, releaseOwnLock, type HistoryEntry } from '../commands/state.js';
import { journalTail } from '../commands/systemd.js';
import { parseHealthProbe, probeHealthUrl, type HealthProbe } from '../commands/worker.js';
import { hostsForRole, type Host, type Inventory } from '../config/inventory.js';
import { ingressRole, type IngressRoleConfig } from '../config/schema.js';
import {
  ConfigError,
  ConfigRejectedError,
  DrainTimeoutError,
  ExitCode,
  HealthGateError,
  InterruptedError,
  LockHeldError,
  PreflightError,
  RemoteCommandError,
  UnhealthyError,
  UsageError,
  VoxopsError,
} from '../errors.js';
import type { HostSession } from '../exec/executor.js';
import { quoteWord, renderCommand } from '../exec/render.js';
import { makeHolder, sleep, whoAmI, type OperationContext } from './context.js';
import type { HostOutcome } from './events.js';
import { recordHistory, summarise } from './operation.js';
import { acquireAll, lockHeldNext, readHolder, releaseAll } from './locks.js';
import { closeAll, connectAll } from './sessions.js';

export interface IngressDeployOptions {
  /** only these ingress hosts */
  hosts?: string[];
}

export interface IngressChangeOptions {
  action: 'add-fleet' | 'remove-fleet';
  url: string;
  drainTimeoutSeconds?: number;
}

/** What one ingress host is to become, decided in preflight (before the lock and any change). */
interface IngressPlan {
  /** the fleet list to render */
  servers: FleetServer[];
  /** servers that must be UP afterwards */
  mustBeUp: string[];
  /** servers the new config drops: drained (calls end) before the reload */
  drop: FleetServer[];
  /** what this change is, for the history line */
  detail: string;
  /** deploy: kept servers left drained by an unfinished remove-fleet go back in rotation */
  readyDrained?: boolean;
}

interface HostState {
  session: HostSession;
  current: string;
  live: FleetServer[];
  plan: IngressPlan;
  rendered: string;
}

const POLL_MS = 250;

function settings(ctx: OperationContext): IngressRoleConfig {
  return settingsOf(ctx.inventory);
}

/** roles.ingress is optional: every key has a default */
function settingsOf(inventory: Inventory): IngressRoleConfig {
  return inventory.roles.ingress ?? ingressRole.parse({});
}

export interface IngressBackend {
  name: string;
  address: string;
  /** HAProxy's view: UP, DOWN, DRAIN, MAINT… (unknown when the runtime API does not answer) */
  status: string;
  /** live sessions (calls) now */
  sessions: number | null;
  maxconn: number | null;
}

/** Read-only, for `voxops status`: what the live haproxy.cfg lists and what HAProxy says of each. */
export async function ingressBackends(inventory: Inventory, session: HostSession): Promise<{ backends: IngressBackend[]; problems: string[] }> {
  const role = settingsOf(inventory);
  const host = session.host.name;
  const [config, stats] = await Promise.all([session.run(readHaproxyConfig(role.config)), readStats(session, role)]);
  const servers = parseFleetServers(config.stdout, role.backend, role.fleetPort) ?? [];
  const backends = servers.map((server) => {
    const stat = stats?.find((s) => s.server === server.name);
    return { name: server.name, address: serverAddress(server), status: stat?.status ?? 'unknown', sessions: stat?.sessions ?? null, maxconn: server.maxconn ?? null };
  });
  const problems: string[] = [];
  if (servers.length === 0) problems.push(`${host}: ${role.config} lists no server in backend ${role.backend}`);
  if (!stats) problems.push(`${host}: the HAProxy runtime API at ${role.adminSocket} does not answer`);
  for (const b of backends) if (stats && !b.status.startsWith('UP')) problems.push(`${host}: fleet backend ${b.name} (${b.address}) is ${b.status}`);
  return { backends, problems };
}

function ingressHosts(ctx: OperationContext, only?: string[]): Host[] {
  const hosts = hostsForRole(ctx.inventory, 'ingress', only);
  if (hosts.length === 0) {
    throw new ConfigError(`environment ${ctx.inventory.environment} has no ingress hosts`, [], {
      next: `list them under environments.${ctx.inventory.environment}.hosts.ingress, then: voxops config check`,
    });
  }
  return hosts;
}

/** The fleet list the inventory asks for: every fleet host, its address, the fleet port, its worker count. */
function inventoryServers(ctx: OperationContext, role: IngressRoleConfig): FleetServer[] {
  const problems: string[] = [];
  const servers: FleetServer[] = [];
  for (const host of hostsForRole(ctx.inventory, 'fleet')) {
    try {
      const workers = host.workers ?? ctx.inventory.roles.fleet?.workers.count;
      servers.push({ name: host.name, host: validateFleetHost(host.address), port: role.fleetPort, ...(workers ? { maxconn: workers } : {}) });
    } catch (error) {
      problems.push(`environments.${ctx.inventory.environment}.hosts.fleet: ${host.name}: ${(error as Error).message}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(`${ctx.inventory.file}: fleet hosts HAProxy cannot use`, problems, { next: 'fix them, then run voxops config check' });
  return servers;
}

/** `voxops deploy ingress`: render haproxy.cfg from the inventory's fleet hosts, check, reload, verify. */
export async function runIngressDeploy(ctx: OperationContext, options: IngressDeployOptions): Promise<void> {
  const role = settings(ctx);
  const wanted = inventoryServers(ctx, role);
  if (wanted.length === 0) {
    throw new ConfigError(`environment ${ctx.inventory.environment} has no fleet hosts: the ingress would serve nothing`, [], {
      next: `list them under environments.${ctx.inventory.environment}.hosts.fleet`,
    });
  }
  await runIngressOperation(ctx, role, 'deploy', ingressHosts(ctx, options.hosts), async (_session, live) => ({
    servers: wanted,
    mustBeUp: wanted.map((s) => s.name),
    drop: (live ?? []).filter((old) => !wanted.some((s) => s.name === old.name && sameServer(s, old))),
    detail: `deploy: ${wanted.map((s) => `${s.name}=${serverAddress(s)}`).join(', ')}`,
    readyDrained: true,
  }));
}

/** `voxops ingress add-fleet URL` / `remove-fleet URL`: change the live fleet list by one host. */
export async function runIngressChange(ctx: OperationContext, options: IngressChangeOptions): Promise<void> {
  const role = settings(ctx);
  let target: { host: string; port: number };
  try {
    target = parseFleetUrl(options.url, role.fleetPort);
  } catch (error) {
    if (!(error instanceof FleetUrlError)) throw error;
    throw new UsageError(error.message, { next: `voxops ingress ${options.action} http://10.0.0.12:${role.fleetPort}` });
  }
  const url = fleetUrl(target);
  const known = inventoryServers(ctx, role);
  const drainSeconds = options.drainTimeoutSeconds ?? role.drain.timeoutSeconds;
  const planFor = async (session: HostSession, live: FleetServer[] | undefined): Promise<IngressPlan> => {
    if (!live) {
      throw new PreflightError(`${session.host.name}: ${role.config} has no backend "${role.backend}"; nothing was changed`, [], {
        next: 'render the whole config from the inventory first: voxops deploy ingress',
      });
    }
    const existing = live.find((s) => sameServer(s, target));
    if (options.action === 'remove-fleet') {
      if (!existing) {
        throw new UsageError(`${url} is not behind the ingress on ${session.host.name} (it serves ${live.map(fleetUrl).join(', ') || 'nothing'})`, {
          next: 'voxops ingress remove-fleet <one of those URLs>',
        });
      }
      const servers = live.filter((s) => s !== existing);
      if (servers.length === 0) {
        throw new UsageError(`${url} is the last fleet host behind the ingress on ${session.host.name}; removing it would leave no backend`, {
          next: 'add the replacement first: voxops ingress add-fleet <URL>',
        });
      }
      return { servers, mustBeUp: [], drop: [existing], detail: `remove-fleet ${url} (${existing.name})` };
    }
    if (existing) {
      ctx.reporter.emit({ type: 'info', host: session.host.name, message: `${url} is already behind the ingress as ${existing.name}` });
      return { servers: live, mustBeUp: [existing.name], drop: [], detail: `add-fleet ${url} (already listed)` };
    }
    // the new host must answer from where HAProxy will check it, not just from here
    const probe = await probeFleet(session, role, target);
    if (probe.httpStatus !== 200 || typeof probe.body?.healthy !== 'number' || probe.body.healthy < 1) {
      throw new PreflightError(`${session.host.name}: ${url}${role.health.path} does not answer healthy from the ingress host; nothing was changed`, [describeProbe(probe)], {
        next: `check the fleet host (voxops status fleet), then: voxops ingress add-fleet ${url}`,
      });
    }
    const inInventory = known.find((s) => sameServer(s, target));
    const reported = Number(probe.body.expected_workers ?? probe.body.capacity);
    const maxconn = inInventory?.maxconn ?? (Number.isInteger(reported) && reported > 0 ? reported : undefined);
    const name = inInventory && !live.some((s) => s.name === inInventory.name) ? inInventory.name : deriveServerName(target, role.fleetPort, live.map((s) => s.name));
    const added: FleetServer = { name, ...target, ...(maxconn ? { maxconn } : {}) };
    return { servers: [...live, added], mustBeUp: [name], drop: [], detail: `add-fleet ${url} (${name}, maxconn ${maxconn ?? '-'})` };
  };
  const warnInventory = (plans: Map<string, IngressPlan>) => {
    if (ctx.dryRun) return;
    for (const [host, plan] of plans) {
      const differs =
        plan.servers.length !== known.length || plan.servers.some((s) => !known.some((k) => sameServer(k, s)));
      if (differs) {
        const verb = options.action === 'add-fleet' ? 'add it to' : 'remove it from';
        ctx.reporter.emit({
          type: 'warning',
          host,
          message: `the ingress now serves ${plan.servers.map(fleetUrl).join(', ')}, which is not the inventory's fleet list: ${verb} environments.${ctx.inventory.environment}.hosts.fleet, or the next \`voxops deploy ingress\` will undo this`,
        });
      }
    }
  };
  await runIngressOperation(ctx, role, options.action, ingressHosts(ctx), planFor, drainSeconds, warnInventory);
}

async function probeFleet(session: HostSession, role: IngressRoleConfig, target: { host: string; port: number }): Promise<HealthProbe> {
  const result = await session.run(probeHealthUrl(`${fleetUrl(target)}${role.health.path}`, 3));
  return parseHealthProbe(result.stdout, result.stderr);
}

function describeProbe(probe: HealthProbe): string {
  if (probe.httpStatus === 0) return `no answer: ${probe.error ?? 'unknown'}`;
  const b = probe.body;
  return b ? `HTTP ${probe.httpStatus}, healthy ${b.healthy ?? '?'}, free ${b.free ?? '?'} of ${b.capacity ?? '?'}` : `HTTP ${probe.httpStatus}: ${probe.error ?? ''}`;
}

/**
 * The shape every ingress change shares: connect, read each host's live config and runtime API,
 * plan (preflight: nothing changes before every host is planned), lock, then host by host: write
 * and `haproxy -c` the candidate, drain what it drops, install, reload, verify through the runtime
 * API, record history. Returns each host's plan.
 */
async function runIngressOperation(
  ctx: OperationContext,
  role: IngressRoleConfig,
  operation: 'deploy' | 'add-fleet' | 'remove-fleet',
  hosts: Host[],
  planFor: (session: HostSession, live: FleetServer[] | undefined) => Promise<IngressPlan>,
  drainSeconds = role.drain.timeoutSeconds,
  /** after every host succeeded, before the summary (which stays the last event) */
  after?: (plans: Map<string, IngressPlan>) => void,
): Promise<Map<string, IngressPlan>> {
  const startedAt = Date.now();
  const outcomes = new Map<string, HostOutcome>();
  const plans = new Map<string, IngressPlan>();
  const finish = (exitCode: number) => {
    ctx.reporter.emit({ type: 'summary', summary: summarise({ operation, role: 'ingress', startedAt, exitCode, hosts: outcomes.values() }) });
  };
  let sessions: Map<string, HostSession> | undefined;
  try {
    sessions = await connectAll(ctx.executor, hosts);
    const list = hosts.map((h) => sessions!.get(h.name)!);
    ctx.reporter.emit({ type: 'start', operation, role: 'ingress', hosts: hosts.map((h) => h.name), dryRun: ctx.dryRun });
    const states: HostState[] = [];
    const problems: string[] = [];
    for (const session of list) {
      const state = await preflightHost(ctx, role, session, planFor, problems);
      if (!state) continue;
      states.push(state);
      plans.set(session.host.name, state.plan);
      outcomes.set(session.host.name, outcome(state, 'not-started', 0));
    }
    if (problems.length > 0) {
      throw new PreflightError(`preflight refused the ingress ${operation}: ${problems.length} problem(s); nothing was changed`, problems, {
        next: 'fix the problems above, then re-run',
      });
    }
    if (ctx.dryRun) {
      for (const state of states) await printPlan(ctx, role, state);
      for (const state of states) outcomes.set(state.session.host.name, outcome(state, 'planned', 0));
      finish(ExitCode.ok);
      return plans;
    }
    const holder = makeHolder(ctx.env, `ingress ${operation}`);
    await acquireAll(list, holder);
    try {
      for (const state of states) {
        if (ctx.signal.aborted) throw new InterruptedError(`interrupted before ${state.session.host.name}; it was not changed`);
        await applyHost(ctx, role, state, drainSeconds, outcomes, operation);
      }
    } finally {
      const stuck = await releaseAll(list, holder);
      if (stuck.length > 0) ctx.reporter.emit({ type: 'warning', message: `could not release the lock on ${stuck.join(', ')}: run voxops lock release` });
    }
    after?.(plans);
    finish(ExitCode.ok);
    return plans;
  } catch (error) {
    finish(error instanceof VoxopsError ? error.exitCode : ExitCode.internal);
    throw error;
  } finally {
    if (sessions) await closeAll(sessions);
  }
}

async function preflightHost(
  ctx: OperationContext,
  role: IngressRoleConfig,
  session: HostSession,
  planFor: (session: HostSession, live: FleetServer[] | undefined) => Promise<IngressPlan>,
  problems: string[],
): Promise<HostState | undefined> {
  const host = session.host.name;
  const [read, info, holder] = await Promise.all([session.run(readHaproxyConfig(role.config)), session.run(showInfo(role.adminSocket)), readHolder(session)]);
  if (holder && !ctx.dryRun) {
    throw new LockHeldError(host, holder, { next: lockHeldNext(holder) });
  }
  if (holder) ctx.reporter.emit({ type: 'warning', host, message: `lock is held by ${holder.user}@${holder.machine}` });
  if (info.exitCode !== 0 || parseInfoPid(info.stdout) === undefined) {
    problems.push(`${host}: HAProxy's runtime API does not answer on ${role.adminSocket} (${(info.stderr.trim() || info.stdout.trim()).slice(0, 200)}); is haproxy running with "stats socket ${role.adminSocket} level admin"?`);
    return undefined;
  }
  const current = read.exitCode === 0 ? read.stdout : '';
  const live = parseFleetServers(current, role.backend, role.fleetPort);
  const odd = (live ?? []).filter((s) => !isValidServerName(s.name)).map((s) => s.name);
  if (odd.length > 0) {
    problems.push(`${host}: ${role.config} has server names voxops will not pass to the runtime API: ${odd.join(', ')}`);
    return undefined;
  }
  const plan = await planFor(session, live);
  return { session, current, live: live ?? [], plan, rendered: renderHaproxyConfig(role, plan.servers) };
}

function show(ctx: OperationContext, host: string, step: Step, prefix = ''): void {
  // runtime API steps carry a small python client; its source would drown the plan
  const runtime = step.command.kind === 'argv' && step.command.argv[0] === 'python3' ? step.command.argv : undefined;
  const text = runtime ? `echo ${quoteWord(runtime[4] ?? '')} to ${runtime[3]} (HAProxy runtime API, python3 client)` : renderCommand(step.command);
  ctx.reporter.emit({ type: 'command', host, step: step.name, command: `${prefix}${text}` });
}

async function showDiff(ctx: OperationContext, role: IngressRoleConfig, state: HostState): Promise<void> {
  const diff = await state.session.run(diffHaproxyConfig(role.config, state.rendered));
  if (diff.stdout.trim()) ctx.reporter.emit({ type: 'info', host: state.session.host.name, message: `changes to ${role.config}:\n${diff.stdout.trimEnd()}` });
}

async function printPlan(ctx: OperationContext, role: IngressRoleConfig, state: HostState): Promise<void> {
  const host = state.session.host.name;
  const servers = state.plan.servers.map((s) => `${s.name} ${serverAddress(s)} maxconn ${s.maxconn ?? '-'}`).join(', ');
  if (state.rendered === state.current) {
    ctx.reporter.emit({ type: 'info', host, message: `plan: ${role.config} is already what voxops would render (${servers}); nothing would change` });
    return;
  }
  ctx.reporter.emit({ type: 'info', host, message: `plan: ${state.plan.detail}; fleet list ${servers}` });
  await showDiff(ctx, role, state);
  // the rendered text is checked now, read-only (stdin), so a dry run already reports a rejection
  const check = await state.session.run(checkRendered(state.rendered));
  if (check.exitCode !== 0) throw rejected(host, role, check.stdout + check.stderr, true);
  ctx.reporter.emit({ type: 'info', host, message: 'haproxy -c accepts the rendered config' });
  show(ctx, host, acquireLock(makeHolder(ctx.env, 'ingress')));
  show(ctx, host, writeCandidate(role.config, state.rendered), '(the rendered config on stdin) ');
  show(ctx, host, checkCandidate(role.config));
  for (const server of state.plan.drop) {
    show(ctx, host, setServerState(role.adminSocket, role.backend, server.name, 'drain'));
    show(ctx, host, showStat(role.adminSocket), `poll every ${POLL_MS} ms until ${server.name} has 0 sessions (at most ${role.drain.timeoutSeconds}s): `);
  }
  show(ctx, host, installCandidate(role.config));
  show(ctx, host, reloadHaproxy(role.unit));
  show(ctx, host, showStat(role.adminSocket), `poll until ${state.plan.mustBeUp.join(', ') || 'every server'} UP (at most ${role.health.upTimeoutSeconds}s): `);
  show(ctx, host, appendHistory({ at: '', host, role: 'ingress', action: 'deploy', from: null, to: configDigest(state.rendered), outcome: 'success', durationMs: 0, user: '' }));
  show(ctx, host, releaseOwnLock('<id>'));
}

function rejected(host: string, role: IngressRoleConfig, output: string, dryRun: boolean): ConfigRejectedError {
  const alerts = haproxyAlerts(output);
  const reason = alerts.find((a) => !/^config : Fatal errors found|^config : Failed to initialize/.test(a)) ?? alerts[0] ?? output.trim().split('\n').pop() ?? 'no output';
  return new ConfigRejectedError(
    `${host}: haproxy -c rejected the rendered config: ${reason}${dryRun ? ' (dry run)' : `; ${role.config} was not changed and haproxy keeps running the old one`}`,
    { next: 'fix the fleet list (environments.<env>.hosts.fleet or the URL), then: voxops deploy ingress --dry-run' },
  );
}

async function timed<T>(ctx: OperationContext, host: string, name: string, work: () => Promise<T>): Promise<T> {
  const started = Date.now();
  ctx.reporter.emit({ type: 'step', host, step: name, status: 'start' });
  const result = await work();
  ctx.reporter.emit({ type: 'step', host, step: name, status: 'done', durationMs: Date.now() - started });
  return result;
}

async function applyHost(
  ctx: OperationContext,
  role: IngressRoleConfig,
  state: HostState,
  drainSeconds: number,
  outcomes: Map<string, HostOutcome>,
  operation: HistoryEntry['action'],
): Promise<void> {
  const { session, plan } = state;
  const host = session.host.name;
  const started = Date.now();
  if (state.rendered === state.current) {
    if (plan.readyDrained) {
      for (const stat of (await readStats(session, role)) ?? []) {
        if (stat.status !== 'DRAIN' || !plan.servers.some((s) => s.name === stat.server)) continue;
        await session.run(setServerState(role.adminSocket, role.backend, stat.server, 'ready'));
        ctx.reporter.emit({ type: 'info', host, message: `${stat.server} was left drained (an unfinished remove-fleet?); it is back in rotation` });
      }
    }
    const notUp = await waitForUp(ctx, session, role, plan.mustBeUp, plan.readyDrained ? role.health.upTimeoutSeconds * 1000 : 0);
    outcomes.set(host, { ...outcome(state, 'success', Date.now() - started), message: 'unchanged' });
    ctx.reporter.emit({ type: 'host', host, phase: 'done', message: `${role.config} unchanged; nothing to do (${describeServers(plan.servers)})` });
    if (notUp.length > 0) {
      throw new UnhealthyError(`${host}: the config is current, but not every fleet backend is UP`, notUp, {
        next: 'check the fleet hosts: voxops health',
      });
    }
    return;
  }
  ctx.reporter.emit({ type: 'host', host, phase: 'start', message: plan.detail });
  let result: HistoryEntry['outcome'] = 'failed';
  let detail: string | undefined;
  let refused = false;
  try {
    await showDiff(ctx, role, state);
    await timed(ctx, host, 'write the candidate config', () => session.run(writeCandidate(role.config, state.rendered)));
    const check = await timed(ctx, host, 'haproxy -c', () => session.run(checkCandidate(role.config)));
    if (check.exitCode !== 0) {
      await session.run(removeCandidate(role.config)).catch(() => undefined);
      throw rejected(host, role, check.stdout + check.stderr, false);
    }
    try {
      for (const server of plan.drop) await drainServer(ctx, session, role, server, drainSeconds);
    } catch (error) {
      await session.run(removeCandidate(role.config)).catch(() => undefined);
      throw error;
    }
    const before = parseInfoPid((await session.run(showInfo(role.adminSocket))).stdout);
    await timed(ctx, host, `install ${role.config}`, () => session.run(installCandidate(role.config)));
    try {
      await timed(ctx, host, `reload ${role.unit}`, () => session.run(reloadHaproxy(role.unit)));
    } catch (error) {
      // the running haproxy still has the old config: put the file it was loaded from back
      await session.run(restoreBackup(role.config)).catch(() => undefined);
      const journal = await session.run(journalTail(role.unit, 20)).catch(() => undefined);
      if (error instanceof RemoteCommandError && journal) {
        throw new RemoteCommandError({ ...error.facts, stderr: `${error.facts.stderr}\n${journal.stdout}` }, { cause: error, next: `the old config is back in place; read the log: journalctl -u ${role.unit}` });
      }
      throw error;
    }
    await timed(ctx, host, 'wait for the new haproxy worker', () => waitForNewWorker(session, role, before));
    const notUp = await timed(ctx, host, `wait until ${plan.mustBeUp.join(', ') || 'the backends'} UP`, () =>
      waitForUp(ctx, session, role, plan.mustBeUp, role.health.upTimeoutSeconds * 1000),
    );
    if (notUp.length > 0) {
      throw new HealthGateError(`${host}: the new config is live, but not every fleet backend came UP within ${role.health.upTimeoutSeconds}s: ${notUp.join('; ')}`, { host }, {
        next: 'check the fleet hosts (voxops health), then: voxops deploy ingress',
      });
    }
    result = 'success';
    ctx.reporter.emit({ type: 'host', host, phase: 'done', message: describeServers(plan.servers) });
  } catch (error) {
    detail = (error as Error).message;
    refused = error instanceof ConfigRejectedError;
    if (error instanceof InterruptedError) result = 'interrupted';
    ctx.reporter.emit({ type: 'host', host, phase: 'failed', message: detail });
    throw error;
  } finally {
    const durationMs = Date.now() - started;
    outcomes.set(host, { ...outcome(state, result === 'success' ? 'success' : result, durationMs), ...(detail ? { message: detail } : {}) });
    // a rejected config changed nothing: no history line claims otherwise
    if (!refused) {
      await recordHistory(ctx, session, {
        at: new Date().toISOString(),
        host,
        role: 'ingress',
        action: operation,
        from: state.current ? configDigest(state.current) : null,
        to: configDigest(state.rendered),
        outcome: result,
        durationMs,
        user: whoAmI(ctx.env),
        ...(ctx.env.BUILD_URL ? { buildUrl: ctx.env.BUILD_URL } : {}),
        detail: (detail ? `${plan.detail}: ${detail}` : plan.detail).slice(0, 300),
      });
    }
  }
}

function describeServers(servers: FleetServer[]): string {
  return `serving ${servers.map((s) => `${s.name} (${serverAddress(s)}, maxconn ${s.maxconn ?? '-'})`).join(', ')}`;
}

async function readStats(session: HostSession, role: IngressRoleConfig): Promise<ServerStat[] | undefined> {
  const result = await session.run(showStat(role.adminSocket));
  return result.exitCode === 0 ? parseShowStat(result.stdout).filter((s) => s.backend === role.backend) : undefined;
}

/**
 * Stop new calls to a server (the runtime API's drain), then wait until its sessions reach 0.
 * On timeout it stays drained and listed; Ctrl-C puts it back in rotation unchanged.
 */
async function drainServer(ctx: OperationContext, session: HostSession, role: IngressRoleConfig, server: FleetServer, drainSeconds: number): Promise<void> {
  const host = session.host.name;
  const stats = await readStats(session, role);
  if (!stats?.some((s) => s.server === server.name)) {
    ctx.reporter.emit({ type: 'info', host, message: `${server.name} is not in the running haproxy: nothing to drain` });
    return;
  }
  const set = await session.run(setServerState(role.adminSocket, role.backend, server.name, 'drain'));
  if (set.exitCode !== 0 || set.stdout.trim()) {
    throw new RemoteCommandError({ host, step: `drain ${server.name}`, command: `set server ${role.backend}/${server.name} state drain`, exitCode: set.exitCode, stdout: set.stdout, stderr: set.stderr });
  }
  const started = Date.now();
  const deadline = started + drainSeconds * 1000;
  let lastReport = 0;
  for (;;) {
    const sessions = (await readStats(session, role))?.find((s) => s.server === server.name)?.sessions ?? 0;
    if (sessions === 0) {
      ctx.reporter.emit({ type: 'info', host, message: `${server.name} drained: 0 sessions after ${((Date.now() - started) / 1000).toFixed(1)}s` });
      return;
    }
    if (ctx.signal.aborted) {
      await session.run(setServerState(role.adminSocket, role.backend, server.name, 'ready')).catch(() => undefined);
      throw new InterruptedError(`interrupted while ${server.name} drained; it is back in rotation and nothing was changed`, { next: 'voxops deploy ingress' });
    }
    if (Date.now() >= deadline) {
      throw new DrainTimeoutError(
        `${host}: ${server.name} (${fleetUrl(server)}) still has ${sessions} session(s) after ${drainSeconds}s; it stays drained (no new calls) but listed, and the config was not changed`,
        { next: `when its calls have ended: voxops ingress remove-fleet ${fleetUrl(server)} (or voxops deploy ingress)` },
      );
    }
    if (Date.now() - lastReport >= 10_000) {
      lastReport = Date.now();
      ctx.reporter.emit({ type: 'info', host, message: `${server.name} drained, waiting for ${sessions} session(s) to end` });
    }
    await sleep(POLL_MS, ctx.signal);
  }
}

/** `systemctl reload` returns once the master is signalled: wait until a new worker answers the runtime API. */
async function waitForNewWorker(session: HostSession, role: IngressRoleConfig, before: number | undefined): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const info = await session.run(showInfo(role.adminSocket));
    const pid = info.exitCode === 0 ? parseInfoPid(info.stdout) : undefined;
    if (pid !== undefined && pid !== before) return;
    if (Date.now() >= deadline) {
      throw new HealthGateError(`${session.host.name}: haproxy did not start a new worker within 15s of the reload (worker pid still ${before ?? '?'})`, { host: session.host.name }, {
        next: `journalctl -u ${role.unit} on ${session.host.name}, then: voxops deploy ingress`,
      });
    }
    await sleep(POLL_MS);
  }
}

/**
 * Poll `show stat` until every named server is UP (at most `timeoutMs`; 0 = look once). A server
 * that is DOWN only because its fleet host is full (healthy workers, none free) counts as up, with
 * a warning: the capacity-aware check takes full hosts out of rotation on purpose.
 */
async function waitForUp(ctx: OperationContext, session: HostSession, role: IngressRoleConfig, names: string[], timeoutMs: number): Promise<string[]> {
  const host = session.host.name;
  const deadline = Date.now() + timeoutMs;
  let stats: ServerStat[] | undefined;
  for (;;) {
    stats = await readStats(session, role);
    const pending = names.filter((n) => !isCheckedUp(stats?.find((s) => s.server === n)));
    if (pending.length === 0) {
      if (names.length > 0) ctx.reporter.emit({ type: 'info', host, message: `UP: ${names.join(', ')}` });
      return [];
    }
    if (Date.now() >= deadline) break;
    await sleep(POLL_MS, ctx.signal);
    if (ctx.signal.aborted) {
      throw new InterruptedError(`interrupted while waiting for ${pending.join(', ')} to come UP on ${host}; the new config is loaded`, {
        next: 'check it: voxops deploy ingress --dry-run',
      });
    }
  }
  const problems: string[] = [];
  for (const name of names) {
    const stat = stats?.find((s) => s.server === name);
    if (isCheckedUp(stat)) continue;
    if (!stat) {
      problems.push(`${name}: not listed by the running haproxy`);
      continue;
    }
    const live = parseFleetServers((await session.run(readHaproxyConfig(role.config))).stdout, role.backend, role.fleetPort)?.find((s) => s.name === name);
    const probe = live ? await probeFleet(session, role, live) : undefined;
    if (probe?.httpStatus === 200 && Number(probe.body?.healthy) > 0 && Number(probe.body?.free) === 0) {
      ctx.reporter.emit({ type: 'warning', host, message: `${name} is ${stat.status}: its fleet host is full (${describeProbe(probe)}); it rejoins when a worker frees up` });
      continue;
    }
    problems.push(`${name}: ${stat.status} (check ${stat.checkStatus || '-'}${stat.lastCheck ? `: ${stat.lastCheck}` : ''})${probe ? `; from the ingress: ${describeProbe(probe)}` : ''}`);
  }
  return problems;
}

/** A new haproxy process starts every server UP before its first check: only a passed check counts. */
function isCheckedUp(stat: ServerStat | undefined): boolean {
  return stat?.status === 'UP' && stat.checkStatus.startsWith('L7OK');
}


function outcome(state: HostState, result: HostOutcome['outcome'], durationMs: number): HostOutcome {
  return {
    host: state.session.host.name,
    role: 'ingress',
    from: state.current ? configDigest(state.current) : null,
    to: configDigest(state.rendered),
    outcome: result,
    durationMs,
  };
}
