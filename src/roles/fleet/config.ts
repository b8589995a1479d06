import type { Inventory } from '../../config/inventory.js';
import type { FleetRoleConfig } from '../../config/schema.js';
import { ConfigError } from '../../errors.js';
import type { OperationRequest } from '../contract.js';
import type { RollSettings } from './roll-worker.js';

export function fleetConfig(inventory: Inventory): FleetRoleConfig {
  const role = inventory.roles.fleet;
  if (!role) throw new ConfigError(`${inventory.file} has no roles.fleet section`);
  return role;
}

/** How a worker is rolled: the inventory's timings, unless the operator overrode the drain. */
export function rollSettings(role: FleetRoleConfig, request: Pick<OperationRequest, 'drainTimeoutSeconds' | 'onDrainTimeout'>, expectVersion: string): RollSettings {
  return {
    expectVersion,
    pollMs: role.health.pollMilliseconds,
    drainTimeoutSeconds: request.drainTimeoutSeconds ?? role.drain.timeoutSeconds,
    onDrainTimeout: request.onDrainTimeout ?? role.drain.onTimeout,
    gateTimeoutSeconds: role.health.gateTimeoutSeconds,
  };
}

export function workerCount(role: FleetRoleConfig, host: { workers?: number }): number {
  return host.workers ?? role.workers.count;
}
