import { z } from 'zod';
import { hasControlCharacter, isConfigWord } from '../text.js';

/**
 * The inventory schema: one definition gives validation, the TypeScript types and the messages.
 * `examples/voxops.yaml` documents every key; a unit test keeps the two in step.
 *
 * Every string: no control character (NUL, newline, escape...) anywhere, so no value can add a
 * line to a rendered file or a message. Most strings are also one `word`: whatever is interpolated
 * into a config file or a command line (ssh_config, HAProxy, nginx, unit names, paths, users, hosts,
 * URLs) must not be read as two.
 */
const nonEmpty = z
  .string()
  .min(1)
  .refine((s) => !hasControlCharacter(s), { message: 'must not contain control characters (newline, tab, NUL, escape...)', abort: true });
const word = nonEmpty.refine(isConfigWord, { message: 'must be one word (no spaces)', abort: true });
/** what a command would read as an option */
const notAnOption = { check: (s: string) => !s.startsWith('-'), message: 'must not start with -' };

/** No voxops wait is meant to last a week, and JS timers overflow past 24.8 days. */
export const MAX_SECONDS = 7 * 24 * 3600;
const seconds = z.number().positive().max(MAX_SECONDS);
/** a number of seconds written into a config file, which reads whole numbers only */
const wholeSeconds = z.number().int().min(1).max(MAX_SECONDS);
const argvList = z.array(z.array(nonEmpty).min(1)).min(1);

/**
 * A path on a host: it goes into commands, nginx and HAProxy configs, so only characters none of
 * them reads specially (no whitespace, quotes, `#`, `;`, `$`, braces, globs or control characters).
 */
const absolutePath = nonEmpty
  .refine((s) => s.startsWith('/'), { message: 'must be an absolute path', abort: true })
  .regex(/^[A-Za-z0-9._@+,:=~\/-]*$/, 'may hold only letters, digits and . _ @ + , : = ~ / -');

/** A host name or IP address: what ssh, rsync and ProxyJump read as one host and never as an option. */
export const hostAddressPattern = /^(?!-)[A-Za-z0-9.:_-]{1,253}$/;
const hostAddress = nonEmpty.regex(hostAddressPattern, 'must be a host name or IP address');

/** Paths on the voxops machine (relative to the inventory file), read by voxops and by ssh through its ssh_config. */
const localPath = word.refine((s) => !/"|\$\{/.test(s), { message: 'cannot hold " or ${ (ssh_config reads them)' });

/** A login name as ssh, rsync (`user@host:path`) and ProxyJump (`user@host:port`) read it: never an option, never two words. */
export const userNamePattern = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,31}$/;
const userName = nonEmpty.regex(userNamePattern, 'must be a user name (letters, digits, . _ -; not starting with . or -)');

const jumpHost = z.strictObject({
  host: hostAddress,
  port: z.number().int().min(1).max(65535).default(22),
  user: userName.optional(),
});

const sshFields = {
  user: userName,
  port: z.number().int().min(1).max(65535),
  identityFile: localPath,
  knownHosts: localPath,
  connectTimeoutSeconds: seconds,
  commandTimeoutSeconds: seconds,
  keepaliveSeconds: seconds,
  sudo: z.boolean(),
  jumpHost,
};
export const sshSchema = z.strictObject(sshFields).partial();

/** checked as one word first: the URL parser quietly drops tabs and newlines */
const httpUrl = word.pipe(z.url({ protocol: /^https?$/ }));

const healthUrl = z.strictObject({
  url: httpUrl,
  gateTimeoutSeconds: seconds.default(60),
});

const unitName = nonEmpty.regex(/^(?!-)[A-Za-z0-9@._-]{1,255}$/, 'must be a systemd unit name');

const relativePath = word.refine((s) => !s.startsWith('/') && !s.split('/').includes('..') && !s.startsWith('-'), {
  message: 'must be a path inside the checkout (relative, no ..)',
});

/** What install produces (e.g. .venv): kept per release commit so a rollback restores it instead of re-installing. */
const buildCache = z.strictObject({
  outputs: z.array(relativePath).min(1),
  keep: z.number().int().min(1).max(20).default(3),
});

/** Where a release comes from when the host cannot fetch it (the rsync fallback), and what it must not touch. */
const releaseSource = {
  /** a local clone or mirror of `repo` (relative to the inventory file); else voxops keeps a mirror in its cache */
  localRepo: localPath.refine(notAnOption.check, { message: notAnOption.message }).optional(),
  /** more paths in the checkout that belong to the host: an rsync push never sends, replaces or deletes them */
  preserve: z.array(relativePath).default([]),
};

export const workerUnitPattern = /^(?!-)[A-Za-z0-9._-]+@\{i\}(\.service)?$/;

/**
 * A git URL, scp-like address or path. Never an option (git clone --upload-pack=...) and never a
 * `transport::address` (ext:: runs a command).
 */
const repo = word.refine(notAnOption.check, { message: notAnOption.message }).refine((s) => !/^[A-Za-z][A-Za-z0-9+.-]*::/.test(s), {
  message: 'must be a git URL, address or path (no transport:: helpers)',
});

/** The worker socket: an absolute path with the index in it once (`{i}` is the only thing substituted). */
const socketPattern = nonEmpty
  .refine((s) => s.includes('{i}'), { message: 'must contain {i}', abort: true })
  .refine((s) => s.startsWith('/'), { message: 'must be an absolute path', abort: true })
  .regex(/^\/[A-Za-z0-9._@+,:=~\/-]*\{i\}[A-Za-z0-9._@+,:=~\/-]*$/, 'may hold only letters, digits, . _ @ + , : = ~ / - and one {i}');

const upstreamName = nonEmpty.regex(/^[A-Za-z0-9_-]+$/, 'must be an nginx upstream name (letters, digits, _ and -)');

/** an environment name; `__proto__` cannot be a key of the parsed object at all */
const environmentName = nonEmpty.regex(/^[a-z0-9_-]+$/, 'environment names are lower-case').refine((s) => s !== '__proto__', {
  message: 'is not a usable environment name',
});

const fleetRole = z.strictObject({
  repo,
  path: absolutePath,
  install: argvList,
  workers: z.strictObject({
    count: z.number().int().min(1).max(256).default(16),
    unit: nonEmpty.regex(workerUnitPattern, 'must look like name@{i} (a template instance)').default('voxcore@{i}'),
    socket: socketPattern.default('/tmp/voxcore_{i}.sock'),
    envFile: absolutePath.optional(),
    countVariable: nonEmpty.regex(/^[A-Z_][A-Z0-9_]*$/, 'must be an environment variable name').default('VOXCORE_WORKERS'),
  }),
  health: z
    .strictObject({
      path: word.refine((s) => s.startsWith('/'), { message: 'must start with /' }).default('/health'),
      gateTimeoutSeconds: seconds.default(90),
      pollMilliseconds: z.number().int().min(10).max(5000).default(50),
    })
    .prefault({}),
  drain: z
    .strictObject({
      timeoutSeconds: seconds.default(3600),
      onTimeout: z.enum(['wait', 'skip', 'force']).default('wait'),
      /** the platform's longest legitimate call: an older one is hung, and onTimeout decides */
      maxCallAgeSeconds: seconds.default(3600),
    })
    .prefault({}),
  roll: z
    .strictObject({
      schedule: z.enum(['call-aware', 'one-at-a-time']).default('call-aware'),
      /** idle workers a host keeps in rotation: slots, or a percentage of its workers; default from live load */
      minFree: z
        .union([z.number().int().min(0), z.string().regex(/^\d{1,3}%$/, 'must be a number of slots or a percentage like 25%')])
        .optional(),
      /** workers moved aside or restarting at once (call-aware); default a quarter of the host's workers */
      maxOut: z.number().int().min(1).max(256).optional(),
    })
    .prefault({}),
  nginx: z
    .strictObject({
      config: absolutePath.default('/etc/nginx/sites-enabled/voxcore-fleet.conf'),
      upstream: upstreamName.default('voxcore_workers'),
    })
    .prefault({}),
  minFreeDiskMb: z.number().int().min(0).default(1024),
  build: buildCache.optional(),
  ...releaseSource,
});

const serviceRole = z.strictObject({
  repo,
  path: absolutePath,
  install: argvList,
  unit: unitName,
  health: healthUrl,
  /** restart only while this number in the /health answer is 0 (the dialler's leased_calls) */
  idle: z
    .strictObject({
      field: nonEmpty.regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a field name of the /health JSON'),
      timeoutSeconds: seconds.default(120),
    })
    .optional(),
  minFreeDiskMb: z.number().int().min(0).default(512),
  ...releaseSource,
});

/** Static files: built in the checkout, copied to a release directory, published by a symlink flip. */
const consoleRole = z.strictObject({
  repo,
  path: absolutePath,
  install: argvList,
  /** what the build writes, relative to the checkout */
  output: relativePath.default('dist'),
  /** the symlink nginx serves from (default: <path>/current); releases are kept beside it */
  current: absolutePath.optional(),
  keep: z.number().int().min(2).max(20).default(3),
  /** must serve the new build's index.html after the flip */
  verifyUrl: httpUrl.default('http://127.0.0.1/'),
  minFreeDiskMb: z.number().int().min(0).default(512),
  ...releaseSource,
});

/** The WSS ingress (HAProxy in front of the fleet hosts): config only, nothing checked out. Every key has a default. */
export const ingressRole = z.strictObject({
  config: absolutePath.default('/etc/haproxy/haproxy.cfg'),
  unit: unitName.default('haproxy.service'),
  backend: nonEmpty.regex(/^[A-Za-z0-9._-]+$/, 'must be letters, digits, dot, dash or underscore').default('fleet'),
  bind: nonEmpty.regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.*-]*):\d{1,5}$/, 'must be [ADDRESS]:PORT').default(':80'),
  fleetPort: z.number().int().min(1).max(65535).default(80),
  adminSocket: absolutePath.default('/run/haproxy/admin.sock'),
  health: z
    .strictObject({
      path: nonEmpty.regex(/^\/[A-Za-z0-9._~\/-]*$/, 'must be a plain path starting with /').default('/health/fleet'),
      intervalMilliseconds: z.number().int().min(100).max(60_000).default(1000),
      upTimeoutSeconds: seconds.default(30),
    })
    .prefault({}),
  drain: z.strictObject({ timeoutSeconds: seconds.default(3600) }).prefault({}),
  tunnelTimeoutSeconds: wholeSeconds.default(3600),
});

export const roleNames = ['api', 'console', 'fleet', 'dialler', 'ingress'] as const;
export type RoleName = (typeof roleNames)[number];

const hostEntry = z.strictObject({
  name: nonEmpty.regex(/^(?!-)[A-Za-z0-9._-]+$/, 'must be letters, digits, dot, dash or underscore, not starting with -'),
  address: hostAddress,
  port: z.number().int().min(1).max(65535).optional(),
  workers: z.number().int().min(1).max(256).optional(),
});

const environment = z.strictObject({
  ssh: sshSchema.optional(),
  hosts: z.strictObject({
    api: z.array(hostEntry).optional(),
    console: z.array(hostEntry).optional(),
    fleet: z.array(hostEntry).optional(),
    dialler: z.array(hostEntry).optional(),
    ingress: z.array(hostEntry).optional(),
  }),
});

/** The deploy lock on each host is a lease: unrenewed this long (its holder was killed or cut off), it expires. */
const lockSettings = z.strictObject({ leaseSeconds: z.number().int().min(10).max(86_400).default(120) });

export const inventorySchema = z.strictObject({
  defaultEnvironment: environmentName.optional(),
  ssh: sshSchema.optional(),
  lock: lockSettings.prefault({}),
  roles: z.strictObject({
    fleet: fleetRole.optional(),
    api: serviceRole.optional(),
    console: consoleRole.optional(),
    dialler: serviceRole.optional(),
    ingress: ingressRole.optional(),
  }),
  environments: z.record(environmentName, environment),
});

export type InventoryDocument = z.infer<typeof inventorySchema>;
export type FleetRoleConfig = z.infer<typeof fleetRole>;
export type ServiceRoleConfig = z.infer<typeof serviceRole>;
export type ConsoleRoleConfig = z.infer<typeof consoleRole>;
export type IngressRoleConfig = z.infer<typeof ingressRole>;
export type HostEntry = z.infer<typeof hostEntry>;
export type SshSettings = z.infer<typeof sshSchema>;
