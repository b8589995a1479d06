import type { Inventory } from '../config/inventory.js';
import { ConfigError } from '../errors.js';
import { consoleRecipe } from './console.js';
import type { RoleRecipe, ServiceRoleName } from './recipe.js';
import { serviceRecipe } from './service.js';

export function recipeFor(inventory: Inventory, role: ServiceRoleName, options: { idleTimeoutSeconds?: number } = {}): RoleRecipe {
  if (role === 'console') {
    const config = inventory.roles.console;
    if (!config) throw new ConfigError(`${inventory.file} has no roles.console section`);
    return consoleRecipe(config);
  }
  const config = inventory.roles[role];
  if (!config) throw new ConfigError(`${inventory.file} has no roles.${role} section`);
  return serviceRecipe(role, config, options);
}
