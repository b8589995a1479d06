import { hostname } from 'node:os';
import { findInventoryFile, loadInventory, type Inventory } from '../config/inventory.js';
import type { RoleName } from '../config/schema.js';
import { whoAmI, type OperationContext } from '../deploy/context.js';
import type { OperationSummary, Reporter } from '../deploy/events.js';
import { writeReports } from '../report/report.js';
import { runFleetOperation, type FleetDeployOptions } from '../deploy/fleet.js';
import { runIngressChange, runIngressDeploy } from '../deploy/ingress.js';
import { lockStatus, releaseLocks } from '../deploy/locks.js';
import { runScale } from '../deploy/scale.js';
import { collectHistory, collectLogs } from '../deploy/read.js';
import { collectStatus, selectHosts } from '../deploy/status.js';
import { closeAll, connectAll } from '../deploy/sessions.js';
import { ConfigError, ExitCode, HealthGateError, ProblemListError, UnhealthyError, UsageError, VoxopsError, describeHolder } from '../errors.js';
import { SshExecutor } from '../exec/ssh.js';
import { parseArgs, type GlobalOptions, type ParsedCommand, type RollOptions } from './args.js';
import { formatHistory, formatStatus } from './format.js';
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
    return await run(ctx, parsed);
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

function rollOptions(options: RollOptions): Omit<FleetDeployOptions, 'action'> {
  return {
    parallel: options.parallel ?? 1,
    batch: options.batch,
    allowUnhealthy: options.allowUnhealthy,
    ...(options.hosts ? { hosts: options.hosts } : {}),
    ...(options.drainTimeout !== undefined ? { drainTimeoutSeconds: options.drainTimeout } : {}),
    ...(options.onDrainTimeout ? { onDrainTimeout: options.onDrainTimeout } : {}),
  };
}

function onlyFleet(roles: readonly string[], verb: string, hint: string): void {
  const others = roles.filter((r) => r !== 'fleet');
  if (others.length > 0) {
    throw new UsageError(`${verb} ${others.join(', ')} is not implemented yet; only the fleet role is in this version`, { next: hint });
  }
}

const write = (text: string) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);

/** Run a rolling operation; with --report, write the reports whatever the outcome. */
async function rolling(ctx: OperationContext, options: FleetDeployOptions, reportDir: string | undefined): Promise<number> {
  let summary: OperationSummary | undefined;
  const reporter = ctx.reporter;
  const capturing: Reporter = {
    emit: (event) => {
      if (event.type === 'summary') summary = event.summary;
      reporter.emit(event);
    },
    close: () => reporter.close(),
  };
  try {
    await runFleetOperation({ ...ctx, reporter: capturing }, options);
    return ExitCode.ok;
  } finally {
    if (reportDir && summary) {
      const files = writeReports(reportDir, summary);
      reporter.emit({ type: 'info', message: `reports: ${files.join(', ')}` });
    }
  }
}

async function run(ctx: OperationContext, parsed: Exclude<ParsedCommand, { command: 'config-check' }>): Promise<number> {
  switch (parsed.command) {
    case 'deploy':
      if (parsed.role === 'ingress') {
        await runIngressDeploy(ctx, parsed.hosts ? { hosts: parsed.hosts } : {});
        return ExitCode.ok;
      }
      onlyFleet([parsed.role], 'deploy', `voxops deploy fleet --tag ${parsed.tag}`);
      return rolling(ctx, { action: 'deploy', tag: parsed.tag!, ...rollOptions(parsed) }, parsed.report);
    case 'scale':
      await runScale(ctx, { host: parsed.host, workers: parsed.workers, ...(parsed.drainTimeout ? { drainTimeoutSeconds: parsed.drainTimeout } : {}) });
      return ExitCode.ok;
    case 'ingress-add-fleet':
    case 'ingress-remove-fleet':
      await runIngressChange(ctx, {
        action: parsed.command === 'ingress-add-fleet' ? 'add-fleet' : 'remove-fleet',
        url: parsed.url,
        ...(parsed.drainTimeout ? { drainTimeoutSeconds: parsed.drainTimeout } : {}),
      });
      return ExitCode.ok;
    case 'rollback': {
      // every role the inventory has, in reverse deploy order; only the fleet rolls in this version
      const roles = parsed.roles.length > 0 ? parsed.roles : ctx.inventory.hosts.some((h) => h.role === 'fleet') ? ['fleet'] : [];
      onlyFleet(roles, 'rollback', `voxops rollback fleet${parsed.to ? ` --to ${parsed.to}` : ''}`);
      return rolling(ctx, { action: 'rollback', force: parsed.force, ...(parsed.to ? { tag: parsed.to } : {}), ...rollOptions(parsed) }, parsed.report);
    }
    case 'restart':
      return rolling(ctx, { action: 'restart', ...(parsed.worker ? { workers: [parsed.worker] } : {}), ...rollOptions(parsed) }, parsed.report);
    case 'status': {
      const status = await collectStatus(ctx, parsed.roles as RoleName[], parsed.hosts);
      write(parsed.json ? JSON.stringify(status, null, 2) : formatStatus(status));
      return ExitCode.ok;
    }
    case 'health': {
      const status = await collectStatus(ctx, parsed.roles as RoleName[], parsed.hosts);
      const problems = status.hosts.flatMap((h) => h.problems);
      if (parsed.json) write(JSON.stringify({ ok: problems.length === 0, problems }));
      if (problems.length > 0) {
        throw new UnhealthyError(`${problems.length} problem(s) in ${ctx.inventory.environment}`, problems, {
          next: 'voxops status shows the details; a dead worker comes back with voxops restart fleet --host H --worker N',
        });
      }
      if (!parsed.json) {
        const workers = status.hosts.reduce((n, h) => n + h.workers.length, 0);
        write(`healthy: ${status.hosts.length} hosts, ${workers} workers`);
      }
      return ExitCode.ok;
    }
    case 'history': {
      const history = await collectHistory(ctx, parsed.hosts, parsed.lines);
      write(parsed.json ? JSON.stringify(history, null, 2) : formatHistory(history));
      return ExitCode.ok;
    }
    case 'lock-status':
    case 'lock-release': {
      const hosts = uniqueHosts(ctx, parsed.hosts);
      const sessions = await connectAll(ctx.executor, hosts);
      try {
        const list = hosts.map((h) => sessions.get(h.name)!);
        if (parsed.command === 'lock-status') {
          const locks = await lockStatus(list);
          if (parsed.json) write(JSON.stringify({ locks }, null, 2));
          else for (const l of locks) write(`${l.host}: ${l.holder ? `locked by ${describeHolder(l.holder)}${l.stale ? ' (STALE: its process is gone)' : ''}` : 'free'}`);
          return ExitCode.ok;
        }
        const results = await releaseLocks(list, { user: whoAmI(ctx.env), machine: hostname() }, parsed.force);
        if (parsed.json) write(JSON.stringify({ results }, null, 2));
        else for (const r of results) write(`${r.host}: ${r.released ? `released the lock of ${describeHolder(r.holder!)}` : r.reason}`);
        const refused = results.filter((r) => !r.released && r.holder);
        if (refused.length > 0) {
          throw new UsageError(`${refused.length} lock(s) belong to somebody else and were kept`, {
            next: 'make sure that deploy is dead (voxops lock status), then: voxops lock release --force',
          });
        }
        return ExitCode.ok;
      } finally {
        await closeAll(sessions);
      }
    }
    case 'logs':
      write(await collectLogs(ctx, parsed.role as RoleName, parsed.host, parsed.worker, parsed.lines));
      return ExitCode.ok;
  }
}

function uniqueHosts(ctx: OperationContext, only?: string[]) {
  const hosts = selectHosts(ctx.inventory, [], only);
  if (only) {
    const unknown = only.filter((name) => !hosts.some((h) => h.name === name));
    if (unknown.length > 0) throw new ConfigError(`no host named ${unknown.join(', ')} in environment ${ctx.inventory.environment}`);
  }
  return [...new Map(hosts.map((h) => [h.name, h])).values()];
}

function configCheck(inventory: Inventory, json: boolean): number {
  if (json) {
    write(JSON.stringify({ ok: true, file: inventory.file, environment: inventory.environment, hosts: inventory.hosts }));
    return ExitCode.ok;
  }
  write(`${inventory.file}: ok (environment ${inventory.environment}; environments: ${inventory.environments.join(', ')})`);
  for (const host of inventory.hosts) {
    write(`  ${host.role.padEnd(8)} ${host.name} ${host.address}:${host.port}${host.workers ? ` (${host.workers} workers)` : ''}`);
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
  const details = error instanceof ProblemListError ? error.problems : [];
  for (const problem of details) process.stderr.write(`  - ${problem.replace(/\n/g, '\n  - ')}\n`);
  if (error instanceof HealthGateError && error.details.journal) {
    process.stderr.write(`  journal of ${error.details.host} worker ${error.details.worker}:\n${error.details.journal.replace(/^/gm, '    ')}\n`);
  }
  if (verbose) process.stderr.write(`${error.stack}\n`);
  return error.exitCode;
}
