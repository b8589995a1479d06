import type { Inventory } from '../../config/inventory.js';
import type { FleetRoleConfig } from '../../config/schema.js';
import { ConfigError } from '../../errors.js';
import type { OperationRequest } from '../contract.js';
import { parseMinFree } from '../../plan/schedule.js';
import type { CallAwareSettings } from './call-aware.js';
import type { RollSettings } from './roll-worker.js';

export function fleetConfig(inventory: Inventory): FleetRoleConfig {
  const role = inventory.roles.fleet;
  if (!role) throw new ConfigError(`${inventory.file} has no roles.fleet section`);
  return role;
}

/** How a worker is rolled: the inventory's timings, unless the operator overrode the drain. */
export function rollSettings(
  role: FleetRoleConfig,
  request: Pick<OperationRequest, 'drainTimeoutSeconds' | 'onDrainTimeout'>,
  expectVersion: string,
): RollSettings {
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

/** The call-aware roll's settings for one host: the operator's flags over the inventory's, over the defaults. */
export function callAwareSettings(
  role: FleetRoleConfig,
  request: Pick<OperationRequest, 'drainTimeoutSeconds' | 'onDrainTimeout' | 'minFree' | 'maxCallAgeSeconds' | 'batch'>,
  host: { workers?: number },
  nginx: { failTimeoutSeconds: number; errorLog: string; errorLogSize: number },
  expectVersion: string,
): CallAwareSettings {
  const workers = workerCount(role, host);
  const floor = request.minFree ?? (role.roll.minFree === undefined ? undefined : String(role.roll.minFree));
  const minFree = floor === undefined ? undefined : parseMinFree(floor, workers);
  return {
    ...rollSettings(role, request, expectVersion),
    healthPath: role.health.path,
    ...(minFree !== undefined ? { minFree } : {}),
    maxOut: request.batch ?? role.roll.maxOut ?? Math.max(1, Math.ceil(workers / 4)),
    maxCallAgeSeconds: request.maxCallAgeSeconds ?? role.drain.maxCallAgeSeconds,
    failTimeoutMs: nginx.failTimeoutSeconds * 1000,
    errorLog: nginx.errorLog,
    errorLogOffset: nginx.errorLogSize,
    roundMs: Math.max(role.health.pollMilliseconds, CALL_AWARE_ROUND_MS),
  };
}

/** How often a call-aware roll looks at every worker of a host (one exec for all of them). */
export const CALL_AWARE_ROUND_MS = 200;
