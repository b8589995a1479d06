import type { OperationContext } from '../engine/context.js';
import { stopOnSignals } from '../engine/signals.js';
import { ExitCode } from '../errors.js';
import type { Reporter } from '../events.js';
import { beforeDoubleDash, parseArgs, type ParsedCommand } from './args.js';
import { paintFor } from './colour.js';
import { printFailure } from './failure.js';
import { hostsToConnect } from './ssh-credentials.js';
import { chooseReporter, ownVersion, processWiring, type Wiring } from './wiring.js';

type ChangeCommand = Extract<ParsedCommand, { command: 'deploy' | 'rollback' | 'restart' | 'scale' | 'ingress-add-fleet' | 'ingress-remove-fleet' }>;
const changes = new Set<string>(['deploy', 'rollback', 'restart', 'scale', 'ingress-add-fleet', 'ingress-remove-fleet']);
const isChange = (parsed: ParsedCommand): parsed is ChangeCommand => changes.has(parsed.command);

/**
 * The composition root: argv -> inventory, executor, reporter -> one engine call -> exit code. The
 * only exit. It imports what a command needs only once it knows the command (the engine, every
 * role, ssh2, listr2, xmlbuilder2), so `--help` and a mistyped flag answer at once.
 */
export async function main(args: readonly string[], env = process.env, wiring: Partial<Wiring> = {}): Promise<number> {
  const io = { ...processWiring, ...wiring };
  const line = (text: string) => io.stdout(text.endsWith('\n') ? text : `${text}\n`);
  const stop = stopOnSignals(io.stderr);
  // until the arguments parse, their error is said as they asked for it
  const flags = beforeDoubleDash(args);
  let verbose = flags.includes('--verbose') || flags.includes('-v');
  let json = flags.includes('--json');
  let reporter: Reporter | undefined;
  try {
    const parsed = await parseArgs(args, { version: ownVersion() });
    if (parsed.command === 'help') {
      io.stdout(`${parsed.output}\n`);
      return ExitCode.ok;
    }
    verbose = parsed.verbose;
    json = parsed.json;
    const paint = paintFor(io.terminal.stdout, env, parsed.json);
    const { findInventoryFile, loadInventory } = await import('../config/inventory.js');
    const inventory = loadInventory(findInventoryFile(parsed.inventory, env), parsed.env);
    if (parsed.command === 'config-check') {
      const { configCheck } = await import('./config-check.js');
      return configCheck(inventory, parsed.json, line, paint);
    }
    const { change, inspect } = await import('./commands.js');
    const out = await chooseReporter(parsed, env, io);
    reporter = out;
    const connect = () =>
      io.executor(inventory, {
        acceptNewHostKeys: parsed.acceptNewHostKeys,
        env,
        hosts: hostsToConnect(parsed, inventory),
        ...(parsed.verbose ? { onCommand: (host, step, command) => out.emit({ type: 'command', host: host.name, step: step.name, command }) } : {}),
      });
    const ctx = { inventory, reporter: out, signal: stop.signal, dryRun: parsed.dryRun, env, clock: io.clock };
    if (!isChange(parsed)) return await inspect({ ...ctx, executor: await connect() }, parsed, line, paint);
    const what = { operation: parsed.command, role: 'role' in parsed ? parsed.role : 'roles' in parsed ? parsed.roles.join(',') || 'all' : 'ingress' };
    const { withReports } = await import('./reports.js');
    // connecting inside: a run refused for its credentials still writes the report Jenkins reads
    await withReports(out, parsed.report, what, inventory, async (capturing) => change({ ...ctx, executor: await connect(), reporter: capturing } satisfies OperationContext, parsed));
    return ExitCode.ok;
  } catch (error) {
    await reporter?.close();
    reporter = undefined;
    return printFailure(io.stderr, error, { verbose, json, paint: paintFor(io.terminal.stderr, env, json) });
  } finally {
    await reporter?.close();
    stop.dispose();
  }
}

