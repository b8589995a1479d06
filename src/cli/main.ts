import { hostname } from 'node:os';
import { findInventoryFile, loadInventory, type Inventory } from '../config/inventory.js';
import type { RoleName } from '../config/schema.js';
import { whoAmI, type OperationContext } from '../deploy/context.js';
import type { OperationSummary, Reporter } from '../deploy/events.js';
import { writeReports } from '../report/report.js';
import { runFleetOperation, type FleetDeployOptions } from '../deploy/fleet.js';
import { DEPLOY_ORDER, mergeSummaries, runInOrder } from '../deploy/all.js';
import { runIngressChange, runIngressDeploy } from '../deploy/ingress.js';
import { runRoleOperation } from '../deploy/role-operation.js';
import { NoLastKnownGoodError } from '../deploy/operation.js';
import { recipeFor } from '../recipes/index.js';
import { lockStatus, releaseLocks } from '../deploy/locks.js';
import { runScale } from '../deploy/scale.js';
import { collectHistory, collectLogs } from '../deploy/read.js';
import { collectStatus, selectHosts } from '../deploy/status.js';
import { closeAll, connectAll } from '../deploy/sessions.js';
import { ConfigError, ExitCode, HealthGateError, ProblemListError, UnhealthyError, UsageError, VoxopsError, describeHolder } from '../errors.js';
import { SshExecutor } from '../exec/ssh.js';
import type { CommandListener, Executor } from '../exec/executor.js';
import { systemClock, type Clock } from '../clock.js';
import { parseArgs, type GlobalOptions, type ParsedCommand, type RollOptions } from './args.js';
import { formatHistory, formatStatus } from './format.js';
import { chooseReporter } from './reporters.js';

/** What main wires from outside: the real SSH executor and process streams, or a test's scripted ones. */
export interface Wiring {
  executor(inventory: Inventory, options: { acceptNewHostKeys: boolean; onCommand?: CommandListener }): Executor;
  stdout(text: string): void;
  stderr(text: string): void;
  clock: Clock;
}

const processWiring: Wiring = {
  executor: (inventory, options) => new SshExecutor({ ssh: inventory.ssh, ...options }),
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  clock: systemClock,
};

let io: Wiring = processWiring;

/** The composition root: argv -> inventory, executor, reporter -> one operation -> exit code. */
export async function main(args: readonly string[], env = process.env, wiring: Partial<Wiring> = {}): Promise<number> {
  io = { ...processWiring, ...wiring };
  let verbose = args.includes('--verbose') || args.includes('-v');
  let reporter: Reporter | undefined;
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    interrupts += 1;
    controller.abort(signal);
    io.stderr(
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
      io.stdout(`${parsed.output}\n`);
      return ExitCode.ok;
    }
    verbose = parsed.verbose;
    const inventory = loadInventory(findInventoryFile(parsed.inventory, env), parsed.env);
    if (parsed.command === 'config-check') return configCheck(inventory, parsed.json);
    reporter = chooseReporter(parsed, env, io.stdout);
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
  const executor = io.executor(inventory, {
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
    source: options.source,
    ...(options.hosts ? { hosts: options.hosts } : {}),
    ...(options.drainTimeout !== undefined ? { drainTimeoutSeconds: options.drainTimeout } : {}),
    ...(options.onDrainTimeout ? { onDrainTimeout: options.onDrainTimeout } : {}),
  };
}

const write = (text: string) => io.stdout(text.endsWith('\n') ? text : `${text}\n`);

/** Run an operation; with --report, write the reports (of every role it ran) whatever the outcome. */
async function withReports(ctx: OperationContext, reportDir: string | undefined, work: (ctx: OperationContext) => Promise<unknown>): Promise<number> {
  const summaries: OperationSummary[] = [];
  const reporter = ctx.reporter;
  const startedAt = Date.now();
  const capturing: Reporter = {
    emit: (event) => {
      if (event.type === 'summary') summaries.push(event.summary);
      reporter.emit(event);
    },
    close: () => reporter.close(),
  };
  let exitCode = 0;
  try {
    await work({ ...ctx, reporter: capturing });
    return ExitCode.ok;
  } catch (error) {
    exitCode = error instanceof VoxopsError ? error.exitCode : ExitCode.internal;
    throw error;
  } finally {
    // a multi-role run ends with its own summary of every role
    const summary = summaries.find((s) => s.role === 'all') ?? (summaries.length === 1 ? summaries[0] : summaries.length > 1 ? mergeSummaries(summaries, startedAt, exitCode) : undefined);
    if (reportDir && summary) {
      const files = writeReports(reportDir, summary);
      reporter.emit({ type: 'info', message: `reports: ${files.join(', ')}` });
    }
  }
}

const hasHosts = (ctx: OperationContext, role: RoleName) => ctx.inventory.hosts.some((h) => h.role === role);
/** a multi-role run with --hosts touches only the roles those hosts have */
const namesHostOf = (ctx: OperationContext, role: RoleName, hosts?: string[]) =>
  !hosts || ctx.inventory.hosts.some((h) => h.role === role && hosts.includes(h.name));

/** deploy or roll back one role, whichever runner it needs */
function roleRunner(ctx: OperationContext, role: RoleName, action: 'deploy' | 'rollback', parsed: RollOptions & { tag?: string; force?: boolean }) {
  if (role === 'fleet') {
    return () => runFleetOperation(ctx, { action, ...(parsed.tag ? { tag: parsed.tag } : {}), ...(parsed.force ? { force: true } : {}), ...rollOptions(parsed) });
  }
  if (role === 'ingress') return () => runIngressDeploy(ctx, parsed.hosts ? { hosts: parsed.hosts } : {});
  const recipe = recipeFor(ctx.inventory, role, parsed.drainTimeout ? { idleTimeoutSeconds: parsed.drainTimeout } : {});
  return () =>
    runRoleOperation(ctx, recipe, {
      action,
      source: parsed.source,
      ...(parsed.tag ? { tag: parsed.tag } : {}),
      ...(parsed.hosts ? { hosts: parsed.hosts } : {}),
      ...(parsed.force ? { force: true } : {}),
    });
}

async function run(ctx: OperationContext, parsed: Exclude<ParsedCommand, { command: 'config-check' }>): Promise<number> {
  if ((parsed.command === 'deploy' || parsed.command === 'rollback' || parsed.command === 'restart') && parsed.hosts) knownHosts(ctx, parsed.hosts);
  switch (parsed.command) {
    case 'deploy': {
      if (parsed.role !== 'all') return withReports(ctx, parsed.report, (c) => roleRunner(c, parsed.role as RoleName, 'deploy', parsed)());
      // --hosts names hosts of several roles here: each role takes its own
      return withReports(ctx, parsed.report, (c) =>
        runInOrder(
          c,
          [...DEPLOY_ORDER.filter((role) => hasHosts(c, role) && namesHostOf(c, role, parsed.hosts)).map((role) => ({ role, run: (rc: OperationContext) => roleRunner(rc, role, 'deploy', onlyHostsOf(rc, role, parsed))() })),
            ...(hasHosts(c, 'ingress') && !parsed.hosts ? [{ role: 'ingress', run: (rc: OperationContext) => runIngressDeploy(rc, {}) }] : [])],
          `deploy all ${parsed.tag}`,
        ),
      );
    }
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
      // every role the inventory has, in reverse deploy order
      const roles = (parsed.roles.length > 0 ? (parsed.roles as RoleName[]) : [...DEPLOY_ORDER].reverse().filter((role) => hasHosts(ctx, role))).filter(
        (r) => r !== 'ingress' && namesHostOf(ctx, r, parsed.hosts),
      );
      if (roles.length === 0) {
        throw new UsageError(parsed.hosts ? `none of ${parsed.hosts.join(', ')} runs ${parsed.roles.join(', ') || 'a role that rolls back'}` : 'nothing to roll back: the ingress is config only (voxops deploy ingress)', {
          next: 'voxops status shows which host runs which role',
        });
      }
      const options = { ...parsed, ...(parsed.to ? { tag: parsed.to } : {}) };
      const bare = parsed.roles.length === 0 && !parsed.to;
      return withReports(ctx, parsed.report, (c) =>
        runInOrder(
          c,
          roles.map((role) => ({
            role,
            run: async (rc: OperationContext) => {
              try {
                await roleRunner(rc, role, 'rollback', roles.length > 1 ? onlyHostsOf(rc, role, options) : options)();
              } catch (error) {
                // a bare rollback covers the roles that have something to go back to
                if (!(error instanceof NoLastKnownGoodError && bare && roles.length > 1)) throw error;
                rc.reporter.emit({ type: 'warning', message: `${role}: skipped, no last-known-good in its hosts' history (voxops has not deployed it twice)` });
              }
            },
          })),
          `rollback ${roles.join(', ')}`,
        ),
      );
    }
    case 'restart': {
      const restartFleet = (c: OperationContext, options: RollOptions) => () =>
        runFleetOperation(c, { action: 'restart', ...(parsed.worker ? { workers: [parsed.worker] } : {}), ...rollOptions(options) });
      const restartService = (c: OperationContext, role: 'api' | 'dialler', options: RollOptions) => () =>
        runRoleOperation(c, recipeFor(c.inventory, role, options.drainTimeout ? { idleTimeoutSeconds: options.drainTimeout } : {}), {
          action: 'restart',
          source: options.source,
          ...(options.hosts ? { hosts: options.hosts } : {}),
        });
      if (parsed.worker && parsed.role !== 'fleet') throw new UsageError('--worker is for the fleet only', { next: `voxops restart fleet --host H --worker ${parsed.worker}` });
      if (parsed.role === 'fleet') return withReports(ctx, parsed.report, (c) => restartFleet(c, parsed)());
      if (parsed.role === 'api' || parsed.role === 'dialler') return withReports(ctx, parsed.report, (c) => restartService(c, parsed.role as 'api' | 'dialler', parsed)());
      const order = (['api', 'fleet', 'dialler'] as const).filter((role) => hasHosts(ctx, role) && namesHostOf(ctx, role, parsed.hosts));
      return withReports(ctx, parsed.report, (c) =>
        runInOrder(
          c,
          order.map((role) => ({ role, run: (rc: OperationContext) => (role === 'fleet' ? restartFleet(rc, onlyHostsOf(rc, role, parsed)) : restartService(rc, role, onlyHostsOf(rc, role, parsed)))() })),
          'restart all',
        ),
      );
    }
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

/** With several roles at once, --hosts applies to each role's own hosts only; every name must exist. */
function onlyHostsOf<T extends { hosts?: string[] }>(ctx: OperationContext, role: RoleName, options: T): T {
  if (!options.hosts) return options;
  return { ...options, hosts: options.hosts.filter((name) => ctx.inventory.hosts.some((h) => h.role === role && h.name === name)) };
}

/** A misspelt --hosts name is an error, never a silently smaller run. */
function knownHosts(ctx: OperationContext, names: readonly string[]): void {
  const unknown = names.filter((name) => !ctx.inventory.hosts.some((h) => h.name === name));
  if (unknown.length > 0) throw new ConfigError(`no host named ${unknown.join(', ')} in environment ${ctx.inventory.environment}`, [], { next: 'voxops config check lists the hosts' });
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
    io.stderr(`voxops: internal error: ${(error as Error)?.message ?? String(error)}. Next: re-run with --verbose and report it\n`);
    if (verbose && error instanceof Error) io.stderr(`${error.stack}\n`);
    return ExitCode.internal;
  }
  io.stderr(`voxops: ${error.message}${error.next ? `. Next: ${error.next}` : ''}\n`);
  const details = error instanceof ProblemListError ? error.problems : [];
  for (const problem of details) io.stderr(`  - ${problem.replace(/\n/g, '\n  - ')}\n`);
  if (error instanceof HealthGateError && error.details.journal) {
    const whose = error.details.worker !== undefined ? `${error.details.host} worker ${error.details.worker}` : error.details.host;
    io.stderr(`  journal of ${whose}:\n${error.details.journal.replace(/^/gm, '    ')}\n`);
  }
  if (verbose) io.stderr(`${error.stack}\n`);
  return error.exitCode;
}
