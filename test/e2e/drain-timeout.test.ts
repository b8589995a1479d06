import { describe, expect, it } from 'vitest';
import { readLabFile, runCalls } from '../lab/calls.js';
import { fleetHosts, inventoryFile, resetFleetHost, voxops, workerHealth } from './helpers.js';

const host = fleetHosts()[0]!;

/** One long call on the host (nginx puts it on some worker), and which worker holds it. */
async function oneLongCall(seconds: number) {
  await resetFleetHost(host, 'v1.4.2');
  await new Promise((r) => setTimeout(r, 11_000)); // nginx fail_timeout after the reset's restarts
  const address = readLabFile().hosts.find((h) => h.name === host)!.address;
  const call = runCalls({
    targets: [`ws://${address}/ws/call`],
    rate: 1,
    durationSeconds: 1,
    maxCalls: 1,
    holdSeconds: [seconds, seconds],
  });
  await new Promise((r) => setTimeout(r, 2_000));
  const busy = (await workerHealth(host)).find((w) => w.active_calls === 1);
  expect(busy, 'the long call is held by one worker').toBeDefined();
  return { call, busy: busy! };
}

describe('a call that never ends', () => {
  it('call-aware: a call older than --max-call-age is hung; with skip, its worker stays on the old release serving it (exit 9)', async () => {
    const { call, busy } = await oneLongCall(40);
    const run = await voxops([
      'deploy',
      'fleet',
      '--tag',
      'v1.5.0',
      '--hosts',
      host,
      '--max-call-age',
      '5',
      '--on-drain-timeout',
      'skip',
      '-i',
      inventoryFile,
    ]);
    expect(run.code, run.stderr).toBe(9);
    expect(run.stderr).toMatch(new RegExp(`worker ${busy.index} held a call longer than 5s; left on the old release, serving`));
    expect(run.stdout).toMatch(new RegExp(`worker ${busy.index} skipped`));
    for (const w of await workerHealth(host)) {
      if (w.index === busy.index) expect(w).toMatchObject({ version: 'v1.4.2', active_calls: 1, pid: busy.pid });
      else expect(w).toMatchObject({ httpStatus: 200, version: 'v1.5.0' });
    }
    const stats = await call;
    expect(stats.completed).toBe(1);
    expect(stats.dropped).toBe(0);
  });

  it('one-at-a-time: --on-drain-timeout skip leaves that worker serving its call on the old release, and says so (exit 9)', async () => {
    const { call, busy } = await oneLongCall(90);
    const run = await voxops([
      'deploy',
      'fleet',
      '--tag',
      'v1.5.0',
      '--hosts',
      host,
      '--schedule',
      'one-at-a-time',
      '--drain-timeout',
      '3',
      '--on-drain-timeout',
      'skip',
      '-i',
      inventoryFile,
    ]);
    expect(run.code, run.stderr).toBe(9);
    expect(run.stderr).toMatch(
      new RegExp(`worker ${busy.index} still held a call after two drain timeouts; it stays on v1\\.4\\.2 and serving`),
    );
    expect(run.stdout).toMatch(new RegExp(`worker ${busy.index} skipped`));
    for (const w of await workerHealth(host)) {
      if (w.index === busy.index) expect(w).toMatchObject({ version: 'v1.4.2', active_calls: 1, pid: busy.pid });
      else expect(w).toMatchObject({ httpStatus: 200, version: 'v1.5.0' });
    }
    const stats = await call;
    expect(stats.completed).toBe(1);
    expect(stats.dropped).toBe(0);
  });
});
