import pLimit from 'p-limit';
import { currentTag } from '../commands/git.js';
import { parseHistory, readHistory } from '../commands/state.js';
import { unitEnabledStates } from '../commands/systemd.js';
import { parseHealthProbe, probeHealthUrl, socketExists, workerUnit } from '../commands/worker.js';
import { hostsForRole, type Host, type Inventory } from '../config/inventory.js';
import type { RoleName } from '../config/schema.js';
import type { LockHolder } from '../errors.js';
import type { HostSession } from '../exec/executor.js';
import type { OperationContext } from './context.js';
import { gatherFleetFacts, isHealthy } from './fleet-facts.js';
import { lastKnownGood } from './history.js';
import { readHolder } from './locks.js';
import { closeAll, connectAll } from './sessions.js';
import { consoleRecipe } from '../recipes/console.js';
import { ingressBackends, type IngressBackend } from './ingress.js';

/** The documented, stable shape of `voxops status --json` (README, "status --json"). */
export interface WorkerStatus {
  index: number;
  unit: string;
  active: string;
  socket: boolean;
  health: 'ok' | 'unhealthy' | 'unreachable';
  version: string | null;
  activeCalls: number | null;
}

export interface HostStatus {
  name: string;
  role: RoleName;
  tag: string | null;
  lastKnownGood: string | null;
  lock: LockHolder | null;
  health?: 'ok' | 'unhealthy' | 'unreachable';
  workers: WorkerStatus[];
  capacity?: { healthy: number; configured: number };
  /** ingress only: the fleet backends in the live haproxy.cfg, and HAProxy's view of each */
  backends?: IngressBackend[];
  workersSetting?: { variable: string; value: number | null; enabledUnits: number; matches: boolean };
  problems: string[];
}

export interface StatusReport {
  environment: string;
  hosts: HostStatus[];
}

const pathOf = (inventory: Inventory, role: RoleName): string | undefined =>
  role === 'ingress' ? undefined : inventory.roles[role]?.path;

async function lastKnownGoodOf(session: HostSession, role: RoleName, tag: string | null): Promise<string | null> {
  const history = parseHistory((await session.run(readHistory(500))).stdout);
  return lastKnownGood(history, role, tag) ?? null;
}

/** The deployed tag as the role records it: the console's is the build nginx serves. */
async function deployedTag(session: HostSession, inventory: Inventory, role: RoleName): Promise<string | null> {
  if (role === 'console' && inventory.roles.console) return consoleRecipe(inventory.roles.console).readTag(session);
  const path = pathOf(inventory, role);
  if (!path) return null;
  const result = await session.run(currentTag(path));
  return result.exitCode === 0 ? result.stdout.trim() || null : null;
}

async function commonStatus(session: HostSession, inventory: Inventory, role: RoleName): Promise<Pick<HostStatus, 'tag' | 'lastKnownGood' | 'lock'>> {
  const [lock, tag] = await Promise.all([readHolder(session), deployedTag(session, inventory, role)]);
  return { tag, lastKnownGood: await lastKnownGoodOf(session, role, tag), lock: lock ?? null };
}

async function fleetStatus(session: HostSession, inventory: Inventory): Promise<HostStatus> {
  const role = inventory.roles.fleet!;
  const host = session.host;
  const configured = host.workers ?? role.workers.count;
  // the facts already hold the lock and the tag: only the history is read on top
  const facts = await gatherFleetFacts(session, role);
  const common = { tag: facts.currentTag, lock: facts.lock ?? null, lastKnownGood: await lastKnownGoodOf(session, 'fleet', facts.currentTag) };
  const limit = pLimit(4);
  const sockets = await Promise.all(facts.workers.map((w) => limit(() => session.run(socketExists(w.socket)))));
  // units beyond the configured count matter too: an extra enabled unit is capacity nobody planned
  const probeCount = Math.max(configured, facts.countVariable ?? 0, configured + 4);
  const enabled = await session.run(unitEnabledStates(Array.from({ length: probeCount }, (_, k) => workerUnit(role.workers.unit, k + 1))));
  const enabledUnits = enabled.stdout.split('\n').filter((line) => line.trim() === 'enabled').length;
  const workers: WorkerStatus[] = facts.workers.map((w, n) => ({
    index: w.index,
    unit: w.unit,
    active: w.active,
    socket: sockets[n]!.exitCode === 0,
    health: isHealthy(w.health) ? 'ok' : w.health.httpStatus === 0 ? 'unreachable' : 'unhealthy',
    version: w.health.body?.version ?? null,
    activeCalls: typeof w.health.body?.active_calls === 'number' ? w.health.body.active_calls : null,
  }));
  const problems: string[] = [];
  for (const w of workers) {
    if (w.health !== 'ok') problems.push(`${host.name}: worker ${w.index} (${w.unit}) is ${w.health} (unit ${w.active}, socket ${w.socket ? 'present' : 'missing'})`);
    else if (common.tag && w.version !== common.tag) problems.push(`${host.name}: worker ${w.index} runs ${w.version} but ${common.tag} is checked out`);
  }
  const value = facts.countVariable ?? null;
  const matches = value === enabledUnits;
  if (!matches) {
    problems.push(`${host.name}: ${role.workers.countVariable}=${value ?? '(unset)'} but ${enabledUnits} worker units are enabled: /health reports the wrong capacity`);
  }
  if (enabledUnits !== configured) problems.push(`${host.name}: ${enabledUnits} worker units enabled, the inventory says ${configured}`);
  for (const finding of facts.nginx) if (finding.level === 'error') problems.push(`${host.name}: nginx: ${finding.message}`);
  const healthy = workers.filter((w) => w.health === 'ok').length;
  return {
    name: host.name,
    role: 'fleet',
    tag: common.tag,
    lastKnownGood: common.lastKnownGood,
    lock: common.lock,
    workers,
    capacity: { healthy, configured },
    workersSetting: { variable: role.workers.countVariable, value, enabledUnits, matches },
    problems,
  };
}

async function serviceStatus(session: HostSession, inventory: Inventory, role: RoleName): Promise<HostStatus> {
  const common = await commonStatus(session, inventory, role);
  const status: HostStatus = { name: session.host.name, role, tag: common.tag, lastKnownGood: common.lastKnownGood, lock: common.lock, workers: [], problems: [] };
  if (role === 'ingress') {
    const { backends, problems } = await ingressBackends(inventory, session);
    status.backends = backends;
    status.health = problems.length === 0 ? 'ok' : 'unhealthy';
    status.problems.push(...problems);
    return status;
  }
  const url = role === 'api' || role === 'dialler' ? inventory.roles[role]?.health.url : role === 'console' ? inventory.roles.console?.verifyUrl : undefined;
  if (url) {
    const probe = await session.run(probeHealthUrl(url));
    const parsed = parseHealthProbe(probe.stdout, probe.stderr);
    // the console answers HTML, not a health document: 200 is all it can say
    const ok = role === 'console' ? parsed.httpStatus === 200 : isHealthy(parsed);
    status.health = ok ? 'ok' : parsed.httpStatus === 0 ? 'unreachable' : 'unhealthy';
    if (status.health !== 'ok') status.problems.push(`${session.host.name}: ${role} ${url} is ${status.health}`);
  }
  return status;
}

export function selectHosts(inventory: Inventory, roles: readonly RoleName[], only?: readonly string[]): Host[] {
  const chosen = roles.length > 0 ? roles : (['api', 'console', 'fleet', 'dialler', 'ingress'] as const);
  const hosts = chosen.flatMap((role) => hostsForRole(inventory, role));
  return only && only.length > 0 ? hosts.filter((h) => only.includes(h.name)) : hosts;
}

/** Read-only: connects, reads, never takes a lock. One connection per host, whatever its roles. */
export async function collectStatus(ctx: OperationContext, roles: readonly RoleName[], only?: readonly string[]): Promise<StatusReport> {
  const hosts = selectHosts(ctx.inventory, roles, only);
  const unique = [...new Map(hosts.map((h) => [h.name, h])).values()];
  const sessions = await connectAll(ctx.executor, unique);
  try {
    const statuses = await Promise.all(
      hosts.map((host) => {
        const session = sessions.get(host.name)!;
        return host.role === 'fleet' ? fleetStatus(session, ctx.inventory) : serviceStatus(session, ctx.inventory, host.role);
      }),
    );
    return { environment: ctx.inventory.environment, hosts: statuses };
  } finally {
    await closeAll(sessions);
  }
}
