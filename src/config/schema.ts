import { z } from 'zod';

/**
 * The inventory schema: one definition gives validation, the TypeScript types and the messages.
 * `examples/voxops.yaml` documents every key; a unit test keeps the two in step.
 */
const nonEmpty = z.string().min(1);
const seconds = z.number().positive();
const argvList = z.array(z.array(nonEmpty).min(1)).min(1);

/** `{i}` patterns: the worker index is substituted; nothing else is interpreted. */
const indexPattern = nonEmpty.refine((s) => s.includes('{i}'), { message: 'must contain {i}' });
const absolutePath = nonEmpty.refine((s) => s.startsWith('/'), { message: 'must be an absolute path' });

const hostAddress = nonEmpty.regex(/^[A-Za-z0-9.:_-]+$/, 'must be a host name or IP address');

const jumpHost = z.strictObject({
  host: hostAddress,
  port: z.number().int().min(1).max(65535).default(22),
  user: nonEmpty.optional(),
});

const sshFields = {
  user: nonEmpty,
  port: z.number().int().min(1).max(65535),
  identityFile: nonEmpty,
  knownHosts: nonEmpty,
  connectTimeoutSeconds: seconds,
  commandTimeoutSeconds: seconds,
  keepaliveSeconds: seconds,
  sudo: z.boolean(),
  jumpHost,
};
export const sshSchema = z.strictObject(sshFields).partial();

const healthUrl = z.strictObject({
  url: z.url({ protocol: /^https?$/ }),
  gateTimeoutSeconds: seconds.default(60),
});

const unitName = nonEmpty.regex(/^[A-Za-z0-9@._{}-]+$/, 'must be a systemd unit name');

const relativePath = nonEmpty.refine((s) => !s.startsWith('/') && !s.split('/').includes('..') && !s.startsWith('-'), {
  message: 'must be a path inside the checkout (relative, no ..)',
});

/** What install produces (e.g. .venv): kept per release commit so a rollback restores it instead of re-installing. */
const buildCache = z.strictObject({
  outputs: z.array(relativePath).min(1),
  keep: z.number().int().min(1).max(20).default(3),
});

export const workerUnitPattern = /^[A-Za-z0-9._-]+@\{i\}(\.service)?$/;

const fleetRole = z.strictObject({
  repo: nonEmpty,
  path: absolutePath,
  install: argvList,
  workers: z.strictObject({
    count: z.number().int().min(1).max(256).default(16),
    unit: unitName.regex(workerUnitPattern, 'must look like name@{i} (a template instance)').default('voxcore@{i}'),
    socket: indexPattern.refine((s) => s.startsWith('/'), { message: 'must be an absolute path' }).default('/tmp/voxcore_{i}.sock'),
    envFile: absolutePath.optional(),
    countVariable: nonEmpty.regex(/^[A-Z_][A-Z0-9_]*$/, 'must be an environment variable name').default('VOXCORE_WORKERS'),
  }),
  health: z
    .strictObject({
      path: nonEmpty.refine((s) => s.startsWith('/'), { message: 'must start with /' }).default('/health'),
      gateTimeoutSeconds: seconds.default(90),
      pollMilliseconds: z.number().int().min(10).max(5000).default(50),
    })
    .prefault({}),
  drain: z
    .strictObject({
      timeoutSeconds: seconds.default(3600),
      onTimeout: z.enum(['wait', 'skip', 'force']).default('wait'),
    })
    .prefault({}),
  nginx: z
    .strictObject({
      config: absolutePath.default('/etc/nginx/sites-enabled/voxcore-fleet.conf'),
      upstream: nonEmpty.default('voxcore_workers'),
    })
    .prefault({}),
  minFreeDiskMb: z.number().int().min(0).default(1024),
  build: buildCache.optional(),
});

const serviceRole = z.strictObject({
  repo: nonEmpty,
  path: absolutePath,
  install: argvList,
  unit: unitName.optional(),
  health: healthUrl.optional(),
  minFreeDiskMb: z.number().int().min(0).default(512),
});

export const roleNames = ['api', 'console', 'fleet', 'dialler', 'ingress'] as const;
export type RoleName = (typeof roleNames)[number];

const hostEntry = z.strictObject({
  name: nonEmpty.regex(/^[A-Za-z0-9._-]+$/, 'must be letters, digits, dot, dash or underscore'),
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

export const inventorySchema = z.strictObject({
  defaultEnvironment: nonEmpty.optional(),
  ssh: sshSchema.optional(),
  roles: z.strictObject({
    fleet: fleetRole.optional(),
    api: serviceRole.optional(),
    console: serviceRole.optional(),
    dialler: serviceRole.optional(),
  }),
  environments: z.record(nonEmpty.regex(/^[a-z0-9_-]+$/, 'environment names are lower-case'), environment),
});

export type InventoryDocument = z.infer<typeof inventorySchema>;
export type FleetRoleConfig = z.infer<typeof fleetRole>;
export type ServiceRoleConfig = z.infer<typeof serviceRole>;
export type HostEntry = z.infer<typeof hostEntry>;
export type SshSettings = z.infer<typeof sshSchema>;
