import { parseFleetServers, readHaproxyConfig, serverAddress } from '../../commands/haproxy.js';
import type { RoleObserver } from '../contract.js';
import { ingressConfig } from './config.js';
import { readStats } from './driver.js';

/** Read-only, for `voxops status`: what the live haproxy.cfg lists and what HAProxy says of each. */
export const ingressObserver: RoleObserver = {
  // config only: nothing is checked out, so there is no release tag
  readTag: async () => null,
  async status(host) {
    const role = ingressConfig(host.inventory);
    const name = host.host.name;
    const [config, stats] = await Promise.all([host.run(readHaproxyConfig(role.config)), readStats(host, role)]);
    const servers = parseFleetServers(config.stdout, role.backend, role.fleetPort) ?? [];
    const backends = servers.map((server) => {
      const stat = stats?.find((s) => s.server === server.name);
      return {
        name: server.name,
        address: serverAddress(server),
        status: stat?.status ?? 'unknown',
        sessions: stat?.sessions ?? null,
        maxconn: server.maxconn ?? null,
      };
    });
    const problems: string[] = [];
    if (servers.length === 0) problems.push(`${name}: ${role.config} lists no server in backend ${role.backend}`);
    if (!stats) problems.push(`${name}: the HAProxy runtime API at ${role.adminSocket} does not answer`);
    for (const b of backends)
      if (stats && !b.status.startsWith('UP')) problems.push(`${name}: fleet backend ${b.name} (${b.address}) is ${b.status}`);
    return { tag: null, backends, health: problems.length === 0 ? 'ok' : 'unhealthy', problems };
  },
  logUnit: (inventory) => ingressConfig(inventory).unit,
};
