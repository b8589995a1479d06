import { expect } from 'vitest';
import { errorLine } from '../../../src/cli/failure.js';
import { eventsOf, voxops, type Run } from './cli.js';
import type { SimHost } from './host.js';
import type { Sim } from './sim.js';

/**
 * A refusal before any change: this exit code, exactly these stderr lines, and no host changed.
 * With --json, stderr is the one JSON object, and its message, next and problems say these lines.
 */
export function expectRefusal(run: Run, exitCode: number, stderr: readonly string[], hosts: readonly SimHost[]): void {
  const facts = run.jsonError;
  if (facts) expect(run.stderr).toBe(`${JSON.stringify(facts)}\n`);
  const said = facts ? [errorLine(facts), ...facts.problems.map((p) => `  - ${p}`), ''].join('\n') : run.stderr;
  expect(said).toBe([...stderr, ''].join('\n'));
  expect(run.exitCode).toBe(exitCode);
  for (const host of hosts) expect(host.changes(), host.name).toEqual([]);
}

/**
 * A preflight refusal (exit 7, exactly these stderr lines, nothing changed) that the `override`
 * flag turns into a warning: the same command with it succeeds. Returns that second run.
 */
export async function expectOverridableRefusal(
  sim: Sim,
  args: readonly string[],
  override: string,
  refusal: { stderr: readonly string[]; hosts: readonly SimHost[] },
  warning: string,
): Promise<Run> {
  expectRefusal(await voxops(sim, args), 7, refusal.stderr, refusal.hosts);
  const run = await voxops(sim, [...args, override, '--json']);
  expect(run.exitCode, run.stderr).toBe(0);
  expect(eventsOf(run, 'warning').map((e) => e.message)).toContain(warning);
  return run;
}
