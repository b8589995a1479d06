import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { systemClock, type Clock } from '../clock.js';
import type { Inventory } from '../config/inventory.js';
import type { OperationContext } from '../engine/context.js';
import { stopOnSignals } from '../engine/signals.js';
import { ExitCode, HealthGateError, ProblemListError, VoxopsError } from '../errors.js';
import type { Reporter } from '../events.js';
import type { CommandListener, Executor } from '../exec/executor.js';
import { beforeDoubleDash, parseArgs, type ParsedCommand } from './args.js';
import { noColour, paintFor, type Paint } from './colour.js';
import { hostsToConnect, requireSshCredentials } from './ssh-credentials.js';

/** What main wires from outside: the real SSH executor and process streams, or a test's scripted ones. */
export interface Wiring {
  executor(
    inventory: Inventory,
    options: { acceptNewHostKeys: boolean; onCommand?: CommandListener; env: NodeJS.ProcessEnv; hosts: readonly string[] },
  ): Executor | Promise<Executor>;
  stdout(text: string): void;
  stderr(text: string): void;
  clock: Clock;
  /** whether each stream is a terminal: colour, and listr2's live view */
  terminal: { stdout: boolean; stderr: boolean };
}

const processWiring: Wiring = {
  executor: async (inventory, { env, hosts, ...options }) => {
    requireSshCredentials(inventory, env, hosts);
    const { SshExecutor } = await import('../exec/ssh.js');
    return new SshExecutor({ ssh: inventory.ssh, ...options });
  },
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  clock: systemClock,
  terminal: { stdout: Boolean(process.stdout.isTTY), stderr: Boolean(process.stderr.isTTY) },
};

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
    return report(io.stderr, error, { verbose, json, paint: paintFor(io.terminal.stderr, env, json) });
  } finally {
    await reporter?.close();
    stop.dispose();
  }
}

/** listr2 (and its dependencies) load only for a person at a terminal, never for Jenkins or --json. */
async function chooseReporter(options: { json: boolean; verbose: boolean }, env: NodeJS.ProcessEnv, io: Wiring): Promise<Reporter> {
  const { JsonReporter, PlainReporter } = await import('./reporters.js');
  if (options.json) return new JsonReporter(io.stdout);
  const paint = paintFor(io.terminal.stdout, env, false);
  if (io.terminal.stdout && !env.CI && !env.JENKINS_URL) {
    const { TtyReporter } = await import('./tty-reporter.js');
    return new TtyReporter(paint);
  }
  return new PlainReporter(io.stdout, options.verbose, paint);
}

/** package.json's version. main runs from src/cli (tests) and from dist/src/cli (bin/voxops), so it looks upwards. */
function ownVersion(): string | undefined {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dirname(dir) !== dir; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'voxops') return pkg.version;
    } catch {
      // not here: one level up
    }
  }
  return undefined;
}

/** The one error a run ends with, as --json reports it: the same facts as the text line, on stderr. */
export interface ErrorFacts {
  exitCode: number;
  message: string;
  next: string | null;
  problems: string[];
  journal?: { host: string; worker?: number; text: string };
  stack?: string;
}

function errorFacts(error: unknown, verbose: boolean): ErrorFacts {
  const stack = verbose && error instanceof Error && error.stack ? { stack: error.stack } : {};
  if (!(error instanceof VoxopsError)) {
    return { exitCode: ExitCode.internal, message: `internal error: ${(error as Error)?.message ?? String(error)}`, next: 're-run with --verbose and report it', problems: [], ...stack };
  }
  const journal =
    error instanceof HealthGateError && error.details.journal
      ? { journal: { host: error.details.host, ...(error.details.worker !== undefined ? { worker: error.details.worker } : {}), text: error.details.journal } }
      : {};
  return { exitCode: error.exitCode, message: error.message, next: error.next ?? null, problems: error instanceof ProblemListError ? error.problems : [], ...journal, ...stack };
}

/** The error as one line: what happened, then what to run next. */
export function errorLine(facts: ErrorFacts, paint: Paint = noColour): string {
  // "did you mean deploy?" needs no full stop after it
  const joint = /[.?!]$/.test(facts.message) ? ' ' : '. ';
  return `${paint('error', `voxops: ${facts.message}`)}${facts.next ? `${joint}Next: ${facts.next}` : ''}`;
}

/** The only place that prints an error: one line of what happened and what to run next, details under it. */
function report(write: (text: string) => void, error: unknown, options: { verbose: boolean; json: boolean; paint: Paint }): number {
  const facts = errorFacts(error, options.verbose);
  if (options.json) {
    write(`${JSON.stringify(facts)}\n`);
    return facts.exitCode;
  }
  write(`${errorLine(facts, options.paint)}\n`);
  for (const problem of facts.problems) write(`  - ${problem.replace(/\n/g, '\n  - ')}\n`);
  if (facts.journal) {
    const whose = facts.journal.worker !== undefined ? `${facts.journal.host} worker ${facts.journal.worker}` : facts.journal.host;
    write(`  journal of ${whose}:\n${facts.journal.text.replace(/^/gm, '    ')}\n`);
  }
  if (facts.stack) write(`${facts.stack}\n`);
  return facts.exitCode;
}
