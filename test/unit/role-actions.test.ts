import { describe, expect, it } from 'vitest';
import { ROLE_ACTIONS, ROLE_NAMES, rolesThatCan } from '../../src/cli/role-actions.js';
import { ROLES, rolesThatCan as registryRolesThatCan } from '../../src/roles/registry.js';

describe("the parser's list of roles", () => {
  it('names the registry roles in its deploy order', () => {
    expect(ROLE_NAMES).toEqual(ROLES.map((r) => r.role));
  });

  it('gives each role the actions its drivers take, no more and no fewer', () => {
    for (const definition of ROLES) {
      const actions = definition.drivers.flatMap((d) => d.actions);
      expect([...ROLE_ACTIONS[definition.role]].sort(), definition.role).toEqual([...new Set(actions)].sort());
    }
  });

  it('answers rolesThatCan as the registry does, for every action either knows', () => {
    const actions = new Set([...ROLES.flatMap((r) => r.drivers.flatMap((d) => d.actions)), ...Object.values(ROLE_ACTIONS).flat()]);
    for (const action of actions) expect(rolesThatCan(action), action).toEqual(registryRolesThatCan(action));
  });
});
