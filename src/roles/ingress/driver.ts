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
  redactHaproxyConfig,
  removeCandidate,
  renderHaproxyConfig,
  restoreBackup,
  sameServer,
  serverAddress,
  setServerState,
  showInfo,
  showStat,
  writeCandidate,
  type FleetServer,
  type ServerStat,
} from '../../commands/haproxy.js';
import type { Step } from '../../exec/command.js';
import { journalTail } from '../../commands/systemd.js';
import { probeHealthUrl, type HealthProbe } from '../../commands/worker.js';
import type { Inventory } from '../../config/inventory.js';
import type { IngressRoleConfig } from '../../config/schema.js';
import {
  ConfigError,
  ConfigRejectedError,
  DrainTimeoutError,
  HealthGateError,
  InterruptedError,
  lastLine,
  PreflightError,
  RemoteCommandError,
  shownRemoteText,
  UnhealthyError,
  UsageError,
} from '../../errors.js';
import { printableQuoted } from '../../text.js';
import { quoteWord } from '../../exec/render.js';
import { poll } from '../../wait.js';
import type { HostContext, HostPlan, Judgement, Note, OperationRequest, PlanLine, RoleDriver } from '../contract.js';
import { probe } from '../shared/health.js';
import { describeServers, ingressConfig, inventoryServers } from './config.js';

const POLL_MS = 250;
const NEW_WORKER_TIMEOUT_MS = 15_000;

export interface IngressFacts {
  /** the live haproxy.cfg ('' when there is none) */
  current: string;
  /** its fleet backend's servers; undefined when the backend is missing */
  live?: FleetServer[];
  /** why the runtime API did not answer (undefined: it did) */
  runtimeProblem?: string;
  /** add-fleet: the new fleet host, asked from the ingress host (where HAProxy will check it) */
  candidate?: HealthProbe;
}

export interface IngressPlan extends HostPlan {
  /** the fleet list to render */
  servers: FleetServer[];
  /** servers that must be UP afterwards */
  mustBeUp: string[];
  /** servers the new config drops: drained (calls end) before the reload */
  drop: FleetServer[];
  /** deploy: kept servers left drained by an unfinished remove-fleet go back in rotation */
  readyDrained: boolean;
  current: string;
  rendered: string;
}

/** The URL of add-fleet / remove-fleet, checked before anything is asked of a host. */
export function targetOf(request: OperationRequest, role: IngressRoleConfig): { host: string; port: number } {
  try {
    return parseFleetUrl(request.url ?? '', role.fleetPort);
  } catch (error) {
    if (!(error instanceof FleetUrlError)) throw error;
    throw new UsageError(error.message, { next: `voxops ingress ${request.action} http://10.0.0.12:${role.fleetPort}` });
  }
}

export function describeProbe(p: HealthProbe): string {
  if (p.httpStatus === 0) return `no answer: ${p.error ?? 'unknown'}`;
  const b = p.body;
  return b ? `HTTP ${p.httpStatus}, healthy ${b.healthy ?? '?'}, free ${b.free ?? '?'} of ${b.capacity ?? '?'}` : `HTTP ${p.httpStatus}: ${p.error ?? ''}`;
}

function probeFleet(host: HostContext, role: IngressRoleConfig, target: { host: string; port: number }): Promise<HealthProbe> {
  return probe(host, probeHealthUrl(`${fleetUrl(target)}${role.health.path}`, 3));
}

export async function readStats(host: Pick<HostContext, 'run'>, role: IngressRoleConfig): Promise<ServerStat[] | undefined> {
  const result = await host.run(showStat(role.adminSocket));
  return result.exitCode === 0 ? parseShowStat(result.stdout).filter((s) => s.backend === role.backend) : undefined;
}

/** Which servers one ingress host is to serve, for the action asked. Pure; a refusal is thrown. */
function planServers(name: string, facts: IngressFacts, request: OperationRequest, inventory: Inventory, notes: Note[]): Pick<IngressPlan, 'servers' | 'mustBeUp' | 'drop' | 'detail' | 'readyDrained'> {
  const role = ingressConfig(inventory);
  const live = facts.live;
  if (request.action === 'deploy') {
    const wanted = inventoryServers(inventory);
    return {
      servers: wanted,
      mustBeUp: wanted.map((s) => s.name),
      drop: (live ?? []).filter((old) => !wanted.some((s) => s.name === old.name && sameServer(s, old))),
      detail: `deploy: ${wanted.map((s) => `${s.name}=${serverAddress(s)}`).join(', ')}`,
      readyDrained: true,
    };
  }
  const target = targetOf(request, role);
  const url = fleetUrl(target);
  if (!live) {
    throw new PreflightError(`${name}: ${role.config} has no backend "${role.backend}"; nothing was changed`, [], { next: 'render the whole config from the inventory first: voxops deploy ingress' });
  }
  const existing = live.find((s) => sameServer(s, target));
  if (request.action === 'remove-fleet') {
    if (!existing) {
      throw new UsageError(`${url} is not behind the ingress on ${name} (it serves ${live.map(fleetUrl).join(', ') || 'nothing'})`, { next: 'voxops ingress remove-fleet <one of those URLs>' });
    }
    const servers = live.filter((s) => s !== existing);
    if (servers.length === 0) {
      throw new UsageError(`${url} is the last fleet host behind the ingress on ${name}; removing it would leave no backend`, { next: 'add the replacement first: voxops ingress add-fleet <URL>' });
    }
    return { servers, mustBeUp: [], drop: [existing], detail: `remove-fleet ${url} (${existing.name})`, readyDrained: false };
  }
  if (existing) {
    notes.push({ host: name, message: `${url} is already behind the ingress as ${existing.name}` });
    return { servers: live, mustBeUp: [existing.name], drop: [], detail: `add-fleet ${url} (already listed)`, readyDrained: false };
  }
  const p = facts.candidate;
  if (!p || p.httpStatus !== 200 || typeof p.body?.healthy !== 'number' || p.body.healthy < 1) {
    throw new PreflightError(`${name}: ${url}${role.health.path} does not answer healthy from the ingress host; nothing was changed`, [p ? describeProbe(p) : 'not asked'], {
      next: `check the fleet host (voxops status fleet), then: voxops ingress add-fleet ${url}`,
    });
  }
  const known = inventoryServers(inventory).find((s) => sameServer(s, target));
  // what a host reports is any number: only a worker count it could really have becomes maxconn
  const reported = Number(p.body.expected_workers ?? p.body.capacity);
  const maxconn = known?.maxconn ?? (Number.isInteger(reported) && reported >= 1 && reported <= 256 ? reported : undefined);
  const serverName = known && !live.some((s) => s.name === known.name) ? known.name : deriveServerName(target, role.fleetPort, live.map((s) => s.name));
  const added: FleetServer = { name: serverName, ...target, ...(maxconn ? { maxconn } : {}) };
  return { servers: [...live, added], mustBeUp: [serverName], drop: [], detail: `add-fleet ${url} (${serverName}, maxconn ${maxconn ?? '-'})`, readyDrained: false };
}

function rejected(host: string, role: IngressRoleConfig, output: string, dryRun: boolean): ConfigRejectedError {
  const alerts = haproxyAlerts(output);
  const reason = alerts.find((a) => !/^config : Fatal errors found|^config : Failed to initialize/.test(a)) ?? alerts[0] ?? output.trim().split('\n').pop() ?? 'no output';
  return new ConfigRejectedError(`${host}: haproxy -c rejected the rendered config: ${reason}${dryRun ? ' (dry run)' : `; ${role.config} was not changed and haproxy keeps running the old one`}`, {
    next: 'fix the fleet list (environments.<env>.hosts.fleet or the URL), then: voxops deploy ingress --dry-run',
  });
}

/** runtime API steps carry a small python client; its source would drown the plan */
function runtimeLine(line: { step: Step; prefix?: string }): PlanLine {
  const words = line.step.command.kind === 'argv' ? line.step.command.argv : undefined;
  return words?.[0] === 'python3' ? { ...line, text: `echo ${quoteWord(words[4] ?? '')} to ${words[3]} (HAProxy runtime API, python3 client)` } : line;
}

/**
 * The ingress (HAProxy in front of the fleet hosts): `deploy ingress` renders haproxy.cfg from the
 * inventory's fleet hosts; `ingress add-fleet|remove-fleet URL` changes the live list by one host.
 * Each host: write and `haproxy -c` the candidate, drain what it drops, install, reload, verify
 * through the runtime API.
 */
export const ingressDriver: RoleDriver<IngressFacts, IngressPlan> = {
  role: 'ingress',
  actions: ['deploy', 'add-fleet', 'remove-fleet'],

  async inspect(host, request) {
    const role = ingressConfig(host.inventory);
    const target = request.action === 'deploy' ? undefined : targetOf(request, role);
    const [read, info] = await Promise.all([host.run(readHaproxyConfig(role.config)), host.run(showInfo(role.adminSocket))]);
    const current = read.exitCode === 0 ? read.stdout : '';
    const live = parseFleetServers(current, role.backend, role.fleetPort);
    const runtimeOk = info.exitCode === 0 && parseInfoPid(info.stdout) !== undefined;
    const facts: IngressFacts = { current, ...(live ? { live } : {}) };
    if (!runtimeOk) facts.runtimeProblem = lastLine(info.stderr) || lastLine(info.stdout);
    if (request.action === 'add-fleet' && target && !live?.some((s) => sameServer(s, target))) facts.candidate = await probeFleet(host, role, target);
    return facts;
  },

  judge(all, request, inventory) {
    const role = ingressConfig(inventory);
    const problems: string[] = [];
    const notes: Note[] = [];
    const judgement: Judgement<IngressPlan> = { plans: [], problems, warnings: [], notes, next: 'fix the problems above, then re-run' };
    if (request.action === 'deploy' && inventoryServers(inventory).length === 0) {
      judgement.refusal = new ConfigError(`environment ${inventory.environment} has no fleet hosts: the ingress would serve nothing`, [], {
        next: `list them under environments.${inventory.environment}.hosts.fleet`,
      });
      return judgement;
    }
    for (const { host, facts } of all) {
      if (facts.runtimeProblem !== undefined) {
        problems.push(`${host.name}: HAProxy's runtime API does not answer on ${role.adminSocket} (${facts.runtimeProblem}); is haproxy running with "stats socket ${role.adminSocket} level admin"?`);
        continue;
      }
      const odd = (facts.live ?? []).filter((s) => !isValidServerName(s.name)).map((s) => s.name);
      if (odd.length > 0) {
        problems.push(`${host.name}: ${role.config} has server names voxops will not pass to the runtime API: ${odd.map(printableQuoted).join(', ')}`);
        continue;
      }
      try {
        const servers = planServers(host.name, facts, request, inventory, notes);
        const rendered = renderHaproxyConfig(role, servers.servers);
        judgement.plans.push({ host, from: facts.current ? configDigest(facts.current) : null, to: configDigest(rendered), ...servers, current: facts.current, rendered });
      } catch (error) {
        judgement.refusal ??= error as ConfigError;
      }
    }
    return judgement;
  },

  describe(plan, _request, inventory) {
    const role = ingressConfig(inventory);
    const list = plan.servers.map((s) => `${s.name} ${serverAddress(s)} maxconn ${s.maxconn ?? '-'}`).join(', ');
    if (plan.rendered === plan.current) return [{ note: `${role.config} is already what voxops would render (${list}); nothing would change` }];
    const lines: PlanLine[] = [{ note: `${plan.detail}; fleet list ${list}` }, { step: writeCandidate(role.config, plan.rendered), prefix: '(the rendered config on stdin) ' }, { step: checkCandidate(role.config) }];
    for (const server of plan.drop) {
      lines.push(
        runtimeLine({ step: setServerState(role.adminSocket, role.backend, server.name, 'drain') }),
        runtimeLine({ step: showStat(role.adminSocket), prefix: `poll every ${POLL_MS} ms until ${server.name} has 0 sessions (at most ${role.drain.timeoutSeconds}s): ` }),
      );
    }
    lines.push(
      { step: installCandidate(role.config) },
      { step: reloadHaproxy(role.unit) },
      runtimeLine({ step: showStat(role.adminSocket), prefix: `poll until ${plan.mustBeUp.join(', ') || 'every server'} UP (at most ${role.health.upTimeoutSeconds}s): ` }),
    );
    return lines;
  },

  async rehearse(host, plan) {
    if (plan.rendered === plan.current) return;
    const role = ingressConfig(host.inventory);
    await showDiff(host, role, plan);
    // the rendered text is checked now, read-only (stdin), so a dry run already reports a rejection
    const check = await host.run(checkRendered(plan.rendered));
    if (check.exitCode !== 0) throw rejected(host.host.name, role, check.stdout + check.stderr, true);
    host.info('haproxy -c accepts the rendered config');
  },

  change(host, plan, request) {
    const role = ingressConfig(host.inventory);
    const drainSeconds = request.drainTimeoutSeconds ?? role.drain.timeoutSeconds;
    return { apply: () => (plan.rendered === plan.current ? verifyUnchanged(host, role, plan) : applyIngress(host, role, plan, drainSeconds)) };
  },

  afterwards(plans, _results, request, inventory) {
    if (request.action === 'deploy') return [];
    const known = inventoryServers(inventory);
    return plans
      .filter((plan) => plan.servers.length !== known.length || plan.servers.some((s) => !known.some((k) => sameServer(k, s))))
      .map((plan) => ({
        host: plan.host.name,
        message: `the ingress now serves ${plan.servers.map(fleetUrl).join(', ')}, which is not the inventory's fleet list: ${request.action === 'add-fleet' ? 'add it to' : 'remove it from'} environments.${inventory.environment}.hosts.fleet, or the next \`voxops deploy ingress\` will undo this`,
      }));
  },
};

async function showDiff(host: HostContext, role: IngressRoleConfig, plan: IngressPlan): Promise<void> {
  const diff = await host.run(diffHaproxyConfig(role.config, plan.rendered));
  // the live file can hold `stats auth` and other passwords: never into a log or --json
  const shown = redactHaproxyConfig(shownRemoteText(diff.stdout));
  if (shown.trim()) host.info(`changes to ${role.config}:\n${shown.trimEnd()}`);
}

/** The config is current: put back servers a remove-fleet left drained (a deploy), and check every backend. */
async function verifyUnchanged(host: HostContext, role: IngressRoleConfig, plan: IngressPlan) {
  if (plan.readyDrained) {
    for (const stat of (await readStats(host, role)) ?? []) {
      if (stat.status !== 'DRAIN' || !plan.servers.some((s) => s.name === stat.server)) continue;
      await host.run(setServerState(role.adminSocket, role.backend, stat.server, 'ready'));
      host.info(`${stat.server} was left drained (an unfinished remove-fleet?); it is back in rotation`);
    }
  }
  const notUp = await waitForUp(host, role, plan.mustBeUp, plan.readyDrained ? role.health.upTimeoutSeconds * 1000 : 0);
  if (notUp.length > 0) throw new UnhealthyError(`${host.host.name}: the config is current, but not every fleet backend is UP`, notUp, { next: 'check the fleet hosts: voxops health' });
  return { message: `${role.config} unchanged; nothing to do (${describeServers(plan.servers)})`, history: false as const };
}

async function applyIngress(host: HostContext, role: IngressRoleConfig, plan: IngressPlan, drainSeconds: number) {
  const name = host.host.name;
  await showDiff(host, role, plan);
  await host.step(writeCandidate(role.config, plan.rendered));
  const check = await host.step(checkCandidate(role.config));
  if (check.exitCode !== 0) {
    await host.run(removeCandidate(role.config)).catch(() => undefined);
    throw rejected(name, role, check.stdout + check.stderr, false);
  }
  try {
    for (const server of plan.drop) await drainServer(host, role, server, drainSeconds);
  } catch (error) {
    await host.run(removeCandidate(role.config)).catch(() => undefined);
    throw error;
  }
  const before = parseInfoPid((await host.run(showInfo(role.adminSocket))).stdout);
  await host.step(installCandidate(role.config));
  try {
    await host.step(reloadHaproxy(role.unit));
  } catch (error) {
    // the running haproxy still has the old config: put the file it was loaded from back
    await host.run(restoreBackup(role.config)).catch(() => undefined);
    const journal = await host.run(journalTail(role.unit, 20)).catch(() => undefined);
    if (error instanceof RemoteCommandError && journal) {
      throw new RemoteCommandError({ ...error.facts, stderr: `${error.facts.stderr}\n${journal.stdout}` }, { cause: error, next: `the old config is back in place; read the log: journalctl -u ${role.unit}` });
    }
    throw error;
  }
  await host.timed('wait for the new haproxy worker', () => waitForNewWorker(host, role, before));
  const notUp = await host.timed(`wait until ${plan.mustBeUp.join(', ') || 'the backends'} UP`, () => waitForUp(host, role, plan.mustBeUp, role.health.upTimeoutSeconds * 1000));
  if (notUp.length > 0) {
    throw new HealthGateError(`${name}: the new config is live, but not every fleet backend came UP within ${role.health.upTimeoutSeconds}s: ${notUp.join('; ')}`, { host: name }, {
      next: 'check the fleet hosts (voxops health), then: voxops deploy ingress',
    });
  }
  return { message: describeServers(plan.servers) };
}

/**
 * Stop new calls to a server (the runtime API's drain), then wait until its sessions reach 0.
 * On timeout it stays drained and listed; Ctrl-C puts it back in rotation unchanged.
 */
async function drainServer(host: HostContext, role: IngressRoleConfig, server: FleetServer, drainSeconds: number): Promise<void> {
  const name = host.host.name;
  const stats = await readStats(host, role);
  if (!stats?.some((s) => s.server === server.name)) {
    host.info(`${server.name} is not in the running haproxy: nothing to drain`);
    return;
  }
  const set = await host.run(setServerState(role.adminSocket, role.backend, server.name, 'drain'));
  if (set.exitCode !== 0 || set.stdout.trim()) {
    throw new RemoteCommandError({ host: name, step: `drain ${server.name}`, command: `set server ${role.backend}/${server.name} state drain`, exitCode: set.exitCode, stdout: set.stdout, stderr: set.stderr });
  }
  let lastReport = host.clock.now();
  const wait = await poll({
    clock: host.clock,
    signal: host.signal,
    timeoutMs: drainSeconds * 1000,
    intervalMs: POLL_MS,
    probe: async () => (await readStats(host, role))?.find((s) => s.server === server.name)?.sessions ?? 0,
    until: (sessions) => {
      if (sessions === 0) return true;
      if (host.clock.now() - lastReport >= 10_000) {
        lastReport = host.clock.now();
        host.info(`${server.name} drained, waiting for ${sessions} session(s) to end`);
      }
      return undefined;
    },
  });
  if (wait.outcome === 'done') {
    host.info(`${server.name} drained: 0 sessions after ${(wait.waitedMs / 1000).toFixed(1)}s`);
    return;
  }
  if (wait.outcome === 'aborted') {
    await host.run(setServerState(role.adminSocket, role.backend, server.name, 'ready')).catch(() => undefined);
    throw new InterruptedError(`interrupted while ${server.name} drained; it is back in rotation and nothing was changed`, { next: 'voxops deploy ingress' });
  }
  throw new DrainTimeoutError(
    `${name}: ${server.name} (${fleetUrl(server)}) still has ${wait.last} session(s) after ${drainSeconds}s; it stays drained (no new calls) but listed, and the config was not changed`,
    { next: `when its calls have ended: voxops ingress remove-fleet ${fleetUrl(server)} (or voxops deploy ingress)` },
  );
}

/** `systemctl reload` returns once the master is signalled: wait until a new worker answers the runtime API. */
async function waitForNewWorker(host: HostContext, role: IngressRoleConfig, before: number | undefined): Promise<void> {
  const wait = await poll({
    clock: host.clock,
    timeoutMs: NEW_WORKER_TIMEOUT_MS,
    intervalMs: POLL_MS,
    probe: async () => {
      const info = await host.run(showInfo(role.adminSocket));
      return info.exitCode === 0 ? parseInfoPid(info.stdout) : undefined;
    },
    until: (pid) => (pid !== undefined && pid !== before ? pid : undefined),
  });
  if (wait.outcome === 'done') return;
  const name = host.host.name;
  throw new HealthGateError(`${name}: haproxy did not start a new worker within ${NEW_WORKER_TIMEOUT_MS / 1000}s of the reload (worker pid still ${before ?? '?'})`, { host: name }, {
    next: `journalctl -u ${role.unit} on ${name}, then: voxops deploy ingress`,
  });
}

/** A new haproxy process starts every server UP before its first check: only a passed check counts. */
function isCheckedUp(stat: ServerStat | undefined): boolean {
  return stat?.status === 'UP' && stat.checkStatus.startsWith('L7OK');
}

/**
 * Poll `show stat` until every named server is UP (at most `timeoutMs`; 0 = look once). A server
 * that is DOWN only because its fleet host is full (healthy workers, none free) counts as up, with
 * a warning: the capacity-aware check takes full hosts out of rotation on purpose.
 */
async function waitForUp(host: HostContext, role: IngressRoleConfig, names: readonly string[], timeoutMs: number): Promise<string[]> {
  const wait = await poll({
    clock: host.clock,
    signal: host.signal,
    timeoutMs,
    intervalMs: POLL_MS,
    probe: () => readStats(host, role),
    until: (stats) => (names.every((n) => isCheckedUp(stats?.find((s) => s.server === n))) ? true : undefined),
  });
  if (wait.outcome === 'done') {
    if (names.length > 0) host.info(`UP: ${names.join(', ')}`);
    return [];
  }
  if (wait.outcome === 'aborted') {
    const pending = names.filter((n) => !isCheckedUp(wait.last?.find((s) => s.server === n)));
    throw new InterruptedError(`interrupted while waiting for ${pending.join(', ')} to come UP on ${host.host.name}; the new config is loaded`, { next: 'check it: voxops deploy ingress --dry-run' });
  }
  const problems: string[] = [];
  for (const name of names) {
    const stat = wait.last?.find((s) => s.server === name);
    if (isCheckedUp(stat)) continue;
    if (!stat) {
      problems.push(`${name}: not listed by the running haproxy`);
      continue;
    }
    const live = parseFleetServers((await host.run(readHaproxyConfig(role.config))).stdout, role.backend, role.fleetPort)?.find((s) => s.name === name);
    const p = live ? await probeFleet(host, role, live) : undefined;
    if (p?.httpStatus === 200 && Number(p.body?.healthy) > 0 && Number(p.body?.free) === 0) {
      host.warn(`${name} is ${stat.status}: its fleet host is full (${describeProbe(p)}); it rejoins when a worker frees up`);
      continue;
    }
    problems.push(`${name}: ${stat.status} (check ${stat.checkStatus || '-'}${stat.lastCheck ? `: ${stat.lastCheck}` : ''})${p ? `; from the ingress: ${describeProbe(p)}` : ''}`);
  }
  return problems;
}
