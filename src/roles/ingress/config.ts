import { serverAddress, validateFleetHost, type FleetServer } from '../../commands/haproxy.js';
import { hostsForRole, type Inventory } from '../../config/inventory.js';
import { ingressRole, type IngressRoleConfig } from '../../config/schema.js';
import { ConfigError } from '../../errors.js';

/** roles.ingress is optional: every key has a default */
export function ingressConfig(inventory: Inventory): IngressRoleConfig {
  return inventory.roles.ingress ?? ingressRole.parse({});
}

/** The fleet list the inventory asks for: every fleet host, its address, the fleet port, its worker count. */
export function inventoryServers(inventory: Inventory): FleetServer[] {
  const role = ingressConfig(inventory);
  const problems: string[] = [];
  const servers: FleetServer[] = [];
  for (const host of hostsForRole(inventory, 'fleet')) {
    try {
      const workers = host.workers ?? inventory.roles.fleet?.workers.count;
      servers.push({
        name: host.name,
        host: validateFleetHost(host.address),
        port: role.fleetPort,
        ...(workers ? { maxconn: workers } : {}),
      });
    } catch (error) {
      problems.push(`environments.${inventory.environment}.hosts.fleet: ${host.name}: ${(error as Error).message}`);
    }
  }
  if (problems.length > 0)
    throw new ConfigError(`${inventory.file}: fleet hosts HAProxy cannot use`, problems, {
      next: 'fix them, then run voxops config check',
    });
  return servers;
}

export function describeServers(servers: readonly FleetServer[]): string {
  return `serving ${servers.map((s) => `${s.name} (${serverAddress(s)}, maxconn ${s.maxconn ?? '-'})`).join(', ')}`;
}
