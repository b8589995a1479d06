import type { RoleName } from '../config/schema.js';
import type { Action } from '../roles/contract.js';

/**
 * Each role and the actions its drivers take, in deploy order: what the argument parser needs from
 * src/roles/registry.ts without importing every driver (and ssh2, simple-git, ...) before it knows
 * which command runs. test/unit/role-actions.test.ts fails when the two disagree.
 */
export const ROLE_ACTIONS: Readonly<Record<RoleName, readonly Action[]>> = {
  api: ['deploy', 'rollback', 'restart'],
  console: ['deploy', 'rollback'],
  fleet: ['deploy', 'rollback', 'restart', 'scale'],
  dialler: ['deploy', 'rollback', 'restart'],
  ingress: ['deploy', 'add-fleet', 'remove-fleet'],
};

export const ROLE_NAMES = Object.keys(ROLE_ACTIONS) as RoleName[];

/** The roles that can run an action, in deploy order. */
export function rolesThatCan(action: Action): RoleName[] {
  return ROLE_NAMES.filter((role) => ROLE_ACTIONS[role].includes(action));
}
