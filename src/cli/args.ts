import yargs, { type Argv as Yargs } from 'yargs';
import type { RoleName } from '../config/schema.js';
import { UsageError } from '../errors.js';
import type { ReleaseSource } from '../release/source.js';
import type { DrainPolicy } from '../roles/contract.js';
import { ROLE_NAMES, rolesThatCan } from './role-actions.js';

/**
 * argv -> options, and nothing else: no I/O, so tests (and the runbook checker) can parse every
 * documented command line without touching a host. It imports no role, engine or SSH code: main
 * loads what the parsed command needs, after parsing, so `voxops --help` starts fast.
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
  lockWaitSeconds?: number;
  resume?: boolean;
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

/** What yargs printed instead of running a command: help, or the version. */
export interface PrintedOutput {
  command: 'help';
  output: string;
}

const deployableRoles = [...rolesThatCan('deploy'), 'all'];
const rollbackRoles = [...rolesThatCan('rollback'), 'all'];
const restartableRoles = [...rolesThatCan('restart'), 'all'];
const changeCommands = ['deploy', 'rollback', 'restart', 'scale', 'ingress'];

/**
 * The options that work for some commands only, and where each does something. A command that
 * does not offer one refuses it rather than ignore it: `status --dry-run` must not look like a
 * safe rehearsal of something. (--json is missing from logs: a journal is text.)
 */
const OFFERS = {
  json: [...changeCommands, 'status', 'health', 'history', 'lock', 'config check'],
  'dry-run': changeCommands,
  'accept-new-host-keys': [...changeCommands, 'status', 'health', 'history', 'lock', 'logs'],
} as const;
type Offer = keyof typeof OFFERS;

const ERROR_AS_JSON = '; an error is one JSON object on stderr';
const reportOption = {
  type: 'string',
  describe: 'write voxops-junit.xml, voxops-report.json, voxops-summary.md and voxops-roll.svg into this directory',
} as const;
const hostsOption = { alias: 'host', type: 'string', array: true, describe: 'only these hosts (comma-separated or repeated)' } as const;

function offer(y: Yargs, name: Offer, describe?: string): Yargs {
  switch (name) {
    case 'json':
      return y.option('json', { type: 'boolean', default: false, describe: `${describe}${ERROR_AS_JSON}` });
    case 'dry-run':
      return y.option('dry-run', {
        type: 'boolean',
        default: false,
        describe: 'connect and check, print every command that would change a host, change nothing',
      });
    case 'accept-new-host-keys':
      return y.option('accept-new-host-keys', {
        type: 'boolean',
        default: false,
        describe: 'trust and record keys of hosts not yet in known_hosts (changed keys are always refused)',
      });
  }
}

/** A command that changes hosts: JSON events, a dry run, and it connects. */
function changing(y: Yargs): Yargs {
  return offer(offer(offer(y, 'json', 'one JSON event per line on stdout, the summary last'), 'dry-run'), 'accept-new-host-keys');
}

/** A read-only command: it connects, and may print what it found as JSON. */
function reading(y: Yargs, json: string): Yargs {
  return offer(offer(y, 'json', json), 'accept-new-host-keys');
}

function changeOptions(y: Yargs, { source }: { source: boolean }): Yargs {
  const common = changing(y)
    .option('hosts', { type: 'string', array: true, describe: 'only these hosts (comma-separated or repeated)' })
    .option('parallel', {
      type: 'string',
      describe: 'hosts at once: a number (default 1), or auto (every host, each keeping its own free workers)',
    })
    .option('batch', {
      type: 'number',
      describe: 'fleet: workers drained or restarting at once (one-at-a-time: default 1; call-aware: default a quarter of the host)',
    })
    .option('schedule', {
      choices: ['call-aware', 'one-at-a-time'] as const,
      describe:
        'fleet: restart each worker the moment it is idle (call-aware, the default), or one after another paced by nginx fail_timeout',
    })
    .option('min-free', {
      type: 'string',
      describe:
        'fleet, call-aware: idle workers each host keeps in rotation: slots or a percentage (25%); default from live load, at least 1',
    })
    .option('max-call-age', {
      type: 'number',
      describe:
        'fleet, call-aware: a call older than this many seconds is hung; --on-drain-timeout decides (default: inventory drain.maxCallAgeSeconds)',
    })
    .option('drain-timeout', {
      type: 'number',
      describe: "seconds to wait for a worker's call to end (default: inventory drain.timeoutSeconds)",
    })
    .option('on-drain-timeout', {
      choices: ['wait', 'skip', 'force'] as const,
      describe: 'when a call outlasts the drain timeout: keep waiting, retry the worker last, or restart it anyway (drops the call)',
    })
    .option('allow-unhealthy', { type: 'boolean', default: false, describe: 'go ahead even if some workers fail preflight health' })
    .option('lock-wait', {
      type: 'number',
      describe: 'seconds to wait for a lock another run holds, instead of refusing at once (CI races)',
    })
    .option('resume', {
      type: 'boolean',
      default: false,
      describe: 'fleet: continue an interrupted or failed deploy: skip the release already installed and the workers already on the tag',
    })
    .option('report', reportOption);
  // a restart places no release, so it has no source to choose
  if (!source) return common;
  return common.option('source', {
    choices: ['git', 'rsync', 'auto'] as const,
    default: 'auto',
    describe: 'release tree: git fetch on the host, rsync from the local clone, or auto (git, then rsync if the host cannot fetch)',
  });
}

/** What a command line says before `--`: after it, nothing is a flag. */
export function beforeDoubleDash(args: readonly string[]): readonly string[] {
  return args.includes('--') ? args.slice(0, args.indexOf('--')) : args;
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
  const lockWait = positiveInt(p['lock-wait'], '--lock-wait');
  const minFree = p['min-free'] === undefined ? undefined : String(p['min-free']);
  if (minFree !== undefined && !/^(\d{1,3}%|\d+)$/.test(minFree))
    throw new UsageError(`--min-free ${minFree}: a number of slots or a percentage such as 25%`, { next: 'voxops --help' });
  return {
    ...(batch !== undefined ? { batch } : {}),
    ...(p.schedule ? { schedule: p.schedule as 'call-aware' | 'one-at-a-time' } : {}),
    ...(minFree !== undefined ? { minFree } : {}),
    ...(maxCallAge !== undefined ? { maxCallAgeSeconds: maxCallAge } : {}),
    ...(lockWait !== undefined ? { lockWaitSeconds: lockWait } : {}),
    ...(p.resume ? { resume: true } : {}),
    allowUnhealthy: Boolean(p['allow-unhealthy']),
    source: (p.source as ReleaseSource | undefined) ?? 'auto',
    ...(hosts ? { hosts } : {}),
    ...(p.report ? { report: String(p.report) } : {}),
    ...(parallel !== undefined ? { parallel } : {}),
    ...(drainTimeout !== undefined ? { drainTimeoutSeconds: drainTimeout } : {}),
    ...(p['on-drain-timeout'] ? { onDrainTimeout: p['on-drain-timeout'] as DrainPolicy } : {}),
  };
}

function hostList(value: string[] | string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const list = (Array.isArray(value) ? value : [value])
    .flatMap((v) => String(v).split(','))
    .map((v) => v.trim())
    .filter(Boolean);
  return list.length > 0 ? list : undefined;
}

// Under the top-level help, as text: yargs' examples wrap long command lines mid-flag, and its
// layout engine measures every character (string-width): through it, these lines cost about 8 ms
// of the 150 that `voxops --help` takes.
const EXAMPLES = `Examples:
  voxops deploy fleet --tag v1.5.0 --dry-run   # preflight, print the plan, change nothing
  voxops deploy fleet --tag v1.5.0             # each worker the moment its call ends, gated
  voxops deploy fleet --tag v1.5.0 --resume    # continue a deploy that stopped part-way
  voxops rollback fleet --to v1.4.2            # the same drain, gates, lock, history
  voxops status fleet --json                   # tags, last-known-good, locks, workers
  voxops logs fleet --host fleet1 --worker 3   # why a worker failed its gate
  voxops lock status                           # who holds the lock (after exit 3)`;

const EXIT_CODES = `Exit codes:
  0    done
  1    internal error (a bug): re-run with --verbose, report it
  2    bad arguments or inventory, no SSH credentials, lock release refused
  3    a host is locked by another run: voxops lock status
  4    a health gate failed; the host is back on the previous release
  5    a remote command failed (host, step, stderr shown)
  6    a host is unreachable, or its host key is unknown or changed
  7    preflight refused (tag, disk, health, nginx): nothing was changed
  8    a gate AND its rollback failed: the host needs a human
  9    a drain, or the dialler's wait for an idle moment, timed out
  10   voxops health found problems
  11   nginx -t or haproxy -c rejected a rendered config; it was not loaded
  130  interrupted (Ctrl-C; 143: SIGTERM): every worker serving, locks released`;

function parser(args: readonly string[], version: string | undefined): Yargs {
  const y = yargs()
    .scriptName('voxops')
    .usage('$0 <command> [options]')
    .option('inventory', { alias: 'i', type: 'string', describe: 'inventory file (else $VOXOPS_INVENTORY, else ./voxops.yaml)' })
    .option('env', { alias: 'e', type: 'string', describe: 'environment in the inventory (else defaultEnvironment)' })
    .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'show every remote command and stack traces' });
  // known here, not global: typed before the command name they still parse as flags, and the
  // command then offers them or refuses them
  for (const name of Object.keys(OFFERS)) y.option(name, { type: 'boolean', hidden: true, global: false });
  // yargs renders the chosen command's help on every parse, to keep it for a failing handler (we
  // have none); unwrapped it costs half as much, and it is only ever shown with --help
  const flags = beforeDoubleDash(args);
  if (!flags.includes('--help') && !flags.includes('-h')) y.wrap(null);
  const withCommands = y
    .command('deploy <role>', 'deploy a release tag (fleet: each worker when its call ends)', (y) =>
      changeOptions(y, { source: true })
        .usage(
          '$0 deploy <role> --tag <tag> [options]\n\nDeploy a release tag (fleet: each worker restarted the moment it is idle, then gated; --schedule one-at-a-time for the old pacing). deploy ingress takes no tag.',
        )
        .positional('role', { choices: deployableRoles, describe: 'which role to deploy' })
        .option('tag', { alias: 't', type: 'string', describe: 'release tag, e.g. v1.5.0 [required, except for deploy ingress]' })
        .option('rolling', {
          type: 'boolean',
          default: true,
          describe: 'fleet: accepted for old scripts, changes nothing (the schedule is --schedule)',
        })
        .example('$0 deploy fleet --tag v1.5.0', 'each worker the moment its call ends, never under a call, gated')
        .example('$0 deploy all --tag v1.5.0', 'every role in order; stops at the first failure'),
    )
    .command('rollback [roles..]', 'back to a tag, or each host to its last-known-good', (y) =>
      changeOptions(y, { source: true })
        .usage(
          '$0 rollback [roles..] [--to <tag>] [options]\n\nRoll roles back to a tag, or each host to its last-known-good, with the same drain, gates, lock and history as a deploy. No role, or all: every role, in reverse deploy order.',
        )
        .positional('roles', {
          choices: rollbackRoles,
          array: true,
          describe: 'roles to roll back (default, or all: every role, in reverse deploy order)',
        })
        .option('to', { type: 'string', describe: 'release tag to go back to (default: last-known-good from history)' })
        .option('force', { type: 'boolean', default: false, describe: 'allow a "rollback" to a tag newer than the deployed one' })
        .example('$0 rollback fleet --to v1.4.2', 'the fleet back to v1.4.2, drained and gated')
        .example('$0 rollback', 'every role, every host back to its last-known-good'),
    )
    .command('restart <role>', 'restart without a deploy, drained and gated', (y) =>
      changeOptions(y, { source: false })
        .usage(
          '$0 restart <role> [options]\n\nRestart without a deploy: the fleet rolling, drained and gated; api and dialler gated. all: api, fleet, dialler.',
        )
        .positional('role', { choices: restartableRoles })
        .option('host', { type: 'string', array: true, describe: 'only this host' })
        .option('worker', { type: 'number', describe: 'only this worker (index)' })
        .example('$0 restart fleet --host fleet1', 'its workers one at a time, drained and gated'),
    )
    .command('status [roles..]', 'tags, last-known-good, locks, every worker', (y) =>
      reading(y, 'the status as one JSON document on stdout (the shape in the README)')
        .positional('roles', { choices: ROLE_NAMES, array: true })
        .option('hosts', hostsOption),
    )
    .command('health [roles..]', 'check everything: exit 10, one line per problem', (y) =>
      reading(y, '{"ok", "problems"} as JSON on stdout')
        .positional('roles', { choices: ROLE_NAMES, array: true })
        .option('hosts', hostsOption),
    )
    .command('history', 'deploy history recorded on the hosts', (y) =>
      reading(y, 'the history as JSON on stdout')
        .option('hosts', hostsOption)
        .option('lines', { alias: 'n', type: 'number', default: 20, describe: 'entries per host' }),
    )
    .command('lock', 'lock status | lock release [--force]', (y) =>
      y
        .command('status', 'who holds the lock on each host', (y) => reading(y, 'the locks as JSON on stdout').option('hosts', hostsOption))
        .command('release', "release locks nobody can be using: expired, or yours with the run gone (--force: anybody's)", (y) =>
          reading(y, 'what was released as JSON on stdout')
            .option('hosts', hostsOption)
            .option('force', { type: 'boolean', default: false, describe: "release somebody else's lock" }),
        )
        .demandCommand(1, 'name one: lock status, or lock release'),
    )
    .command('logs <role>', 'the journal of one unit, through SSH', (y) =>
      offer(y, 'accept-new-host-keys')
        .usage('$0 logs <role> --host <host> [--worker <n>] [options]\n\nThe journal of one unit, through SSH.')
        .positional('role', { choices: ROLE_NAMES })
        .option('host', { type: 'string', demandOption: true })
        .option('worker', { type: 'number', describe: 'fleet: worker index' })
        .option('lines', { alias: 'n', type: 'number', default: 200 }),
    )
    .command('scale <role>', "a fleet host's worker count, with no call dropped", (y) =>
      changing(y)
        .usage(
          '$0 scale fleet --host <host> --workers <n> [options]\n\nChange the number of workers on one fleet host (nginx upstream, units, env file), with no call dropped.',
        )
        .positional('role', { choices: ['fleet'] as const })
        .option('host', { type: 'string', demandOption: true, describe: 'the fleet host' })
        .option('workers', { type: 'number', demandOption: true, describe: 'the new worker count' })
        .option('drain-timeout', { type: 'number', describe: "seconds to wait for a removed worker's call to end" })
        .option('report', reportOption),
    )
    .command('ingress', 'ingress add-fleet URL | remove-fleet URL', (y) =>
      y
        .command('add-fleet <url>', 'add a fleet host to the ingress, once it answers from the ingress host', (y) =>
          changing(y)
            .positional('url', { type: 'string', describe: "the fleet host's URL, e.g. http://10.0.0.13:80" })
            .option('report', reportOption),
        )
        .command('remove-fleet <url>', 'drain a fleet host out of the ingress, then remove it', (y) =>
          changing(y)
            .positional('url', { type: 'string', describe: "the fleet host's URL, e.g. http://10.0.0.13:80" })
            .option('drain-timeout', { type: 'number', describe: 'seconds to wait for its calls to end' })
            .option('report', reportOption),
        )
        .demandCommand(1, 'name one: ingress add-fleet URL, or ingress remove-fleet URL'),
    )
    .command('config', 'config check: validate the inventory', (y) =>
      y
        .command('check', 'validate the inventory and print what it describes', (y) => offer(y, 'json', 'the hosts as JSON on stdout'))
        .demandCommand(1, 'name one: config check'),
    )
    .demandCommand(1, `name a command: ${COMMANDS.join(', ')}`)
    .recommendCommands()
    .strict()
    .help()
    .alias('help', 'h')
    .exitProcess(false)
    .fail((message, error) => {
      throw error instanceof UsageError ? error : usageError(message ?? error?.message ?? 'bad arguments', args);
    });
  return version === undefined ? withCommands.version(false) : withCommands.version('version', 'print the version', version);
}

const COMMANDS = ['deploy', 'rollback', 'restart', 'scale', 'ingress', 'status', 'health', 'history', 'lock', 'logs', 'config check'];
const WITH_SUBCOMMANDS = ['lock', 'ingress', 'config'];

/** The words of a command line that name commands: what is left without options and their values. */
function commandWords(args: readonly string[]): string[] {
  const words: string[] = [];
  const flags = beforeDoubleDash(args);
  for (let i = 0; i < flags.length; i += 1) {
    const arg = flags[i]!;
    // the only options known before a command that take a value
    if (['-i', '--inventory', '-e', '--env'].includes(arg)) i += 1;
    else if (!arg.startsWith('-')) words.push(arg);
  }
  return words;
}

/** yargs' message, said for a person: which command was mistyped, which option this command lacks. */
function usageError(message: string, args: readonly string[]): UsageError {
  const words = commandWords(args);
  const [first = '', second = ''] = words;
  const known = COMMANDS.some((c) => c.split(' ')[0] === first);
  const suggested = /^Did you mean (\S+)\?$/.exec(message)?.[1];
  if (suggested) {
    const typed = known ? `${first} ${second}` : first;
    const meant = known ? `${first} ${suggested}` : suggested;
    return new UsageError(`unknown command ${typed}: did you mean ${meant}?`, { next: `voxops ${meant} --help` });
  }
  const unknown = /^Unknown arguments?: (.*)$/.exec(message)?.[1];
  if (!unknown) return new UsageError(message, { next: `voxops ${known ? `${first} ` : ''}--help` });
  // yargs names a dashed option twice (dry-run, dryRun)
  const names = unknown.split(', ').filter((n) => !/[A-Z]/.test(n));
  if (!known) return new UsageError(`unknown command ${first || names.join(' ')}`, { next: 'voxops --help' });
  const nested = WITH_SUBCOMMANDS.includes(first);
  if (nested && names.includes(second)) return new UsageError(`unknown command ${first} ${second}`, { next: `voxops ${first} --help` });
  const command = nested && second ? `${first} ${second}` : first;
  const shown = names.map((n) => (words.includes(n) ? n : `--${n}`));
  const elsewhere = names.filter((n): n is Offer => n in OFFERS).map((n) => `--${n} is for ${listed(OFFERS[n])}`);
  return new UsageError(`Unknown argument for ${command}: ${shown.join(', ')}${elsewhere.length > 0 ? ` (${elsewhere.join('; ')})` : ''}`, {
    next: `voxops ${command} --help`,
  });
}

function listed(names: readonly string[]): string {
  return names.length < 2 ? names.join('') : `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}

/**
 * `--to ""` or `--inventory $UNSET` must not quietly mean "no such flag": each falls back to a
 * default (last-known-good, ./voxops.yaml, every host) that nobody asked for.
 */
function refuseEmptyValues(p: Record<string, unknown>, command: string, args: readonly string[]): void {
  const empty = Object.entries(p)
    .filter(([key]) => key !== '_' && key !== '$0' && key.length > 1 && !/[A-Z]/.test(key))
    .filter(([, value]) => (Array.isArray(value) ? value : [value]).some((v) => typeof v === 'string' && v.trim() === ''))
    .map(([key]) => key);
  if (empty.length === 0) return;
  // an option and its alias (--host, --hosts) are both empty: name the one typed
  const key = empty.find((k) => args.some((a) => a === `--${k}` || a.startsWith(`--${k}=`))) ?? empty[0]!;
  if (key === 'to')
    throw new UsageError('--to is empty: name the tag to go back to, or leave --to out to roll each host back to its last-known-good', {
      next: 'voxops rollback <role> --to <tag>',
    });
  throw new UsageError(`${key === 'url' ? 'the URL' : `--${key}`} is empty`, { next: `voxops ${command} --help` });
}

export async function parseArgs(args: readonly string[], options: { version?: string } = {}): Promise<ParsedCommand | PrintedOutput> {
  let output = '';
  const parsed = await parser(args, options.version).parseAsync([...args], {}, (_err, _argv, out) => {
    output = out;
  });
  if (output)
    return { command: 'help', output: parsed.help && parsed._.length === 0 ? `${output}\n\n${EXAMPLES}\n\n${EXIT_CODES}` : output };
  const [first, second] = parsed._.map(String);
  const p = parsed as typeof parsed & Record<string, unknown>;
  refuseEmptyValues(p, [first, second].filter(Boolean).join(' '), args);
  const base: GlobalOptions = {
    ...(p.inventory !== undefined ? { inventory: String(p.inventory) } : {}),
    ...(p.env !== undefined ? { env: String(p.env) } : {}),
    json: Boolean(p.json),
    verbose: Boolean(p.verbose),
    dryRun: Boolean(p['dry-run']),
    acceptNewHostKeys: Boolean(p['accept-new-host-keys']),
  };
  const roles = ((p.roles as string[] | undefined) ?? []).map(String).filter((r) => r !== 'all') as RoleName[];
  const hosts = hostList((p.hosts ?? p.host) as string[] | undefined);
  const withHosts = hosts ? { hosts } : {};
  const report = p.report !== undefined ? { report: String(p.report) } : {};
  switch (first) {
    case 'deploy': {
      const role = String(p.role);
      if (p.tag === undefined && role !== 'ingress')
        throw new UsageError(`deploy ${role} needs --tag`, { next: `voxops deploy ${role} --tag <tag>` });
      return {
        command: 'deploy',
        role: role as RoleName | 'all',
        ...(p.tag !== undefined ? { tag: String(p.tag) } : {}),
        ...parseChangeFlags(p),
        ...base,
      };
    }
    case 'scale': {
      const workers = positiveInt(p.workers, '--workers')!;
      if (workers > 256) throw new UsageError(`--workers ${workers}: must be a whole number from 1 to 256`, { next: 'voxops --help' });
      const drainTimeoutSeconds = positiveInt(p['drain-timeout'], '--drain-timeout');
      return {
        command: 'scale',
        role: 'fleet',
        host: String(p.host),
        workers,
        ...(drainTimeoutSeconds ? { drainTimeoutSeconds } : {}),
        ...report,
        ...base,
      };
    }
    case 'ingress': {
      const drainTimeoutSeconds = positiveInt(p['drain-timeout'], '--drain-timeout');
      const command = second === 'add-fleet' ? 'ingress-add-fleet' : 'ingress-remove-fleet';
      return { command, url: String(p.url), ...(drainTimeoutSeconds ? { drainTimeoutSeconds } : {}), ...report, ...base };
    }
    case 'rollback':
      return {
        command: 'rollback',
        roles,
        force: Boolean(p.force),
        ...(p.to !== undefined ? { to: String(p.to) } : {}),
        ...parseChangeFlags(p),
        ...base,
      };
    case 'restart': {
      const worker = positiveInt(p.worker, '--worker');
      return {
        command: 'restart',
        role: String(p.role) as RoleName | 'all',
        ...(worker ? { worker } : {}),
        ...parseChangeFlags({ ...p, hosts: p.hosts ?? p.host }),
        ...base,
      };
    }
    case 'status':
    case 'health':
      return { command: first, roles, ...withHosts, ...base };
    case 'history':
      return { command: 'history', lines: positiveInt(p.lines, '--lines') ?? 20, ...withHosts, ...base };
    case 'lock':
      return second === 'status'
        ? { command: 'lock-status', ...withHosts, ...base }
        : { command: 'lock-release', force: Boolean(p.force), ...withHosts, ...base };
    case 'logs': {
      const worker = positiveInt(p.worker, '--worker');
      return {
        command: 'logs',
        role: String(p.role) as RoleName,
        host: String(p.host),
        lines: positiveInt(p.lines, '--lines') ?? 200,
        ...(worker ? { worker } : {}),
        ...base,
      };
    }
    case 'config':
      return { command: 'config-check', ...base };
  }
  throw new UsageError(`unknown command: ${parsed._.join(' ')}`, { next: 'voxops --help' });
}
