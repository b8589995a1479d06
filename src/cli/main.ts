import { findInventoryFile, loadInventory, type Inventory } from '../config/inventory.js';
import type { OperationContext } from '../deploy/context.js';
import type { Reporter } from '../deploy/events.js';
import { deployFleet } from '../deploy/fleet.js';
import { ExitCode, HealthGateError, PreflightError, ConfigError, UsageError, VoxopsError } from '../errors.js';
import { SshExecutor } from '../exec/ssh.js';
import { parseArgs, type GlobalOptions, type ParsedCommand } from './args.js';
import { chooseReporter } from './reporters.js';

/** The composition root: argv -> inventory, executor, reporter -> one operation -> exit code. */
export async function main(args: readonly string[], env = process.env): Promise<number> {
  let verbose = args.includes('--verbose') || args.includes('-v');
  let reporter: Reporter | undefined;
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    interrupts += 1;
    controller.abort(signal);
    process.stderr.write(
      interrupts === 1
        ? `\nvoxops: ${signal}: stopping at the next safe point (no worker is left drained; locks are released)\n`
        : `\nvoxops: ${signal} again: still finishing the current worker and releasing locks\n`,
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const parsed = await parseArgs(args);
    if (parsed.command === 'help') {
      process.stdout.write(`${parsed.output}\n`);
      return ExitCode.ok;
    }
    verbose = parsed.verbose;
    const inventory = loadInventory(findInventoryFile(parsed.inventory, env), parsed.env);
    if (parsed.command === 'config-check') return configCheck(inventory, parsed.json);
    reporter = chooseReporter(parsed, env);
    const ctx = context(inventory, parsed, reporter, controller.signal, env);
    await run(ctx, parsed);
    return ExitCode.ok;
  } catch (error) {
    await reporter?.close();
    reporter = undefined;
    return report(error, verbose);
  } finally {
    await reporter?.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function context(inventory: Inventory, options: GlobalOptions, reporter: Reporter, signal: AbortSignal, env: NodeJS.ProcessEnv): OperationContext {
  const executor = new SshExecutor({
    ssh: inventory.ssh,
    acceptNewHostKeys: options.acceptNewHostKeys,
    ...(options.verbose ? { onCommand: (host, step, command) => reporter.emit({ type: 'command', host: host.name, step: step.name, command }) } : {}),
  });
  return { inventory, executor, reporter, signal, dryRun: options.dryRun, env };
}

async function run(ctx: OperationContext, parsed: Exclude<ParsedCommand, { command: 'config-check' }>): Promise<void> {
  switch (parsed.command) {
    case 'deploy': {
      if (parsed.role !== 'fleet') {
        throw new UsageError(`deploy ${parsed.role} is not implemented yet; only the fleet role deploys in this version`, {
          next: `voxops deploy fleet --tag ${parsed.tag}`,
        });
      }
      await deployFleet(ctx, {
        action: 'deploy',
        tag: parsed.tag,
        parallel: parsed.parallel ?? 1,
        batch: parsed.batch,
        allowUnhealthy: parsed.allowUnhealthy,
        ...(parsed.hosts ? { hosts: parsed.hosts } : {}),
        ...(parsed.drainTimeout !== undefined ? { drainTimeoutSeconds: parsed.drainTimeout } : {}),
        ...(parsed.onDrainTimeout ? { onDrainTimeout: parsed.onDrainTimeout } : {}),
      });
      return;
    }
  }
}

function configCheck(inventory: Inventory, json: boolean): number {
  if (json) {
    process.stdout.write(`${JSON.stringify({ ok: true, file: inventory.file, environment: inventory.environment, hosts: inventory.hosts })}\n`);
    return ExitCode.ok;
  }
  process.stdout.write(`${inventory.file}: ok (environment ${inventory.environment}; environments: ${inventory.environments.join(', ')})\n`);
  for (const host of inventory.hosts) {
    process.stdout.write(`  ${host.role.padEnd(8)} ${host.name} ${host.address}:${host.port}${host.workers ? ` (${host.workers} workers)` : ''}\n`);
  }
  return ExitCode.ok;
}

/** The only place that prints an error: one line of what happened and what to run next, details under it. */
function report(error: unknown, verbose: boolean): number {
  if (!(error instanceof VoxopsError)) {
    process.stderr.write(`voxops: internal error: ${(error as Error)?.message ?? String(error)}. Next: re-run with --verbose and report it\n`);
    if (verbose && error instanceof Error) process.stderr.write(`${error.stack}\n`);
    return ExitCode.internal;
  }
  process.stderr.write(`voxops: ${error.message}${error.next ? `. Next: ${error.next}` : ''}\n`);
  const details = error instanceof ConfigError || error instanceof PreflightError ? error.problems : [];
  for (const problem of details) process.stderr.write(`  - ${problem.replace(/\n/g, '\n  - ')}\n`);
  if (error instanceof HealthGateError && error.details.journal) {
    process.stderr.write(`  journal of ${error.details.host} worker ${error.details.worker}:\n${error.details.journal.replace(/^/gm, '    ')}\n`);
  }
  if (verbose) process.stderr.write(`${error.stack}\n`);
  return error.exitCode;
}
