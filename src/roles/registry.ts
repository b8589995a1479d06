import type { RoleName } from '../config/schema.js';
import { ConfigError } from '../errors.js';
import { consoleDefinition } from './console/index.js';
import type { Action, RoleDefinition } from './contract.js';
import { fleetDefinition } from './fleet/index.js';
import { ingressDefinition } from './ingress/index.js';
import { serviceDefinition } from './service/index.js';

/**
 * Every role voxops deploys, in the platform's deploy order: the control plane, the console, the
 * fleet that takes calls, the dialler that places them, and the ingress config in front of the
 * fleet. A new role is a folder under src/roles and one line here.
 */
export const ROLES: readonly RoleDefinition[] = [
  serviceDefinition('api'),
  consoleDefinition,
  fleetDefinition,
  serviceDefinition('dialler'),
  ingressDefinition,
];

export function definitionOf(role: RoleName): RoleDefinition {
  const found = ROLES.find((r) => r.role === role);
  if (!found) throw new ConfigError(`unknown role ${role}`);
  return found;
}

/** The roles that can run an action, in deploy order. */
export function rolesThatCan(action: Action): RoleName[] {
  return ROLES.filter((r) => r.drivers.some((d) => d.actions.includes(action))).map((r) => r.role);
}
