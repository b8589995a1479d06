import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type FleetServer,
  FleetUrlError,
  type IngressSettings,
  renderHaproxyConfig,
  serverAddress,
  validateFleetHost,
} from '../../src/commands/haproxy.js';
import { renderScaledUpstream } from '../../src/commands/nginx.js';
import { renderSshConfig } from '../../src/commands/rsync.js';
import { isValidUnit } from '../../src/commands/systemd.js';
import { workerSocket, workerUnit } from '../../src/commands/worker.js';
import { type Inventory, parseInventory, type ResolvedSsh } from '../../src/config/inventory.js';
import { ingressRole, inventorySchema } from '../../src/config/schema.js';
import { ConfigError } from '../../src/errors.js';
import { hostileString, spliced } from './arbitraries.js';
import {
  type Directive,
  expandPath,
  type HaproxySection,
  type NginxStatement,
  parseHaproxyConfig,
  parseNginxConfig,
  parseSshConfig,
} from './config-parsers.js';
import { dotted, example, getIn, interpolated, type KeyPath, setIn } from './inventory-fixture.js';
import { problemsOf } from './inventory-problems.js';

/** Modest by default, so the unit suite stays fast; FUZZ_SCALE=50 for a deep run. */
const runs = (n: number) => n * Number(process.env.FUZZ_SCALE ?? 1);

// ---- what each renderer is meant to write, as directives -----------------------------------------

function expectedSshConfig(ssh: ResolvedSsh): Directive[] {
  const jump = ssh.jumpHost;
  return [
    ['Host', '*'],
    ['BatchMode', 'yes'],
    ['StrictHostKeyChecking', 'yes'],
    ['UserKnownHostsFile', ssh.knownHosts],
    ['GlobalKnownHostsFile', '/dev/null'],
    ['ConnectTimeout', String(Math.ceil(ssh.connectTimeoutSeconds))],
    ['ServerAliveInterval', String(Math.ceil(ssh.keepaliveSeconds))],
    ...(ssh.identityFile
      ? [
          ['IdentityFile', ssh.identityFile],
          ['IdentitiesOnly', 'yes'],
        ]
      : []),
    ...(jump
      ? [['ProxyJump', `${jump.user ? `${jump.user}@` : ''}${jump.host.includes(':') ? `[${jump.host}]` : jump.host}:${jump.port}`]]
      : []),
  ];
}

/** ssh_config as OpenSSH will use it: path options after its own % and ${} expansion. */
function readSshConfig(text: string): Directive[] {
  return parseSshConfig(text).map(([key, ...args]) => [
    key!,
    ...(key === 'UserKnownHostsFile' || key === 'IdentityFile' ? args.map(expandPath) : args),
  ]);
}

function expectedHaproxyConfig(settings: IngressSettings, servers: readonly FleetServer[]): HaproxySection[] {
  const t = `${settings.tunnelTimeoutSeconds}s`;
  return [
    {
      header: ['global'],
      directives: [
        ['log', '/dev/log', 'local0'],
        ['maxconn', '4096'],
        ['stats', 'socket', settings.adminSocket, 'mode', '660', 'level', 'admin'],
        ['user', 'haproxy'],
        ['group', 'haproxy'],
        ['daemon'],
      ],
    },
    {
      header: ['defaults'],
      directives: [
        ['mode', 'http'],
        ['log', 'global'],
        ['option', 'httplog'],
        ['timeout', 'connect', '5s'],
        ['timeout', 'queue', '5s'],
        ['timeout', 'check', '2s'],
        ['timeout', 'client', t],
        ['timeout', 'server', t],
        ['timeout', 'tunnel', t],
      ],
    },
    {
      header: ['frontend', 'calls'],
      directives: [
        ['bind', settings.bind],
        ['default_backend', settings.backend],
      ],
    },
    {
      header: ['backend', settings.backend],
      directives: [
        ['balance', 'leastconn'],
        ['retries', '2'],
        ['option', 'redispatch', '1'],
        ['retry-on', 'conn-failure', '502', '503'],
        ['option', 'httpchk', 'GET', settings.health.path],
        ['http-check', 'expect', 'rstring', '"free": *[1-9]'],
        ['default-server', 'check', 'inter', `${settings.health.intervalMilliseconds}ms`, 'rise', '1', 'fall', '1'],
        ...servers.map((s) => ['server', s.name, serverAddress(s), ...(s.maxconn === undefined ? [] : ['maxconn', String(s.maxconn)])]),
      ],
    },
    {
      header: ['listen', 'stats'],
      directives: [
        ['bind', '127.0.0.1:8404'],
        ['stats', 'enable'],
        ['stats', 'uri', '/stats'],
      ],
    },
  ];
}

const nginxSite = (upstream: string) => `upstream ${upstream} {
    least_conn;
    zone ${upstream} 64k;
    server unix:/tmp/old_1.sock max_conns=1 fail_timeout=10;
    server unix:/tmp/old_2.sock max_conns=1 fail_timeout=10;
}
server {
    listen 80;
    location / {
        proxy_pass http://${upstream};
        proxy_next_upstream_tries 2;
    }
}
`;

function expectedNginxSite(upstream: string, sockets: readonly string[]): NginxStatement[] {
  const inUpstream = [`upstream ${upstream}`];
  const inLocation = ['server', 'location /'];
  return [
    { blocks: inUpstream, words: ['least_conn'] },
    { blocks: inUpstream, words: ['zone', upstream, '64k'] },
    ...sockets.map((s) => ({ blocks: inUpstream, words: ['server', `unix:${s}`, 'max_conns=1', 'fail_timeout=10'] })),
    { blocks: ['server'], words: ['listen', '80'] },
    { blocks: inLocation, words: ['proxy_pass', `http://${upstream}`] },
    { blocks: inLocation, words: ['proxy_next_upstream_tries', String(sockets.length)] },
  ];
}

/** The text's lines that are neither blank nor comments: as many as the directives meant, so no value added a line. */
function lineCount(text: string): number {
  return text.split('\n').filter((l) => l.trim() && !l.trim().startsWith('#')).length;
}

// ---- the renderers, on whatever the inventory schema accepts -------------------------------------

/** The fleet hosts the fuzzed document has, besides the example's other roles. */
const FLEET_HOSTS = 3;

const base = (() => {
  const doc = example();
  doc.ssh.jumpHost.port = 22;
  doc.environments.staging.hosts.fleet = Array.from({ length: FLEET_HOSTS }, (_, i) => ({
    name: `fleet-stg-${i + 1}`,
    address: `10.20.0.${11 + i}`,
    workers: 4,
  }));
  doc.roles.fleet.workers.count = 4;
  for (const role of ['api', 'dialler', 'console']) doc.roles[role].localRepo = `../mirrors/${role}.git`;
  return doc;
})();

const baseDocument = (): Record<string, any> => structuredClone(base);

const numericPaths: [KeyPath, number][] = [
  [['ssh', 'port'], 22],
  [['ssh', 'connectTimeoutSeconds'], 10],
  [['ssh', 'keepaliveSeconds'], 5],
  [['ssh', 'jumpHost', 'port'], 22],
  [['roles', 'fleet', 'workers', 'count'], 4],
  [['roles', 'ingress', 'fleetPort'], 80],
  [['roles', 'ingress', 'tunnelTimeoutSeconds'], 3600],
  [['roles', 'ingress', 'health', 'intervalMilliseconds'], 1000],
  ...Array.from({ length: FLEET_HOSTS }, (_, i): [KeyPath, number] => [['environments', 'staging', 'hosts', 'fleet', i, 'workers'], 4]),
];

/**
 * Every interpolated string but defaultEnvironment (rendered nowhere: a fuzzed one would only name a
 * missing environment), with the fleet hosts' names and addresses for every fleet host.
 */
const stringPaths: KeyPath[] = [
  ...interpolated.filter((p) => dotted(p) !== 'defaultEnvironment' && !dotted(p).startsWith('environments.')),
  ...Array.from({ length: FLEET_HOSTS }, (_, i): KeyPath[] => [
    ['environments', 'staging', 'hosts', 'fleet', i, 'name'],
    ['environments', 'staging', 'hosts', 'fleet', i, 'address'],
  ]).flat(),
];

const hostileNumber = fc.constantFrom(0, -1, 0.5, 1.5, 1e300, 1e-300, 2 ** 31, 2 ** 53, 65_536, 30 * 86_400, 4096);

/** A whole inventory: every interpolated string and rendered number valid, spliced with hostile text, or hostile outright. */
const fuzzedDocument = fc
  .tuple(
    fc.tuple(
      ...stringPaths.map((path) =>
        fc.oneof(
          { weight: 1, arbitrary: fc.constant(String(getIn(base, path))) },
          { weight: 3, arbitrary: spliced(String(getIn(base, path))) },
          { weight: 1, arbitrary: hostileString() },
        ),
      ),
    ),
    fc.tuple(
      ...numericPaths.map(([, valid]) =>
        fc.oneof(
          { weight: 2, arbitrary: fc.constant(valid) },
          { weight: 1, arbitrary: fc.integer({ min: 1, max: 70_000 }) },
          { weight: 1, arbitrary: hostileNumber },
        ),
      ),
    ),
  )
  .map(([strings, numbers]) => {
    const doc = baseDocument();
    stringPaths.forEach((path, n) => setIn(doc, path, strings[n]));
    numericPaths.forEach(([path], n) => setIn(doc, path, numbers[n]));
    return doc;
  });

/**
 * Put the example's value back wherever the schema refuses the fuzzed one, so what is left is a
 * document the schema accepts, holding every fuzzed value it accepted.
 */
function keepAccepted(doc: Record<string, any>): Record<string, any> {
  const refused = inventorySchema.safeParse(doc);
  if (!refused.success) for (const issue of refused.error.issues) setIn(doc, issue.path as KeyPath, getIn(base, issue.path as KeyPath));
  expect(inventorySchema.safeParse(doc).success).toBe(true);
  return doc;
}

function load(doc: Record<string, any>): Inventory | undefined {
  try {
    return parseInventory(JSON.stringify(doc), '/inv/voxops.yaml');
  } catch (error) {
    // two fuzzed host names may come out equal: that is an inventory problem, reported as one
    if (error instanceof ConfigError && error.problems.every((p) => /listed twice|two addresses/.test(p))) return undefined;
    throw error;
  }
}

function ingressServers(inventory: Inventory, settings: IngressSettings): FleetServer[] {
  const servers: FleetServer[] = [];
  for (const host of inventory.hosts.filter((h) => h.role === 'fleet')) {
    try {
      // what the ingress driver does (inventoryServers): a host HAProxy cannot address is refused there
      servers.push({
        name: host.name,
        host: validateFleetHost(host.address),
        port: settings.fleetPort,
        ...(host.workers ? { maxconn: host.workers } : {}),
      });
    } catch (error) {
      if (!(error instanceof FleetUrlError)) throw error;
    }
  }
  return servers;
}

describe('every value the inventory schema accepts renders to exactly the intended directives', () => {
  it('ssh_config, haproxy.cfg, the nginx upstream and the systemd unit names', () => {
    fc.assert(
      fc.property(fuzzedDocument, (fuzzed) => {
        const inventory = load(keepAccepted(fuzzed));
        if (!inventory) return;

        const ssh = renderSshConfig(inventory.ssh);
        expect(readSshConfig(ssh)).toEqual(expectedSshConfig(inventory.ssh));
        expect(lineCount(ssh)).toBe(expectedSshConfig(inventory.ssh).length);

        const settings = inventory.roles.ingress ?? ingressRole.parse({});
        const servers = ingressServers(inventory, settings);
        const haproxy = renderHaproxyConfig(settings, servers);
        const sections = expectedHaproxyConfig(settings, servers);
        expect(parseHaproxyConfig(haproxy)).toEqual(sections);
        expect(lineCount(haproxy)).toBe(sections.reduce((n, s) => n + 1 + s.directives.length, 0));

        const fleet = inventory.roles.fleet!;
        const sockets = [1, 2, 3].map((i) => workerSocket(fleet.workers.socket, i));
        const scaled = renderScaledUpstream(nginxSite(fleet.nginx.upstream), {
          upstream: fleet.nginx.upstream,
          sockets,
          tries: sockets.length,
        });
        expect(scaled).toMatchObject({ ok: true });
        if (scaled.ok) expect(parseNginxConfig(scaled.text)).toEqual(expectedNginxSite(fleet.nginx.upstream, sockets));

        for (const i of [1, 2, 10]) {
          const unit = workerUnit(fleet.workers.unit, i);
          expect(isValidUnit(unit) && unit === fleet.workers.unit.replace('{i}', String(i)) && !/[{}]/.test(unit), unit).toBe(true);
        }
        for (const unit of [inventory.roles.api?.unit, inventory.roles.dialler?.unit, settings.unit])
          expect(isValidUnit(unit!), unit).toBe(true);
      }),
      { numRuns: runs(40) },
    );
  });
});

// ---- the renderers on their own, on anything at all: refused, or exactly what was meant -------------

const anyNumber = fc.oneof(fc.integer({ min: -5, max: 70_000 }), hostileNumber, fc.double({ noNaN: true }));

/** Run a renderer; a ConfigError is a refusal (fine), anything else it returns is checked. */
function refusedOr<T>(render: () => T, check: (rendered: T) => void): void {
  let rendered: T;
  try {
    rendered = render();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return;
  }
  check(rendered);
}

describe('each renderer refuses, or writes exactly the intended directives, whatever it is given', () => {
  it('renderSshConfig', () => {
    const ssh = fc.record({
      knownHosts: fc.oneof(spliced('/home/ops/.ssh/known_hosts'), hostileString()),
      identityFile: fc.option(spliced('/home/ops/.ssh/id_ed25519'), { nil: undefined }),
      connectTimeoutSeconds: anyNumber,
      keepaliveSeconds: anyNumber,
      jumpHost: fc.option(
        fc.record({
          host: fc.oneof(spliced('bastion.example.com'), spliced('fd00::1')),
          port: anyNumber,
          user: fc.option(spliced('ops'), { nil: undefined }),
        }),
        { nil: undefined },
      ),
    });
    fc.assert(
      fc.property(ssh, (fields) => {
        const settings = { user: 'deploy', port: 22, commandTimeoutSeconds: 900, sudo: false, ...fields } as ResolvedSsh;
        if (!settings.identityFile) delete settings.identityFile;
        if (!settings.jumpHost) delete settings.jumpHost;
        else if (settings.jumpHost.user === undefined) delete settings.jumpHost.user;
        refusedOr(
          () => renderSshConfig(settings),
          (text) => {
            expect(readSshConfig(text)).toEqual(expectedSshConfig(settings));
            expect(lineCount(text)).toBe(expectedSshConfig(settings).length);
          },
        );
      }),
      { numRuns: runs(150) },
    );
  });

  it('renderHaproxyConfig', () => {
    const server = fc.record({
      name: spliced('fleet1'),
      host: fc.oneof(spliced('10.0.0.1'), spliced('fd00::12')),
      port: anyNumber,
      maxconn: fc.option(anyNumber, { nil: undefined }),
    });
    const settings = fc.record({
      adminSocket: spliced('/run/haproxy/admin.sock'),
      bind: spliced(':80'),
      backend: spliced('fleet'),
      healthPath: spliced('/health/fleet'),
      interval: anyNumber,
      tunnel: anyNumber,
    });
    fc.assert(
      fc.property(settings, fc.array(server, { maxLength: 3 }), (s, rawServers) => {
        const ingress: IngressSettings = {
          ...ingressRole.parse({}),
          adminSocket: s.adminSocket,
          bind: s.bind,
          backend: s.backend,
          health: { path: s.healthPath, intervalMilliseconds: s.interval },
          tunnelTimeoutSeconds: s.tunnel,
        };
        const servers = rawServers.map(({ maxconn, ...rest }) => (maxconn === undefined ? rest : { ...rest, maxconn }));
        refusedOr(
          () => renderHaproxyConfig(ingress, servers),
          (text) => {
            const sections = expectedHaproxyConfig(ingress, servers);
            expect(parseHaproxyConfig(text)).toEqual(sections);
            expect(lineCount(text)).toBe(sections.reduce((n, section) => n + 1 + section.directives.length, 0));
          },
        );
      }),
      { numRuns: runs(150) },
    );
  });

  it('renderScaledUpstream', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.constant('voxcore_workers'), spliced('voxcore_workers')),
        fc.array(spliced('/tmp/voxcore_1.sock'), { minLength: 1, maxLength: 3 }),
        (upstream, sockets) => {
          const scaled = renderScaledUpstream(nginxSite('voxcore_workers').replaceAll('voxcore_workers', upstream), {
            upstream,
            sockets,
            tries: sockets.length,
          });
          if (scaled.ok) expect(parseNginxConfig(scaled.text)).toEqual(expectedNginxSite(upstream, sockets));
        },
      ),
      { numRuns: runs(150) },
    );
  });
});

const sshSettings: ResolvedSsh = {
  user: 'deploy',
  port: 22,
  knownHosts: '/etc/voxops/known_hosts',
  connectTimeoutSeconds: 10,
  commandTimeoutSeconds: 900,
  keepaliveSeconds: 5,
  sudo: false,
  jumpHost: { host: 'bastion', port: 22, user: 'ops' },
};

const injected = 'ops\nMatch exec "touch /tmp/voxops-pwned"\n  ProxyCommand sh -c id';

function inventoryWithJumpUser(user: string): string {
  return JSON.stringify({
    ssh: { jumpHost: { host: 'bastion', user } },
    roles: {},
    environments: { prod: { hosts: {} } },
  });
}

describe('renderSshConfig refuses what would add lines or change a value', () => {
  it('refuses a jump host user with a newline (a Match exec line would run a local command)', () => {
    expect(() => renderSshConfig({ ...sshSettings, jumpHost: { host: 'bastion', port: 22, user: injected } })).toThrow(ConfigError);
  });

  it('refuses such a user in the inventory already', () => {
    expect(problemsOf(inventoryWithJumpUser(injected))).toEqual([
      expect.stringMatching(/^ssh\.jumpHost\.user: must not contain control characters/),
    ]);
    expect(problemsOf(inventoryWithJumpUser('ops@evil'))).toEqual([expect.stringMatching(/^ssh\.jumpHost\.user: /)]);
    expect(problemsOf(inventoryWithJumpUser('-oProxyCommand=id'))).toEqual([expect.stringMatching(/^ssh\.jumpHost\.user: /)]);
    expect(parseInventory(inventoryWithJumpUser('ops'), '/inv/voxops.yaml').ssh.jumpHost).toEqual({
      host: 'bastion',
      port: 22,
      user: 'ops',
    });
  });

  it('escapes % (an ssh_config token) in paths, and brackets an IPv6 jump host', () => {
    const text = renderSshConfig({ ...sshSettings, knownHosts: '/srv/100%/known_hosts', jumpHost: { host: 'fd00::1', port: 2222 } });
    expect(text).toContain('  UserKnownHostsFile "/srv/100%%/known_hosts"\n');
    expect(text).toContain('  ProxyJump [fd00::1]:2222\n');
    expect(() => renderSshConfig({ ...sshSettings, knownHosts: '/srv/${HOME}/known_hosts' })).toThrow(/cannot hold/);
    // OpenSSH reads \\ \' \" as escapes inside quotes too: a trailing backslash left the quote open
    expect(renderSshConfig({ ...sshSettings, knownHosts: "/srv/a\\'b\\" })).toContain('  UserKnownHostsFile "/srv/a\\\\\'b\\\\"\n');
  });
});
