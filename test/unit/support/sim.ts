import { renderHaproxyConfig, type FleetServer } from '../../../src/commands/haproxy.js';
import { releaseName } from '../../../src/commands/console.js';
import { historyFile, lockFile, stateDir, type HistoryEntry } from '../../../src/commands/state.js';
import { ingressRole, type RoleName } from '../../../src/config/schema.js';
import type { LockHolder } from '../../../src/errors.js';
import { VirtualClock } from './clock.js';
import { consoleIndex } from './commands.js';
import { Clone, Origin } from './git.js';
import { SimHost, type Estate } from './host.js';
import type { SimHosts } from './executor.js';
import { SimulatorGap } from './shell.js';

/** Where each role lives on its hosts: the simulator's setup and the inventory it writes agree on these. */
export const FLEET = {
  repo: 'git@git.example.com:vox/vox-agents.git',
  path: '/opt/voxcore',
  envFile: '/opt/voxcore/.env',
  countVariable: 'VOXCORE_WORKERS',
  unitPattern: 'voxcore@{i}',
  socketPattern: '/tmp/voxcore_{i}.sock',
  nginxConfig: '/etc/nginx/sites-enabled/voxcore-fleet.conf',
  upstream: 'voxcore_workers',
};
export const API = {
  repo: 'git@git.example.com:vox/vox-backend.git',
  path: '/opt/voxbridge',
  unit: 'voxbridge.service',
  url: 'http://127.0.0.1:8080/health',
};
export const DIALLER = {
  repo: 'git@git.example.com:vox/vox-dialler.git',
  path: '/opt/voxdialler',
  unit: 'voxdialler.service',
  url: 'http://127.0.0.1:8090/health',
};
export const CONSOLE = {
  repo: 'git@git.example.com:vox/vox-frontend.git',
  path: '/opt/voxconsole',
  current: '/opt/voxconsole/current',
  verifyUrl: 'http://127.0.0.1/',
};
/** roles.ingress as the inventory writes it; everything else is the schema's default */
const INGRESS_INVENTORY = { health: { upTimeoutSeconds: 1 }, drain: { timeoutSeconds: 1 } };
export const INGRESS = ingressRole.parse(INGRESS_INVENTORY);

/** The lab's release tags, in every repo: three good ones and the broken flavours. */
function releases(repo: string): Origin {
  return new Origin(repo)
    .tag('v1.4.2')
    .tag('v1.5.0')
    .tag('v1.6.0')
    .tag('v1.5.1-badhealth', { flavour: 'badhealth' })
    .tag('v1.5.1-nosocket', { flavour: 'nosocket' })
    .tag('v1.5.1-slowboot', { flavour: 'slowboot', bootProbes: 3 })
    .tag('v1.5.1-noinstall', { installFails: true });
}

export function fleetNginxConfig(sockets: readonly string[], serverParams = 'max_conns=1 max_fails=0'): string {
  return [
    `upstream ${FLEET.upstream} {`,
    `    zone ${FLEET.upstream} 64k;`,
    '    least_conn;',
    ...sockets.map((s) => `    server unix:${s} ${serverParams};`),
    '}',
    '',
    'map $http_upgrade $connection_upgrade {',
    '    default upgrade;',
    "    ''      close;",
    '}',
    '',
    'server {',
    '    listen 80 default_server;',
    '    location /attach {',
    `        proxy_pass http://${FLEET.upstream};`,
    '        proxy_next_upstream error timeout http_429 non_idempotent;',
    `        proxy_next_upstream_tries ${sockets.length};`,
    '    }',
    '    location / {',
    `        proxy_pass http://${FLEET.upstream};`,
    '        proxy_http_version 1.1;',
    '        proxy_set_header Upgrade $http_upgrade;',
    '        proxy_set_header Connection $connection_upgrade;',
    '        proxy_read_timeout 3600s;',
    '    }',
    '}',
    '',
  ].join('\n');
}

const NGINX_MAIN = '/etc/nginx/nginx.conf';

type Doc = Record<string, any>;

/**
 * A whole estate on a scripted host: origins with the lab's tags, hosts set up like the lab's
 * (every service healthy on v1.4.2), the virtual clock, and the inventory that describes it.
 */
export class Sim implements Estate, SimHosts {
  readonly clock = new VirtualClock();
  readonly gaps: Error[] = [];
  readonly origins = {
    fleet: releases(FLEET.repo),
    api: releases(API.repo),
    dialler: releases(DIALLER.repo),
    console: releases(CONSOLE.repo),
  };
  readonly hosts = new Map<string, SimHost>();
  private readonly roles = new Map<string, { role: RoleName; workers?: number }[]>();
  private readonly tweaks: ((doc: Doc) => void)[] = [];
  private pids = 4000;

  nextPid(): number {
    return ++this.pids;
  }

  host(name: string): SimHost {
    const host = this.hosts.get(name);
    if (!host) throw new SimulatorGap(`no simulated host named ${name}`);
    return host;
  }

  hostByAddress(address: string): SimHost | undefined {
    return [...this.hosts.values()].find((h) => h.address === address);
  }

  /** a host of the estate; `listed`: the inventory describes it (else it exists on the network only) */
  private place(name: string, role: RoleName, workers?: number, listed = true): SimHost {
    let host = this.hosts.get(name);
    if (!host) {
      host = new SimHost(this, name, `10.0.0.${11 + this.hosts.size}`);
      this.hosts.set(name, host);
    }
    if (listed) this.roles.set(name, [...(this.roles.get(name) ?? []), { role, ...(workers ? { workers } : {}) }]);
    return host;
  }

  /**
   * A fleet host like the lab's: N workers on `release`, nginx with max_fails=0, healthy.
   * `listed: false`: a host the inventory does not know yet (what `ingress add-fleet` adds).
   */
  addFleetHost(
    name: string,
    options: { workers?: number; release?: string; known?: string[]; serverParams?: string; listed?: boolean } = {},
  ): SimHost {
    const workers = options.workers ?? 4;
    const release = options.release ?? 'v1.4.2';
    const host = this.place(name, 'fleet', workers, options.listed ?? true);
    host.fleet = { origin: this.origins.fleet, ...FLEET };
    host.clones.set(FLEET.path, new Clone(FLEET.path, this.origins.fleet, release, options.known));
    host.fs.mkdir(FLEET.path, true);
    host.fs.put(`${FLEET.path}/.venv/installed-version`, `${release}\n`);
    host.fs.put(FLEET.envFile, `${FLEET.countVariable}=${workers}\nVOXCORE_API_SECRET=lab-secret-do-not-print\n`, 'voxcore');
    const sockets = Array.from({ length: workers }, (_, i) => host.socketOf(i + 1));
    host.fs.put(NGINX_MAIN, 'user www-data;\nevents {}\nhttp {\n    include /etc/nginx/sites-enabled/*;\n}\n');
    host.fs.put(FLEET.nginxConfig, fleetNginxConfig(sockets, options.serverParams));
    host.nginx = { files: [NGINX_MAIN, FLEET.nginxConfig], loadedSockets: [] };
    host.defineUnit('nginx');
    host.nginxReload();
    for (let i = 1; i <= workers; i++) {
      const unit = host.workerUnit(i);
      unit.enabled = true;
      host.startUnit(unit);
    }
    return host;
  }

  /** An api or dialler host: its checkout on `release`, the unit running and healthy. */
  addServiceHost(role: 'api' | 'dialler', name: string, options: { release?: string; known?: string[] } = {}): SimHost {
    const where = role === 'api' ? API : DIALLER;
    const release = options.release ?? 'v1.4.2';
    const host = this.place(name, role);
    const origin = this.origins[role];
    host.clones.set(where.path, new Clone(where.path, origin, release, options.known));
    host.fs.mkdir(where.path, true);
    host.fs.put(`${where.path}/.venv/installed-version`, `${release}\n`);
    host.fs.put(`${where.path}/.env`, 'SECRET=do-not-print\n');
    host.services.push({ role, origin, path: where.path, unit: where.unit, url: where.url });
    host.startUnit(host.defineUnit(where.unit));
    return host;
  }

  /** A console host: `current` points at releases/<release>-<commit>, older `kept` builds beside it. */
  addConsoleHost(name: string, options: { release?: string; kept?: string[] } = {}): SimHost {
    const release = options.release ?? 'v1.4.2';
    const host = this.place(name, 'console');
    const origin = this.origins.console;
    host.clones.set(CONSOLE.path, new Clone(CONSOLE.path, origin, release, options.kept));
    host.console = { origin, ...CONSOLE };
    host.fs.put(`${CONSOLE.path}/dist/index.html`, consoleIndex(release));
    for (const tag of [...(options.kept ?? []), release])
      host.fs.put(`${CONSOLE.path}/releases/${releaseName(tag, origin.commit(tag))}/index.html`, consoleIndex(tag));
    host.fs.symlink(`${CONSOLE.path}/releases/${releaseName(release, origin.commit(release))}`, CONSOLE.current);
    host.fs.put(NGINX_MAIN, 'events {}\nhttp {\n    include /etc/nginx/sites-enabled/*;\n}\n');
    host.fs.put('/etc/nginx/sites-enabled/voxconsole.conf', `server {\n    listen 80;\n    root ${CONSOLE.current};\n}\n`);
    host.nginx = { files: [NGINX_MAIN, '/etc/nginx/sites-enabled/voxconsole.conf'], loadedSockets: [] };
    host.defineUnit('nginx');
    return host;
  }

  /** The fleet list the inventory describes, as voxops renders it for HAProxy. */
  fleetServers(): FleetServer[] {
    return [...this.roles].flatMap(([name, roles]) =>
      roles
        .filter((r) => r.role === 'fleet')
        .map((r) => ({ name, host: this.host(name).address, port: INGRESS.fleetPort, ...(r.workers ? { maxconn: r.workers } : {}) })),
    );
  }

  /**
   * An ingress host running HAProxy. `config: 'rendered'` is exactly what voxops would render from
   * the fleet hosts added so far; 'stale' is an older hand-written one listing only the first.
   */
  addIngressHost(name: string, options: { config?: 'rendered' | 'stale' } = {}): SimHost {
    const host = this.place(name, 'ingress');
    const servers = this.fleetServers();
    const text =
      options.config === 'stale'
        ? `global\n    stats socket ${INGRESS.adminSocket} mode 660 level admin\n\ndefaults\n    mode http\n\nfrontend calls\n    bind :80\n    default_backend ${INGRESS.backend}\n\nbackend ${INGRESS.backend}\n    option httpchk GET /health\n    server ${servers[0]?.name ?? 'fleet1'} ${servers[0]?.host ?? '10.0.0.11'}:80 check\n`
        : renderHaproxyConfig(INGRESS, servers);
    host.fs.put(INGRESS.config, text);
    host.haproxy = {
      config: INGRESS.config,
      adminSocket: INGRESS.adminSocket,
      unit: INGRESS.unit,
      backend: INGRESS.backend,
      fleetPort: INGRESS.fleetPort,
      pid: 0,
      running: false,
      loaded: [],
      drained: new Set(),
      down: new Set(),
      sessions: new Map(),
      holding: new Set(),
    };
    host.startUnit(host.defineUnit(INGRESS.unit));
    host.haproxyReload();
    return host;
  }

  /** Another deploy's lock on a host (a run that is still going, or died). */
  lock(name: string, holder: Partial<LockHolder> = {}): LockHolder {
    const full: LockHolder = {
      id: 'f00dfeedf00dfeed',
      user: 'alice',
      machine: 'jenkins-7',
      pid: 4242,
      startedAt: '2025-06-02T08:50:00.000Z',
      action: 'deploy',
      tag: 'v1.5.0',
      buildUrl: 'https://jenkins.example.com/job/voxops/81/',
      ...holder,
    };
    const host = this.host(name);
    host.fs.mkdir(stateDir, true);
    host.fs.write(lockFile, `${JSON.stringify(full)}\n`);
    return full;
  }

  /** Lines already in a host's history (what earlier deploys recorded). */
  history(name: string, entries: Partial<HistoryEntry>[]): void {
    const host = this.host(name);
    const role = this.roles.get(name)?.[0]?.role ?? 'fleet';
    host.fs.mkdir(stateDir, true);
    const lines = entries.map((e) =>
      JSON.stringify({
        at: '2025-06-01T10:00:00.000Z',
        host: name,
        role,
        action: 'deploy',
        from: null,
        to: 'v1.4.2',
        outcome: 'success',
        durationMs: 1000,
        user: 'alice',
        ...e,
      }),
    );
    host.fs.write(historyFile, `${lines.join('\n')}\n`, { append: true });
  }

  /** The history lines voxops wrote on a host. */
  historyOf(name: string): HistoryEntry[] {
    const host = this.host(name);
    if (!host.fs.exists(historyFile)) return [];
    return host.fs
      .read(historyFile)
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as HistoryEntry);
  }

  /** Change the inventory this estate writes (after the defaults), e.g. a role's timeouts. */
  configure(tweak: (doc: Doc) => void): this {
    this.tweaks.push(tweak);
    return this;
  }

  /**
   * The inventory describing this estate. Every timeout is small (gates 1 s, polls 10 ms) so that a
   * failing gate costs one real second while voxops still ignores the injected clock.
   */
  inventory(): Doc {
    const hosts: Record<string, { name: string; address: string; workers?: number }[]> = {};
    const present = new Set<RoleName>();
    for (const [name, roles] of this.roles) {
      for (const { role, workers } of roles) {
        present.add(role);
        (hosts[role] ??= []).push({ name, address: this.host(name).address, ...(workers && role === 'fleet' ? { workers } : {}) });
      }
    }
    const roles: Doc = {};
    if (present.has('fleet')) {
      roles.fleet = {
        repo: FLEET.repo,
        path: FLEET.path,
        install: [['uv', 'sync', '--frozen']],
        workers: {
          count: 4,
          unit: FLEET.unitPattern,
          socket: FLEET.socketPattern,
          envFile: FLEET.envFile,
          countVariable: FLEET.countVariable,
        },
        health: { path: '/health', gateTimeoutSeconds: 1, pollMilliseconds: 10 },
        drain: { timeoutSeconds: 30, onTimeout: 'wait' },
        // the scenarios model calls by probes of a drained socket (one-at-a-time's drain); a
        // call-aware scenario asks for its schedule with --schedule call-aware
        roll: { schedule: 'one-at-a-time' },
        nginx: { config: FLEET.nginxConfig, upstream: FLEET.upstream },
        minFreeDiskMb: 1024,
      };
    }
    for (const [role, where, idle] of [
      ['api', API, undefined],
      ['dialler', DIALLER, { field: 'leased_calls', timeoutSeconds: 5 }],
    ] as const) {
      if (!present.has(role)) continue;
      roles[role] = {
        repo: where.repo,
        path: where.path,
        install: [['uv', 'sync', '--frozen']],
        unit: where.unit,
        health: { url: where.url, gateTimeoutSeconds: 1 },
        ...(idle ? { idle } : {}),
      };
    }
    if (present.has('console')) {
      roles.console = {
        repo: CONSOLE.repo,
        path: CONSOLE.path,
        install: [
          ['npm', 'ci'],
          ['npm', 'run', 'build'],
        ],
        output: 'dist',
        current: CONSOLE.current,
        keep: 3,
        verifyUrl: CONSOLE.verifyUrl,
      };
    }
    if (present.has('ingress')) roles.ingress = structuredClone(INGRESS_INVENTORY);
    const doc: Doc = {
      defaultEnvironment: 'test',
      ssh: { user: 'deploy', knownHosts: 'known_hosts' },
      roles,
      environments: { test: { hosts } },
    };
    for (const tweak of this.tweaks) tweak(doc);
    return doc;
  }
}
