import yargs, { type Argv as Yargs } from 'yargs';
import type { RoleName } from '../config/schema.js';
import { UsageError } from '../errors.js';
import type { ReleaseSource } from '../release/source.js';
import type { DrainPolicy } from '../roles/contract.js';
import { ROLES, rolesThatCan } from '../roles/registry.js';

/**
 * argv -> options, and nothing else: no I/O, so tests (and the runbook checker) can parse every
 * documented command line without touching a host.
 */
export interface GlobalOptions {
  inventory?: string;
  env?: string;
  json: boolean;
  verbose: boolean;
  dryRun: boolean;
  acceptNewHostKeys: boolean;
}

/** The flags of every command that changes hosts, named as the engine's request names them. */
export interface ChangeFlags {
  hosts?: string[];
  /** write JUnit XML, JSON, Markdown and SVG reports here */
  report?: string;
  parallel?: number | 'auto';
  batch?: number;
  schedule?: 'call-aware' | 'one-at-a-time';
  minFree?: string;
  maxCallAgeSeconds?: number;
  drainTimeoutSeconds?: number;
  onDrainTimeout?: DrainPolicy;
  allowUnhealthy: boolean;
  source: ReleaseSource;
}

export type ParsedCommand =
  | ({ command: 'deploy'; role: RoleName | 'all'; tag?: string } & ChangeFlags & GlobalOptions)
  | ({ command: 'rollback'; roles: RoleName[]; to?: string; force: boolean } & ChangeFlags & GlobalOptions)
  | ({ command: 'restart'; role: RoleName | 'all'; worker?: number } & ChangeFlags & GlobalOptions)
  | ({ command: 'status'; roles: RoleName[]; hosts?: string[] } & GlobalOptions)
  | ({ command: 'health'; roles: RoleName[]; hosts?: string[] } & GlobalOptions)
  | ({ command: 'history'; hosts?: string[]; lines: number } & GlobalOptions)
  | ({ command: 'lock-status'; hosts?: string[] } & GlobalOptions)
  | ({ command: 'lock-release'; hosts?: string[]; force: boolean } & GlobalOptions)
  | ({ command: 'logs'; role: RoleName; host: string; worker?: number; lines: number } & GlobalOptions)
  | ({ command: 'scale'; role: 'fleet'; host: string; workers: number; drainTimeoutSeconds?: number; report?: string } & GlobalOptions)
  | ({ command: 'ingress-add-fleet' | 'ingress-remove-fleet'; url: string; drainTimeoutSeconds?: number; report?: string } & GlobalOptions)
  | ({ command: 'config-check' } & GlobalOptions);

const roleChoices = ROLES.map((r) => r.role);
const deployableRoles = [...rolesThatCan('deploy'), 'all'];
const rollbackRoles = [...rolesThatCan('rollback'), 'all'];
const restartableRoles = [...rolesThatCan('restart'), 'all'];

const reportOption = { type: 'string', describe: 'write voxops-junit.xml, voxops-report.json, voxops-summary.md and voxops-roll.svg into this directory' } as const;

function changeOptions(y: Yargs): Yargs {
  return y
    .option('hosts', { type: 'string', array: true, describe: 'only these hosts (comma-separated or repeated)' })
    .option('parallel', { type: 'string', describe: 'hosts at once: a number (default 1), or auto (every host, each keeping its own free workers)' })
    .option('batch', { type: 'number', describe: 'fleet: workers out of rotation at once (one-at-a-time: default 1; call-aware: default a quarter of the host)' })
    .option('schedule', {
      choices: ['call-aware', 'one-at-a-time'] as const,
      describe: 'fleet: restart each worker the moment it is idle (call-aware, the default), or one after another paced by nginx fail_timeout',
    })
    .option('min-free', { type: 'string', describe: 'fleet, call-aware: idle workers each host keeps in rotation: slots or a percentage (25%); default from live load, at least 1' })
    .option('max-call-age', { type: 'number', describe: 'fleet, call-aware: a call older than this many seconds is hung; --on-drain-timeout decides (default: inventory drain.maxCallAgeSeconds)' })
    .option('drain-timeout', { type: 'number', describe: "seconds to wait for a worker's call to end (default: inventory drain.timeoutSeconds)" })
    .option('on-drain-timeout', {
      choices: ['wait', 'skip', 'force'] as const,
      describe: 'when a call outlasts the drain timeout: keep waiting, retry the worker last, or restart it anyway (drops the call)',
    })
    .option('allow-unhealthy', { type: 'boolean', default: false, describe: 'go ahead even if some workers fail preflight health' })
    .option('report', reportOption)
    .option('source', {
      choices: ['git', 'rsync', 'auto'] as const,
      default: 'auto',
      describe: 'release tree: git fetch on the host, rsync from the local clone, or auto (git, then rsync if the host cannot fetch)',
    });
}

function positiveInt(value: unknown, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a whole number of at least 1`, { next: 'voxops --help' });
  return n;
}

function parseChangeFlags(p: Record<string, unknown>): ChangeFlags {
  const hosts = hostList(p.hosts as string[] | undefined);
  const parallel = p.parallel === 'auto' ? 'auto' : positiveInt(p.parallel, '--parallel');
  const drainTimeout = positiveInt(p['drain-timeout'], '--drain-timeout');
  const batch = positiveInt(p.batch, '--batch');
  const maxCallAge = positiveInt(p['max-call-age'], '--max-call-age');
  const minFree = p['min-free'] === undefined ? undefined : String(p['min-free']);
  if (minFree !== undefined && !/^(\d{1,3}%|\d+)$/.test(minFree)) throw new UsageError(`--min-free ${minFree}: a number of slots or a percentage such as 25%`, { next: 'voxops --help' });
  return {
    ...(batch !== undefined ? { batch } : {}),
    ...(p.schedule ? { schedule: p.schedule as 'call-aware' | 'one-at-a-time' } : {}),
    ...(minFree !== undefined ? { minFree } : {}),
    ...(maxCallAge !== undefined ? { maxCallAgeSeconds: maxCallAge } : {}),
    allowUnhealthy: Boolean(p['allow-unhealthy']),
    source: (p.source as ReleaseSource | undefined) ?? 'auto',
    ...(hosts ? { hosts } : {}),
    ...(p.report ? { report: String(p.report) } : {}),
    ...(parallel !== undefined ? { parallel } : {}),
    ...(drainTimeout !== undefined ? { drainTimeoutSeconds: drainTimeout } : {}),
    ...(p['on-drain-timeout'] ? { onDrainTimeout: p['on-drain-timeout'] as DrainPolicy } : {}),
  };
}

function globals(y: Yargs): Yargs<GlobalOptions> {
  return y
    .option('inventory', { alias: 'i', type: 'string', describe: 'inventory file (else $VOXOPS_INVENTORY, else ./voxops.yaml)' })
    .option('env', { alias: 'e', type: 'string', describe: 'environment in the inventory (else defaultEnvironment)' })
    .option('json', { type: 'boolean', default: false, describe: 'one JSON event per line on stdout' })
    .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'show every remote command and stack traces' })
    .option('dry-run', { type: 'boolean', default: false, describe: 'connect and check, print every command that would change a host, change nothing' })
    .option('accept-new-host-keys', { type: 'boolean', default: false, describe: 'trust and record keys of hosts not yet in known_hosts (changed keys are always refused)' }) as unknown as Yargs<GlobalOptions>;
}

function hostList(value: string[] | string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const list = (Array.isArray(value) ? value : [value]).flatMap((v) => String(v).split(',')).map((v) => v.trim()).filter(Boolean);
  return list.length > 0 ? list : undefined;
}

export function buildParser(): Yargs {
  return globals(yargs())
    .scriptName('voxops')
    .usage('$0 <command> [options]')
    .command('deploy <role>', 'deploy a release tag to a role (fleet: rolling, worker by worker, drained and gated)', (y) =>
      changeOptions(y)
        .positional('role', { choices: deployableRoles, describe: 'which role to deploy' })
        .option('tag', { alias: 't', type: 'string', describe: 'release tag, e.g. v1.5.0 (every role but ingress, which is config only)' })
        .option('rolling', { type: 'boolean', default: true, describe: 'fleet: one worker at a time (the only mode; accepted for clarity)' }),
    )
    .command('rollback [roles..]', 'roll roles back to a tag, or each host to its last-known-good (same drain, gates, lock and history as deploy)', (y) =>
      changeOptions(y)
        .positional('roles', { choices: rollbackRoles, array: true, describe: 'roles to roll back (default, or all: every role, in reverse deploy order)' })
        .option('to', { type: 'string', describe: 'release tag to go back to (default: last-known-good from history)' })
        .option('force', { type: 'boolean', default: false, describe: 'allow a "rollback" to a tag newer than the deployed one' }),
    )
    .command('restart <role>', 'restart without a deploy: the fleet rolling, drained and gated; api and dialler gated (all: api, fleet, dialler)', (y) =>
      changeOptions(y)
        .positional('role', { choices: restartableRoles })
        .option('host', { type: 'string', array: true, describe: 'only this host' })
        .option('worker', { type: 'number', describe: 'only this worker (index)' }),
    )
    .command('status [roles..]', 'what runs where: tags, last-known-good, locks, every worker', (y) =>
      y.positional('roles', { choices: roleChoices, array: true }).option('hosts', { alias: 'host', type: 'string', array: true }),
    )
    .command('health [roles..]', 'check everything; exit non-zero and print one line per problem', (y) =>
      y.positional('roles', { choices: roleChoices, array: true }).option('hosts', { alias: 'host', type: 'string', array: true }),
    )
    .command('history', 'deploy history recorded on the hosts', (y) =>
      y.option('hosts', { alias: 'host', type: 'string', array: true }).option('lines', { alias: 'n', type: 'number', default: 20 }),
    )
    .command('lock <action>', 'lock status | lock release [--force]', (y) =>
      y
        .positional('action', { choices: ['status', 'release'] as const })
        .option('hosts', { alias: 'host', type: 'string', array: true })
        .option('force', { type: 'boolean', default: false, describe: "release somebody else's lock" }),
    )
    .command('logs <role>', 'the journal of one unit, through SSH', (y) =>
      y
        .positional('role', { choices: roleChoices })
        .option('host', { type: 'string', demandOption: true })
        .option('worker', { type: 'number', describe: 'fleet: worker index' })
        .option('lines', { alias: 'n', type: 'number', default: 200 }),
    )
    .command('scale <role>', 'change the number of workers on one fleet host (nginx upstream, units, env file), with no call dropped', (y) =>
      y
        .positional('role', { choices: ['fleet'] as const })
        .option('host', { type: 'string', demandOption: true, describe: 'the fleet host' })
        .option('workers', { type: 'number', demandOption: true, describe: 'the new worker count' })
        .option('drain-timeout', { type: 'number', describe: "seconds to wait for a removed worker's call to end" })
        .option('report', reportOption),
    )
    .command('ingress <action> <url>', 'ingress add-fleet URL | ingress remove-fleet URL (drained first)', (y) =>
      y
        .positional('action', { choices: ['add-fleet', 'remove-fleet'] as const })
        .positional('url', { type: 'string', describe: "the fleet host's URL, e.g. http://10.0.0.13:80" })
        .option('drain-timeout', { type: 'number', describe: 'remove-fleet: seconds to wait for its calls to end' })
        .option('report', reportOption),
    )
    .command('config <action>', 'config check: validate the inventory and print what it describes', (y) =>
      y.positional('action', { choices: ['check'] as const }),
    )
    .demandCommand(1, 'name a command: deploy, rollback, restart, scale, ingress, status, health, history, lock, logs, config check')
    .strict()
    .help()
    .version(false)
    .exitProcess(false)
    .fail((message, error) => {
      throw error instanceof UsageError ? error : new UsageError(message ?? error?.message ?? 'bad arguments', { next: 'voxops --help' });
    });
}

export async function parseArgs(args: readonly string[]): Promise<ParsedCommand | { command: 'help'; output: string }> {
  let output = '';
  const parsed = await buildParser().parseAsync([...args], {}, (_err, _argv, out) => {
    output = out;
  });
  if (output) return { command: 'help', output };
  const [first] = parsed._.map(String);
  const base: GlobalOptions = {
    ...(parsed.inventory ? { inventory: String(parsed.inventory) } : {}),
    ...(parsed.env ? { env: String(parsed.env) } : {}),
    json: Boolean(parsed.json),
    verbose: Boolean(parsed.verbose),
    dryRun: Boolean(parsed['dry-run']),
    acceptNewHostKeys: Boolean(parsed['accept-new-host-keys']),
  };
  const p = parsed as typeof parsed & Record<string, unknown>;
  const roles = ((p.roles as string[] | undefined) ?? []).map(String).filter((r) => r !== 'all') as RoleName[];
  const hosts = hostList((p.hosts ?? p.host) as string[] | undefined);
  const withHosts = hosts ? { hosts } : {};
  switch (first) {
    case 'deploy': {
      const role = String(p.role);
      if (p.tag === undefined && role !== 'ingress') throw new UsageError(`deploy ${role} needs --tag`, { next: `voxops deploy ${role} --tag <tag>` });
      return { command: 'deploy', role: role as RoleName | 'all', ...(p.tag !== undefined ? { tag: String(p.tag) } : {}), ...parseChangeFlags(p), ...base };
    }
    case 'scale': {
      const workers = positiveInt(p.workers, '--workers')!;
      if (workers > 256) throw new UsageError(`--workers ${workers}: must be a whole number from 1 to 256`, { next: 'voxops --help' });
      const drainTimeoutSeconds = positiveInt(p['drain-timeout'], '--drain-timeout');
      const report = p.report ? { report: String(p.report) } : {};
      return { command: 'scale', role: 'fleet', host: String(p.host), workers, ...(drainTimeoutSeconds ? { drainTimeoutSeconds } : {}), ...report, ...base };
    }
    case 'ingress': {
      const drainTimeoutSeconds = positiveInt(p['drain-timeout'], '--drain-timeout');
      const command = p.action === 'add-fleet' ? 'ingress-add-fleet' : 'ingress-remove-fleet';
      const report = p.report ? { report: String(p.report) } : {};
      return { command, url: String(p.url), ...(drainTimeoutSeconds ? { drainTimeoutSeconds } : {}), ...report, ...base };
    }
    case 'rollback':
      return { command: 'rollback', roles, force: Boolean(p.force), ...(p.to !== undefined ? { to: String(p.to) } : {}), ...parseChangeFlags(p), ...base };
    case 'restart': {
      const worker = positiveInt(p.worker, '--worker');
      return { command: 'restart', role: String(p.role) as RoleName | 'all', ...(worker ? { worker } : {}), ...parseChangeFlags({ ...p, hosts: p.hosts ?? p.host }), ...base };
    }
    case 'status':
    case 'health':
      return { command: first, roles, ...withHosts, ...base };
    case 'history':
      return { command: 'history', lines: positiveInt(p.lines, '--lines') ?? 20, ...withHosts, ...base };
    case 'lock':
      return p.action === 'status'
        ? { command: 'lock-status', ...withHosts, ...base }
        : { command: 'lock-release', force: Boolean(p.force), ...withHosts, ...base };
    case 'logs': {
      const worker = positiveInt(p.worker, '--worker');
      return { command: 'logs', role: String(p.role) as RoleName, host: String(p.host), lines: positiveInt(p.lines, '--lines') ?? 200, ...(worker ? { worker } : {}), ...base };
    }
  }
  if (first === 'config' && parsed.action === 'check') return { command: 'config-check', ...base };
  throw new UsageError(`unknown command: ${parsed._.join(' ')}`, { next: 'voxops --help' });
}
