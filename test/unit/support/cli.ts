import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vi } from 'vitest';
import { stringify } from 'yaml';
import { errorLine, type ErrorFacts } from '../../../src/cli/failure.js';
import { main } from '../../../src/cli/main.js';
import type { OperationEvent, OperationSummary } from '../../../src/events.js';
import { SimExecutor } from './executor.js';
import type { Sim } from './sim.js';

/*
 * yargs spends about 10 ms on every parse of a command that changes hosts: most of a scenario's
 * time. parseArgs is pure (argv in, a plain object out, no I/O), so the runs here share one parse
 * per distinct argv, each run getting its own copy; a rejected argv is parsed (and thrown) every
 * time. The inventory goes in $VOXOPS_INVENTORY, so the argv of a scenario does not change with
 * its temp directory.
 */
vi.mock('../../../src/cli/args.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../../src/cli/args.js')>();
  const parsed = new Map<string, Awaited<ReturnType<typeof real.parseArgs>>>();
  return {
    ...real,
    async parseArgs(...call: Parameters<typeof real.parseArgs>) {
      const key = JSON.stringify(call);
      if (!parsed.has(key)) parsed.set(key, await real.parseArgs(...call));
      return structuredClone(parsed.get(key)!);
    },
  };
});

/** What one `voxops ...` run did, as an operator (or Jenkins) would see it. */
export interface Run {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** the JSON events (with --json), in order */
  events: OperationEvent[];
  /** the one error line (`voxops: ... Next: ...`), if the run failed (after a Ctrl-C notice, if any); with --json, the same words from its JSON object */
  error: string | undefined;
  /** with --json: the error as the JSON object on stderr */
  jsonError: ErrorFacts | undefined;
  /** the last summary event */
  summary: OperationSummary | undefined;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  /** called with each JSON event as it is printed (drive faults from what voxops does) */
  onEvent?: (event: OperationEvent) => void;
  /** called with each command a host is sent, before it runs (drive faults from what voxops asks) */
  onCommand?: (host: string, step: string) => void;
}

/**
 * Run the CLI in-process against the simulated estate: the inventory is written to a temp dir (and
 * named by $VOXOPS_INVENTORY) and `main(args, env, wiring)` gets the simulator's executor and clock.
 * A command the simulator could not answer fails the test here, even if voxops caught the error.
 */
export async function voxops(sim: Sim, args: readonly string[], options: RunOptions = {}): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'voxops-unit-'));
  const inventory = join(dir, 'voxops.yaml');
  writeFileSync(inventory, stringify(sim.inventory()));
  let stdout = '';
  let stderr = '';
  let pending = '';
  const events: OperationEvent[] = [];
  const onLine = (line: string) => {
    if (!line.startsWith('{"at":')) return;
    const { at: _at, ...event } = JSON.parse(line) as OperationEvent & { at: string };
    events.push(event as OperationEvent);
    options.onEvent?.(event as OperationEvent);
  };
  try {
    const exitCode = await main(
      args,
      { USER: 'tester', CI: '1', XDG_CACHE_HOME: join(dir, 'cache'), VOXOPS_INVENTORY: inventory, ...options.env },
      {
        executor: (_inventory, wiring) =>
          new SimExecutor(sim, (host, step, rendered) => {
            options.onCommand?.(host.name, step.name);
            wiring.onCommand?.(host, step, rendered);
          }),
        stdout: (text) => {
          stdout += text;
          pending += text;
          for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
            onLine(pending.slice(0, nl));
            pending = pending.slice(nl + 1);
          }
        },
        stderr: (text) => {
          stderr += text;
        },
        clock: sim.clock,
      },
    );
    if (sim.gaps.length > 0) throw sim.gaps[0]!;
    const summaries = events.filter((e): e is Extract<OperationEvent, { type: 'summary' }> => e.type === 'summary');
    const jsonLine = stderr
      .split('\n')
      .filter((l) => l.startsWith('{"exitCode":'))
      .pop();
    const jsonError = jsonLine ? (JSON.parse(jsonLine) as ErrorFacts) : undefined;
    return {
      exitCode,
      stdout,
      stderr,
      events,
      jsonError,
      error: jsonError
        ? errorLine(jsonError)
        : stderr
            .split('\n')
            .filter((l) => l.startsWith('voxops: '))
            .pop(),
      summary: summaries[summaries.length - 1]?.summary,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Events of one type, narrowed. */
export function eventsOf<T extends OperationEvent['type']>(run: Run, type: T): Extract<OperationEvent, { type: T }>[] {
  return run.events.filter((e): e is Extract<OperationEvent, { type: T }> => e.type === type);
}
