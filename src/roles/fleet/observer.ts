import pLimit from 'p-limit';
import { unitEnabledStates } from '../../commands/systemd.js';
import { socketExists, workerUnit } from '../../commands/worker.js';
import { UsageError } from '../../errors.js';
import type { RoleObserver, WorkerStatus } from '../contract.js';
import { isHealthy } from '../shared/health.js';
import { checkoutTag } from '../shared/tag.js';
import { fleetConfig, workerCount } from './config.js';
import { inspectFleetHost } from './facts.js';

export const fleetObserver: RoleObserver = {
  readTag: (host) => checkoutTag(host, fleetConfig(host.inventory).path),

  async status(host) {
    const role = fleetConfig(host.inventory);
    const name = host.host.name;
    const configured = workerCount(role, host.host);
    const facts = await inspectFleetHost(host, role);
    const limit = pLimit(4);
    const sockets = await Promise.all(facts.workers.map((w) => limit(() => host.run(socketExists(w.socket)))));
    // units beyond the configured count matter too: an extra enabled unit is capacity nobody planned
    const probeCount = Math.max(configured, facts.countVariable ?? 0, configured + 4);
    const enabled = await host.run(unitEnabledStates(Array.from({ length: probeCount }, (_, k) => workerUnit(role.workers.unit, k + 1))));
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
      if (w.health !== 'ok')
        problems.push(
          `${name}: worker ${w.index} (${w.unit}) is ${w.health} (unit ${w.active}, socket ${w.socket ? 'present' : 'missing'})`,
        );
      else if (facts.currentTag && w.version !== facts.currentTag)
        problems.push(`${name}: worker ${w.index} runs ${w.version} but ${facts.currentTag} is checked out`);
    }
    const value = facts.countVariable ?? null;
    const matches = value === enabledUnits;
    if (!matches)
      problems.push(
        `${name}: ${role.workers.countVariable}=${value ?? '(unset)'} but ${enabledUnits} worker units are enabled: /health reports the wrong capacity`,
      );
    if (enabledUnits !== configured) problems.push(`${name}: ${enabledUnits} worker units enabled, the inventory says ${configured}`);
    for (const finding of facts.nginx) if (finding.level === 'error') problems.push(`${name}: nginx: ${finding.message}`);
    return {
      tag: facts.currentTag,
      workers,
      capacity: { healthy: workers.filter((w) => w.health === 'ok').length, configured },
      workersSetting: { variable: role.workers.countVariable, value, enabledUnits, matches },
      problems,
    };
  },

  logUnit(inventory, host, worker) {
    const role = fleetConfig(inventory);
    if (!worker) throw new UsageError('logs fleet needs --worker N', { next: `voxops logs fleet --host ${host.name} --worker 1` });
    const count = workerCount(role, host);
    if (worker > count)
      throw new UsageError(`${host.name} has ${count} workers; there is no worker ${worker}`, {
        next: `voxops logs fleet --host ${host.name} --worker ${count}`,
      });
    return workerUnit(role.workers.unit, worker);
  },
};
