import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { main } from '../../../src/cli/main.js';
import type { OperationEvent, OperationSummary } from '../../../src/events.js';
import { SimExecutor } from './executor.js';
import type { Sim } from './sim.js';

/** What one `voxops ...` run did, as an operator (or Jenkins) would see it. */
export interface Run {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** the JSON events (with --json), in order */
  events: OperationEvent[];
  /** the one error line (`voxops: ... Next: ...`), if the run failed (after a Ctrl-C notice, if any) */
  error: string | undefined;
  /** the last summary event */
  summary: OperationSummary | undefined;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  /** called with each JSON event as it is printed (drive faults from what voxops does) */
  onEvent?: (event: OperationEvent) => void;
}

/**
 * Run the CLI in-process against the simulated estate: the inventory is written to a temp dir and
 * `main(args, env, wiring)` gets the simulator's executor and clock. A command the simulator could
 * not answer fails the test here, even if voxops caught the error.
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
    const exitCode = await main([...args, '--inventory', inventory], { USER: 'tester', CI: '1', XDG_CACHE_HOME: join(dir, 'cache'), ...options.env }, {
      executor: (_inventory, wiring) => new SimExecutor(sim, wiring.onCommand),
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
    });
    if (sim.gaps.length > 0) throw sim.gaps[0]!;
    const summaries = events.filter((e): e is Extract<OperationEvent, { type: 'summary' }> => e.type === 'summary');
    return {
      exitCode,
      stdout,
      stderr,
      events,
      error: stderr.split('\n').filter((l) => l.startsWith('voxops: ')).pop(),
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
