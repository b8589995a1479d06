import type { Inventory } from '../config/inventory.js';
import { ExitCode } from '../errors.js';
import { noColour, type Paint } from './colour.js';

/** `voxops config check`: the inventory loaded (or main has already reported why not); no host is contacted. */
export function configCheck(inventory: Inventory, json: boolean, write: (text: string) => void, paint: Paint = noColour): number {
  if (json) {
    write(JSON.stringify({ ok: true, file: inventory.file, environment: inventory.environment, hosts: inventory.hosts }));
    return ExitCode.ok;
  }
  write(`${inventory.file}: ${paint('ok', 'ok')} (environment ${inventory.environment}; environments: ${inventory.environments.join(', ')})`);
  for (const host of inventory.hosts) write(`  ${host.role.padEnd(8)} ${host.name} ${host.address}:${host.port}${host.workers ? ` (${host.workers} workers)` : ''}`);
  return ExitCode.ok;
}
