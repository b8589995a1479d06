import { hostname } from 'node:os';
import { journalTail } from '../commands/systemd.js';
import { parseHistory, readHistory, type HistoryEntry } from '../commands/state.js';
import { hostsForRole, type Host } from '../config/inventory.js';
import type { RoleName } from '../config/schema.js';
import { ConfigError, shownRemoteText, type LockHolder } from '../errors.js';
import type { HostSession } from '../exec/executor.js';
import { ReleaseWorkspace } from '../release/workspace.js';
import type { HostContext, RoleStatus } from '../roles/contract.js';
import { definitionOf, ROLES } from '../roles/registry.js';
import { whoAmI, type OperationContext } from './context.js';
import { lastKnownGood } from './history.js';
import { hostContext } from './host.js';
import { lockStatus, readHolder, releaseLocks, type LockRelease, type LockReport } from './locks.js';
import { closeAll, connectAll } from './sessions.js';

/**
 * The read-only operations for on-call: status, health, history, logs, and the locks. They connect
 * once per host (whatever its roles), never take a lock, and change nothing but a lock on request.
 */

/** The documented, stable shape of `voxops status --json` (README, "status --json"). */
export interface HostStatus extends Omit<RoleStatus, 'workers'> {
  name: string;
  role: RoleName;
  lastKnownGood: string | null;
  lock: LockHolder | null;
  workers: NonNullable<RoleStatus['workers']>;
}

export interface StatusReport {
  environment: string;
  hosts: HostStatus[];
}

/** The hosts of these roles (every role when none is named), optionally only the named ones. */
export function selectHosts(ctx: OperationContext, roles: readonly RoleName[], only?: readonly string[]): Host[] {
  const chosen = roles.length > 0 ? roles : ROLES.map((r) => r.role);
  const hosts = chosen.flatMap((role) => hostsForRole(ctx.inventory, role));
  if (!only || only.length === 0) return hosts;
  const unknown = only.filter((name) => !hosts.some((h) => h.name === name));
  if (unknown.length > 0) throw new ConfigError(`no host named ${unknown.join(', ')} in environment ${ctx.inventory.environment}`, [], { next: 'voxops config check lists the hosts' });
  return hosts.filter((h) => only.includes(h.name));
}

async function withSessions<T>(ctx: OperationContext, hosts: readonly Host[], work: (host: (h: Host) => HostContext, session: (h: Host) => HostSession) => Promise<T>): Promise<T> {
  const sessions = await connectAll(ctx.executor, hosts);
  const workspace = new ReleaseWorkspace(ctx.inventory, ctx.env);
  try {
    const session = (h: Host) => sessions.get(h.name)!;
    return await work((h) => hostContext(ctx, session(h), workspace, () => {}), session);
  } finally {
    await closeAll(sessions);
  }
}

export async function collectStatus(ctx: OperationContext, roles: readonly RoleName[], only?: readonly string[]): Promise<StatusReport> {
  const hosts = selectHosts(ctx, roles, only);
  const statuses = await withSessions(ctx, hosts, (hostOf) =>
    Promise.all(
      hosts.map(async (h): Promise<HostStatus> => {
        const host = hostOf(h);
        const [status, lock, history] = await Promise.all([definitionOf(h.role).observer.status(host), readHolder(host), host.run(readHistory(500))]);
        const lkg = lastKnownGood(parseHistory(history.stdout), h.role, status.tag) ?? null;
        return { name: h.name, role: h.role, lastKnownGood: lkg, lock: lock ?? null, ...status, workers: status.workers ?? [] };
      }),
    ),
  );
  return { environment: ctx.inventory.environment, hosts: statuses };
}

export async function collectHistory(ctx: OperationContext, only: readonly string[] | undefined, lines: number): Promise<{ host: string; entries: HistoryEntry[] }[]> {
  const hosts = [...new Map(selectHosts(ctx, [], only).map((h) => [h.name, h])).values()];
  return withSessions(ctx, hosts, (hostOf) => Promise.all(hosts.map(async (h) => ({ host: h.name, entries: parseHistory((await hostOf(h).run(readHistory(lines))).stdout) }))));
}

export async function collectLogs(ctx: OperationContext, role: RoleName, hostName: string, worker: number | undefined, lines: number): Promise<string> {
  const [host] = hostsForRole(ctx.inventory, role, [hostName]);
  const unit = definitionOf(role).observer.logUnit(ctx.inventory, host!, worker);
  return withSessions(ctx, [host!], async (hostOf) => shownRemoteText((await hostOf(host!).run(journalTail(unit, lines))).stdout));
}

export function collectLocks(ctx: OperationContext, only?: readonly string[]): Promise<LockReport[]> {
  const hosts = [...new Map(selectHosts(ctx, [], only).map((h) => [h.name, h])).values()];
  return withSessions(ctx, hosts, (_, session) => lockStatus(hosts.map(session), ctx.clock.now()));
}

export function releaseLocksOn(ctx: OperationContext, only: readonly string[] | undefined, force: boolean): Promise<LockRelease[]> {
  const hosts = [...new Map(selectHosts(ctx, [], only).map((h) => [h.name, h])).values()];
  return withSessions(ctx, hosts, (_, session) => releaseLocks(hosts.map(session), { user: whoAmI(ctx.env), machine: hostname() }, force));
}
