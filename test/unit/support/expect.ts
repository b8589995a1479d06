import { expect } from 'vitest';
import type { Run } from './cli.js';
import type { SimHost } from './host.js';

/** A refusal before any change: this exit code, exactly these stderr lines, and no host changed. */
export function expectRefusal(run: Run, exitCode: number, stderr: readonly string[], hosts: readonly SimHost[]): void {
  expect(run.stderr).toBe([...stderr, ''].join('\n'));
  expect(run.exitCode).toBe(exitCode);
  for (const host of hosts) expect(host.changes(), host.name).toEqual([]);
}
