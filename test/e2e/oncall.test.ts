import { beforeEach, describe, expect, it } from 'vitest';
import { labCapacity, labTargets, readLabFile, runCalls } from '../lab/calls.js';
import { labExec } from '../lab/lab.js';
import { currentTagOf, fleetHosts, inventoryFile, lastHistory, resetFleetHost, voxops, workerHealth } from './helpers.js';

const hosts = fleetHosts();
const inv = ['-i', inventoryFile];

async function deployOk(tag: string): Promise<void> {
  const run = await voxops(['deploy', 'fleet', '--tag', tag, '--parallel', '2', ...inv]);
  expect(run.code, run.stderr).toBe(0);
}

describe('on-call: rollback, status, health, restart, locks (in the lab)', () => {
  beforeEach(async () => {
    await Promise.all(hosts.map((h) => resetFleetHost(h, 'v1.4.2')));
  });

  it('rolls back to a tag after a successful deploy, under load, dropping no call', async () => {
    await deployOk('v1.5.0');
    const lab = readLabFile();
    const controller = new AbortController();
    const load = runCalls({
      targets: labTargets(lab, 'fleet'),
      load: 0.75,
      capacity: labCapacity(lab),
      durationSeconds: 600,
      holdSeconds: [1, 4],
      signal: controller.signal,
    });
    await new Promise((r) => setTimeout(r, 2_000));
    const run = await voxops(['rollback', 'fleet', '--to', 'v1.4.2', ...inv]);
    controller.abort();
    const calls = await load;
    console.log(
      `rollback under load: exit ${run.code}; calls started ${calls.started}, completed ${calls.completed}, dropped ${calls.dropped}, unavailable ${calls.unavailable}`,
    );
    expect(run.code, run.stderr).toBe(0);
    expect(calls.dropped, calls.errors.join('\n')).toBe(0);
    for (const host of hosts) {
      expect(await currentTagOf(host)).toBe('v1.4.2');
      for (const w of await workerHealth(host)) expect(w).toMatchObject({ httpStatus: 200, version: 'v1.4.2' });
      expect(await lastHistory(host)).toMatchObject({ action: 'rollback', from: 'v1.5.0', to: 'v1.4.2', outcome: 'success' });
    }
  });

  it('refuses a rollback to a tag one host does not have, before touching any host', async () => {
    // a tag that only fleet1's clone knows (never pushed to the git host)
    await labExec(hosts[0]!, ['git', '-C', '/opt/voxcore', 'tag', 'v1.3.9', 'refs/tags/v1.4.2']);
    try {
      const before = await Promise.all(hosts.map((h) => workerHealth(h)));
      const run = await voxops(['rollback', 'fleet', '--to', 'v1.3.9', ...inv]);
      expect(run.code).toBe(7);
      expect(run.stderr).toMatch(/fleet2: tag v1\.3\.9 does not exist in origin/);
      expect(run.stderr).toMatch(/nothing was changed/);
      const after = await Promise.all(hosts.map((h) => workerHealth(h)));
      expect(after.map((ws) => ws.map((w) => w.pid))).toEqual(before.map((ws) => ws.map((w) => w.pid)));
    } finally {
      await labExec(hosts[0]!, ['git', '-C', '/opt/voxcore', 'tag', '-d', 'v1.3.9']);
    }
  });

  it('rollback fleet without --to goes back to last-known-good after a deploy that succeeded but was bad', async () => {
    await deployOk('v1.5.0');
    await deployOk('v1.6.0');
    const status = await voxops(['status', 'fleet', '--json', ...inv]);
    const report = JSON.parse(status.stdout) as { hosts: { name: string; tag: string; lastKnownGood: string }[] };
    for (const h of report.hosts) expect(h).toMatchObject({ tag: 'v1.6.0', lastKnownGood: 'v1.5.0' });
    const run = await voxops(['rollback', 'fleet', ...inv]);
    expect(run.code, run.stderr).toBe(0);
    for (const host of hosts) expect(await currentTagOf(host)).toBe('v1.5.0');
  });

  it('warns about a rollback that rolls forward and needs --force', async () => {
    const run = await voxops(['rollback', 'fleet', '--to', 'v1.5.0', ...inv]);
    expect(run.code).toBe(7);
    expect(run.stderr).toMatch(/v1\.5\.0 is newer than the deployed v1\.4\.2.*--force/);
    for (const host of hosts) expect(await currentTagOf(host)).toBe('v1.4.2');
  });

  it('status and health report a hung worker; restart --worker brings it back', async () => {
    const host = hosts[0]!;
    // a hung worker: the process exists and holds its socket but answers nothing (Restart= does not help)
    await labExec(host, ['systemctl', 'kill', '--signal=SIGSTOP', 'voxcore@3']);
    const status = await voxops(['status', '--json', ...inv]);
    expect(status.code, status.stderr).toBe(0);
    const report = JSON.parse(status.stdout) as {
      hosts: {
        name: string;
        capacity: { healthy: number; configured: number };
        workers: { index: number; health: string; socket: boolean; active: string }[];
      }[];
    };
    const fleet1 = report.hosts.find((h) => h.name === host)!;
    expect(fleet1.workers.find((w) => w.index === 3)).toMatchObject({ health: 'unreachable', socket: true, active: 'active' });
    expect(fleet1.capacity).toEqual({ healthy: 3, configured: 4 });

    const health = await voxops(['health', ...inv]);
    expect(health.code).toBe(10);
    expect(health.stderr).toMatch(/fleet1: worker 3 \(voxcore@3\) is unreachable/);

    const restart = await voxops(['restart', 'fleet', '--host', host, '--worker', '3', ...inv]);
    expect(restart.code, restart.stderr).toBe(0);
    expect(restart.stdout).toMatch(/worker 3 forced \(no answer to \/health/);
    const healthAfter = await voxops(['health', ...inv]);
    expect(healthAfter.code, healthAfter.stderr).toBe(0);
    expect(await lastHistory(host)).toMatchObject({ action: 'restart', from: 'v1.4.2', to: 'v1.4.2', outcome: 'success' });
  });

  it('lock status shows a lock held by another deploy; lock release without --force refuses', async () => {
    const holder = {
      id: 'someone',
      user: 'bob',
      machine: 'jenkins-3',
      pid: 99,
      startedAt: new Date().toISOString(),
      action: 'deploy',
      tag: 'v1.5.0',
    };
    await labExec(hosts[0]!, 'mkdir -p /var/lib/voxops && cat > /var/lib/voxops/lock.json', { input: JSON.stringify(holder) });
    const status = await voxops(['lock', 'status', ...inv]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/fleet1: locked by bob@jenkins-3 \(pid 99, deploy v1\.5\.0/);
    expect(status.stdout).toMatch(/fleet2: free/);
    const refused = await voxops(['lock', 'release', ...inv]);
    expect(refused.code).toBe(2);
    expect(refused.stdout).toMatch(/fleet1: held by bob@jenkins-3, not you/);
    expect((await labExec(hosts[0]!, ['test', '-e', '/var/lib/voxops/lock.json'])).code).toBe(0);
    const forced = await voxops(['lock', 'release', '--force', ...inv]);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stdout).toMatch(/fleet1: released the lock of bob@jenkins-3/);
    expect((await labExec(hosts[0]!, ['test', '-e', '/var/lib/voxops/lock.json'])).code).toBe(1);
  });
});
