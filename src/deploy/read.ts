import { parseHistory, readHistory, type HistoryEntry } from '../commands/state.js';
import { journalTail } from '../commands/systemd.js';
import { workerUnit } from '../commands/worker.js';
import { hostsForRole } from '../config/inventory.js';
import type { RoleName } from '../config/schema.js';
import { ConfigError, UsageError } from '../errors.js';
import type { OperationContext } from './context.js';
import { selectHosts } from './status.js';
import { closeAll, connectAll } from './sessions.js';

/** Read-only lookups for on-call: history and logs. */
export async function collectHistory(ctx: OperationContext, only: string[] | undefined, lines: number): Promise<{ host: string; entries: HistoryEntry[] }[]> {
  const hosts = [...new Map(selectHosts(ctx.inventory, [], only).map((h) => [h.name, h])).values()];
  if (hosts.length === 0) throw new ConfigError(`no such host in environment ${ctx.inventory.environment}: ${only?.join(', ')}`);
  const sessions = await connectAll(ctx.executor, hosts);
  try {
    return await Promise.all(
      hosts.map(async (h) => ({ host: h.name, entries: parseHistory((await sessions.get(h.name)!.run(readHistory(lines))).stdout) })),
    );
  } finally {
    await closeAll(sessions);
  }
}

export async function collectLogs(ctx: OperationContext, role: RoleName, hostName: string, worker: number | undefined, lines: number): Promise<string> {
  const [host] = hostsForRole(ctx.inventory, role, [hostName]);
  let unit: string | undefined;
  if (role === 'fleet') {
    const fleet = ctx.inventory.roles.fleet!;
    if (!worker) throw new UsageError('logs fleet needs --worker N', { next: `voxops logs fleet --host ${hostName} --worker 1` });
    const count = host!.workers ?? fleet.workers.count;
    if (worker > count) throw new UsageError(`${hostName} has ${count} workers; there is no worker ${worker}`);
    unit = workerUnit(fleet.workers.unit, worker);
  } else if (role === 'api' || role === 'dialler') {
    unit = ctx.inventory.roles[role]?.unit;
  } else {
    // the console is static files: its log is nginx's
    unit = role === 'console' ? 'nginx.service' : 'haproxy.service';
  }
  if (!unit) throw new ConfigError(`roles.${role} has no unit in ${ctx.inventory.file}`);
  const sessions = await connectAll(ctx.executor, [host!]);
  try {
    return (await sessions.get(host!.name)!.run(journalTail(unit, lines))).stdout;
  } finally {
    await closeAll(sessions);
  }
}
