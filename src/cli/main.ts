import { systemClock, type Clock } from '../clock.js';
import { findInventoryFile, loadInventory, type Inventory } from '../config/inventory.js';
import type { OperationContext } from '../engine/context.js';
import { stopOnSignals } from '../engine/signals.js';
import { ExitCode, HealthGateError, ProblemListError, VoxopsError } from '../errors.js';
import type { Reporter } from '../events.js';
import type { CommandListener, Executor } from '../exec/executor.js';
import { SshExecutor } from '../exec/ssh.js';
import { parseArgs, type ParsedCommand } from './args.js';
import { change, configCheck, inspect } from './commands.js';
import { withReports } from './reports.js';
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

type ChangeCommand = Extract<ParsedCommand, { command: 'deploy' | 'rollback' | 'restart' | 'scale' | 'ingress-add-fleet' | 'ingress-remove-fleet' }>;
const changes = new Set<string>(['deploy', 'rollback', 'restart', 'scale', 'ingress-add-fleet', 'ingress-remove-fleet']);
const isChange = (parsed: ParsedCommand): parsed is ChangeCommand => changes.has(parsed.command);

/** The composition root: argv -> inventory, executor, reporter -> one engine call -> exit code. The only exit. */
export async function main(args: readonly string[], env = process.env, wiring: Partial<Wiring> = {}): Promise<number> {
  const io = { ...processWiring, ...wiring };
  const line = (text: string) => io.stdout(text.endsWith('\n') ? text : `${text}\n`);
  const stop = stopOnSignals(io.stderr);
  let verbose = args.includes('--verbose') || args.includes('-v');
  let reporter: Reporter | undefined;
  try {
    const parsed = await parseArgs(args);
    if (parsed.command === 'help') {
      io.stdout(`${parsed.output}\n`);
      return ExitCode.ok;
    }
    verbose = parsed.verbose;
    const inventory = loadInventory(findInventoryFile(parsed.inventory, env), parsed.env);
    if (parsed.command === 'config-check') return configCheck(inventory, parsed.json, line);
    const out = chooseReporter(parsed, env, io.stdout);
    reporter = out;
    const executor = io.executor(inventory, {
      acceptNewHostKeys: parsed.acceptNewHostKeys,
      ...(parsed.verbose ? { onCommand: (host, step, command) => out.emit({ type: 'command', host: host.name, step: step.name, command }) } : {}),
    });
    const ctx: OperationContext = { inventory, executor, reporter: out, signal: stop.signal, dryRun: parsed.dryRun, env, clock: io.clock };
    if (!isChange(parsed)) return await inspect(ctx, parsed, line);
    const what = { operation: parsed.command, role: 'role' in parsed ? parsed.role : 'roles' in parsed ? parsed.roles.join(',') || 'all' : 'ingress' };
    await withReports(out, parsed.report, what, inventory, (capturing) => change({ ...ctx, reporter: capturing }, parsed));
    return ExitCode.ok;
  } catch (error) {
    await reporter?.close();
    reporter = undefined;
    return report(io.stderr, error, verbose);
  } finally {
    await reporter?.close();
    stop.dispose();
  }
}

/** The only place that prints an error: one line of what happened and what to run next, details under it. */
function report(write: (text: string) => void, error: unknown, verbose: boolean): number {
  if (!(error instanceof VoxopsError)) {
    write(`voxops: internal error: ${(error as Error)?.message ?? String(error)}. Next: re-run with --verbose and report it\n`);
    if (verbose && error instanceof Error) write(`${error.stack}\n`);
    return ExitCode.internal;
  }
  write(`voxops: ${error.message}${error.next ? `. Next: ${error.next}` : ''}\n`);
  const details = error instanceof ProblemListError ? error.problems : [];
  for (const problem of details) write(`  - ${problem.replace(/\n/g, '\n  - ')}\n`);
  if (error instanceof HealthGateError && error.details.journal) {
    const whose = error.details.worker !== undefined ? `${error.details.host} worker ${error.details.worker}` : error.details.host;
    write(`  journal of ${whose}:\n${error.details.journal.replace(/^/gm, '    ')}\n`);
  }
  if (verbose) write(`${error.stack}\n`);
  return error.exitCode;
}
