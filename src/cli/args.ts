import yargs, { type Argv as Yargs } from 'yargs';
import { UsageError } from '../errors.js';

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

export type ParsedCommand =
  | ({ command: 'deploy'; role: string; tag: string; hosts?: string[]; parallel?: number; batch: number; drainTimeout?: number; onDrainTimeout?: 'wait' | 'skip' | 'force'; allowUnhealthy: boolean } & GlobalOptions)
  | ({ command: 'config-check' } & GlobalOptions);

const deployableRoles = ['fleet', 'api', 'console', 'dialler', 'ingress', 'all'] as const;

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
      y
        .positional('role', { choices: deployableRoles, describe: 'which role to deploy' })
        .option('tag', { alias: 't', type: 'string', demandOption: true, describe: 'release tag, e.g. v1.5.0' })
        .option('rolling', { type: 'boolean', default: true, describe: 'fleet: one worker at a time (the only mode; accepted for clarity)' })
        .option('hosts', { type: 'string', array: true, describe: 'only these hosts (comma-separated or repeated)' })
        .option('parallel', { type: 'number', describe: 'hosts deployed at once (fleet default 1)' })
        .option('batch', { type: 'number', default: 1, describe: 'fleet: workers out of rotation at once (always leaves one serving)' })
        .option('drain-timeout', { type: 'number', describe: 'seconds to wait for a worker\'s call to end (default: inventory drain.timeoutSeconds)' })
        .option('on-drain-timeout', { choices: ['wait', 'skip', 'force'] as const, describe: 'when a call outlasts the drain timeout: keep waiting, retry the worker last, or restart it anyway (drops the call)' })
        .option('allow-unhealthy', { type: 'boolean', default: false, describe: 'deploy even if some workers fail preflight health (they are restarted without waiting)' }),
    )
    .command('config <action>', 'config check: validate the inventory and print what it describes', (y) =>
      y.positional('action', { choices: ['check'] as const }),
    )
    .demandCommand(1, 'name a command: deploy, config check')
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
  if (first === 'deploy') {
    const p = parsed as typeof parsed & Record<string, unknown>;
    const batch = Number(p.batch);
    if (!Number.isInteger(batch) || batch < 1) throw new UsageError('--batch must be a whole number of at least 1');
    const parallel = p.parallel === undefined ? undefined : Number(p.parallel);
    if (parallel !== undefined && (!Number.isInteger(parallel) || parallel < 1)) throw new UsageError('--parallel must be a whole number of at least 1');
    const hosts = hostList(p.hosts as string[] | undefined);
    return {
      command: 'deploy',
      role: String(p.role),
      tag: String(p.tag),
      batch,
      allowUnhealthy: Boolean(p['allow-unhealthy']),
      ...(hosts ? { hosts } : {}),
      ...(parallel !== undefined ? { parallel } : {}),
      ...(p['drain-timeout'] !== undefined ? { drainTimeout: Number(p['drain-timeout']) } : {}),
      ...(p['on-drain-timeout'] ? { onDrainTimeout: p['on-drain-timeout'] as 'wait' | 'skip' | 'force' } : {}),
      ...base,
    };
  }
  if (first === 'config' && parsed.action === 'check') return { command: 'config-check', ...base };
  throw new UsageError(`unknown command: ${parsed._.join(' ')}`, { next: 'voxops --help' });
}
