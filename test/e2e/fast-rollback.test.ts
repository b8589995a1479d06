import { describe, expect, it } from 'vitest';
import { labExec } from '../lab/lab.js';
import { currentTagOf, fleetHosts, inventoryFile, resetFleetHost, voxops, workerHealth } from './helpers.js';

const host = fleetHosts()[0]!;
const inv = ['--hosts', host, '-i', inventoryFile, '--json'];

interface StepEvent {
  type: string;
  step?: string;
  status?: string;
  durationMs?: number;
}

function releaseSteps(events: Record<string, unknown>[]): Map<string, number> {
  return new Map(
    (events as unknown as StepEvent[]).filter((e) => e.type === 'step' && e.status === 'done').map((e) => [e.step!, e.durationMs!]),
  );
}

function hostDuration(events: Record<string, unknown>[]): number {
  const summary = events.find((e) => e.type === 'summary')?.summary as { hosts: { durationMs: number }[] };
  return summary.hosts[0]!.durationMs;
}

async function ok(args: string[]): Promise<Record<string, unknown>[]> {
  const run = await voxops(args);
  expect(run.code, run.stderr).toBe(0);
  return run.events;
}

describe('fast rollback: the previous build is kept on the host', () => {
  it('restores the kept build instead of installing again, and measures both', async () => {
    await resetFleetHost(host, 'v1.4.2');
    await labExec(host, ['rm', '-rf', '/var/lib/voxops/builds']);
    await ok(['deploy', 'fleet', '--tag', 'v1.5.0', ...inv]);
    await ok(['deploy', 'fleet', '--tag', 'v1.6.0', ...inv]);
    const kept = await labExec(host, ['ls', '-1', '/var/lib/voxops/builds/fleet']);
    expect(kept.stdout.trim().split('\n')).toHaveLength(2);

    // a fresh deploy of v1.5.0 from v1.6.0 runs install...
    const fresh = await ok(['deploy', 'fleet', '--tag', 'v1.5.0', ...inv]);
    const freshSteps = releaseSteps(fresh);
    expect(freshSteps.has('install')).toBe(true);
    expect(freshSteps.has('restore the kept build')).toBe(false);
    await ok(['deploy', 'fleet', '--tag', 'v1.6.0', ...inv]);

    // ...a rollback to v1.5.0 from v1.6.0 restores the build kept for v1.5.0's commit
    const rollback = await ok(['rollback', 'fleet', '--to', 'v1.5.0', ...inv]);
    const rollbackSteps = releaseSteps(rollback);
    expect(rollbackSteps.has('install')).toBe(false);
    expect(rollbackSteps.has('git fetch')).toBe(false);
    expect(rollbackSteps.has('restore the kept build')).toBe(true);
    expect(await currentTagOf(host)).toBe('v1.5.0');
    for (const w of await workerHealth(host)) expect(w).toMatchObject({ httpStatus: 200, version: 'v1.5.0' });
    expect((await labExec(host, ['/opt/voxcore/.venv/bin/python', '-c', 'import fastapi, uvicorn'])).code).toBe(0);

    const freshRelease = ['git fetch', 'checkout v1.5.0', 'verify HEAD is v1.5.0', 'install', 'keep this build for rollback'].reduce(
      (t, s) => t + (freshSteps.get(s) ?? 0),
      0,
    );
    const rollbackRelease = [...rollbackSteps.values()].reduce((t, d) => t + d, 0);
    console.log(
      `fast rollback (${host}): release phase ${rollbackRelease} ms (restore ${rollbackSteps.get('restore the kept build')} ms) vs fresh deploy of the same tag ${freshRelease} ms (install ${freshSteps.get('install')} ms); whole host ${hostDuration(rollback)} ms vs ${hostDuration(fresh)} ms`,
    );
  });
});
