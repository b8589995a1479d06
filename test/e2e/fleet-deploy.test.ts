import { beforeEach, describe, expect, it } from 'vitest';
import { labCapacity, labTargets, readLabFile, runCalls, type CallStats } from '../lab/calls.js';
import { labExec } from '../lab/lab.js';
import {
  currentTagOf,
  fleetHosts,
  inventoryFile,
  lastHistory,
  resetFleetHost,
  voxops,
  workerCount,
  workerHealth,
  type WorkerHealth,
} from './helpers.js';

const hosts = fleetHosts();

/** Keep about 75% of the fleet's capacity busy with calls held `hold` seconds until `until` settles, then stop placing calls. */
async function underLoad<T>(until: () => Promise<T>, hold: [number, number] = [1, 4]): Promise<{ result: T; calls: CallStats }> {
  const lab = readLabFile();
  const controller = new AbortController();
  const load = runCalls({
    targets: labTargets(lab, 'fleet'),
    load: 0.75,
    capacity: labCapacity(lab),
    durationSeconds: 600,
    holdSeconds: hold,
    signal: controller.signal,
  });
  // let the load settle so workers really hold calls when the roll starts
  await new Promise((r) => setTimeout(r, 3_000));
  try {
    const result = await until();
    return { result, calls: await stop() };
  } catch (error) {
    await stop();
    throw error;
  }
  async function stop(): Promise<CallStats> {
    controller.abort();
    return load;
  }
}

function describeCalls(calls: CallStats): string {
  return `started ${calls.started}, completed ${calls.completed}, dropped ${calls.dropped}, rejected ${calls.rejected}, unavailable ${calls.unavailable}, failed ${calls.failed}, cancelled ${calls.cancelled}`;
}

async function allWorkers(): Promise<Map<string, WorkerHealth[]>> {
  return new Map(await Promise.all(hosts.map(async (h) => [h, await workerHealth(h)] as const)));
}

describe('voxops deploy fleet (rolling, in the lab)', () => {
  beforeEach(async () => {
    await Promise.all(hosts.map((h) => resetFleetHost(h, 'v1.4.2')));
  });

  it('rolls v1.4.2 -> v1.5.0 call-aware on every fleet host at once, under 75% load of 10-30 s calls: zero dropped, none double-booked', async () => {
    // the reset restarted every worker without a drain, so nginx shut them out for fail_timeout:
    // let that pass, so the call figures measure the deploy and not the reset
    await new Promise((r) => setTimeout(r, 11_000));
    const before = await allWorkers();
    const { result: run, calls } = await underLoad(
      () => voxops(['deploy', 'fleet', '--tag', 'v1.5.0', '--parallel', 'auto', '-i', inventoryFile, '--json']),
      [10, 30],
    );
    const summary = run.events.find((e) => e.type === 'summary')?.summary as {
      durationMs: number;
      workers: { downtimeMs: number; outOfRotationMs: number }[];
    };
    console.log(`rolling deploy: exit ${run.code} in ${(summary?.durationMs / 1000).toFixed(1)}s; calls: ${describeCalls(calls)}`);
    if (summary) {
      const down = summary.workers.map((w) => w.downtimeMs).sort((a, b) => a - b);
      const out = summary.workers.map((w) => w.outOfRotationMs).sort((a, b) => a - b);
      console.log(`per worker: restart->healthy median ${down[down.length >> 1]} ms, out of rotation median ${out[out.length >> 1]} ms`);
    }
    expect(run.code, run.stderr).toBe(0);
    expect(calls.completed).toBeGreaterThan(10);
    expect(calls.dropped, calls.errors.join('\n')).toBe(0);
    // the stand-in answers 1008 when a second call reaches a busy worker: none may
    expect(calls.rejected).toBe(0);

    const after = await allWorkers();
    for (const host of hosts) {
      expect(await currentTagOf(host)).toBe('v1.5.0');
      for (const worker of after.get(host)!) {
        const old = before.get(host)!.find((w) => w.index === worker.index)!;
        expect(worker, `${host} worker ${worker.index}`).toMatchObject({ httpStatus: 200, status: 'ok', version: 'v1.5.0' });
        expect(worker.pid).not.toBe(old.pid);
        expect(worker.max_seen_calls ?? 0).toBeLessThanOrEqual(1);
      }
      // nginx config untouched: no worker left drained, the upstream still lists every socket
      const leftovers = await labExec(
        host,
        'ls /tmp/voxcore_*.sock.draining 2>/dev/null | wc -l; nginx -T 2>/dev/null | grep -c "server unix:/tmp/voxcore_"',
      );
      expect(leftovers.stdout.trim().split('\n')).toEqual(['0', String(workerCount(host))]);
      expect(await lastHistory(host)).toMatchObject({ role: 'fleet', action: 'deploy', from: 'v1.4.2', to: 'v1.5.0', outcome: 'success' });
    }
  });

  it('the same roll done naively (systemctl restart per worker, no drain) drops calls', async () => {
    const { result: restarted, calls } = await underLoad(async () => {
      let n = 0;
      for (const host of hosts) {
        for (let i = 1; i <= workerCount(host); i++) {
          const r = await labExec(host, ['systemctl', 'restart', `voxcore@${i}`]);
          expect(r.code).toBe(0);
          n += 1;
          await new Promise((res) => setTimeout(res, 1_000));
        }
      }
      return n;
    });
    console.log(`naive restart of ${restarted} workers: calls: ${describeCalls(calls)}`);
    expect(calls.dropped).toBeGreaterThan(0);
  });

  it('rolls a host back to the previous tag when a worker fails its health gate', async () => {
    const run = await voxops(['deploy', 'fleet', '--tag', 'v1.5.1-badhealth', '-i', inventoryFile]);
    expect(run.code, run.stderr).toBe(4);
    expect(run.stderr).toMatch(/worker 1 \(voxcore@1\) failed its health gate on v1\.5\.1-badhealth.*HTTP 500.*rolled back to v1\.4\.2/);
    expect(run.stderr).toMatch(/Next: read the worker's log: voxops logs fleet --host fleet1 --worker 1/);
    expect(run.stderr).toMatch(/journal of fleet1 worker 1:/);
    for (const host of hosts) {
      expect(await currentTagOf(host)).toBe('v1.4.2');
      for (const worker of await workerHealth(host)) {
        expect(worker, `${host} worker ${worker.index}`).toMatchObject({ httpStatus: 200, status: 'ok', version: 'v1.4.2' });
      }
    }
    expect(await lastHistory(hosts[0]!)).toMatchObject({ to: 'v1.5.1-badhealth', outcome: 'rolled-back' });
    // the second host was never touched
    const lock = await labExec(hosts[0]!, ['test', '-e', '/var/lib/voxops/lock.json']);
    expect(lock.code).toBe(1);
  });

  it('rolls back a worker that never binds its socket', async () => {
    const run = await voxops(['deploy', 'fleet', '--tag', 'v1.5.1-nosocket', '--hosts', hosts[0]!, '-i', inventoryFile]);
    expect(run.code, run.stderr).toBe(4);
    expect(run.stderr).toMatch(/nothing is listening on the socket/);
    for (const worker of await workerHealth(hosts[0]!)) expect(worker).toMatchObject({ httpStatus: 200, version: 'v1.4.2' });
  });

  it('fails fast while another deploy holds the lock, and says who holds it', async () => {
    const holder = {
      id: 'other',
      user: 'alice',
      machine: 'jenkins-7',
      pid: 4242,
      startedAt: new Date().toISOString(),
      action: 'deploy',
      tag: 'v1.5.0',
      buildUrl: 'https://jenkins/job/voxops/81/',
    };
    await labExec(hosts[1]!, 'mkdir -p /var/lib/voxops && cat > /var/lib/voxops/lock.json', { input: JSON.stringify(holder) });
    const started = Date.now();
    const run = await voxops(['deploy', 'fleet', '--tag', 'v1.5.0', '-i', inventoryFile]);
    console.log(`lock held: refused in ${Date.now() - started} ms`);
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(
      /lock on fleet2 is held by alice@jenkins-7 \(pid 4242, deploy v1\.5\.0, since .*, build https:\/\/jenkins\/job\/voxops\/81\/\)/,
    );
    // nothing moved anywhere, and the lock we did not own is still there
    for (const host of hosts) expect(await currentTagOf(host)).toBe('v1.4.2');
    expect((await labExec(hosts[1]!, ['cat', '/var/lib/voxops/lock.json'])).stdout).toContain('"alice"');
    expect((await labExec(hosts[0]!, ['test', '-e', '/var/lib/voxops/lock.json'])).code).toBe(1);
  });

  it('refuses an unknown tag before touching any host', async () => {
    const run = await voxops(['deploy', 'fleet', '--tag', 'v9.9.9', '-i', inventoryFile]);
    expect(run.code).toBe(7);
    expect(run.stderr).toMatch(/tag v9\.9\.9 does not exist in origin/);
    for (const host of hosts) expect(await currentTagOf(host)).toBe('v1.4.2');
  });

  it('--dry-run prints every command and changes nothing', async () => {
    const before = await allWorkers();
    const run = await voxops(['deploy', 'fleet', '--tag', 'v1.5.0', '--dry-run', '-i', inventoryFile]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('git -C /opt/voxcore checkout --quiet --force --detach refs/tags/v1.5.0');
    expect(run.stdout).toContain('systemctl restart -- voxcore@4');
    expect(run.stdout).toContain('mv -T -- /tmp/voxcore_2.sock /tmp/voxcore_2.sock.draining');
    const after = await allWorkers();
    for (const host of hosts) {
      expect(await currentTagOf(host)).toBe('v1.4.2');
      expect(after.get(host)!.map((w) => w.pid)).toEqual(before.get(host)!.map((w) => w.pid));
    }
  });

  it('Ctrl-C mid-roll stops at a safe point: every worker serving, lock released, exit 130', async () => {
    const { result: run, calls } = await underLoad(() =>
      voxops(['deploy', 'fleet', '--tag', 'v1.5.0', '-i', inventoryFile], { signalAfterMs: { signal: 'SIGINT', ms: 5_000 } }),
    );
    console.log(`interrupted deploy: calls: ${describeCalls(calls)}`);
    expect(run.code, run.stderr).toBe(130);
    expect(run.stderr).toMatch(/interrupted/);
    expect(calls.dropped).toBe(0);
    for (const host of hosts) {
      for (const worker of await workerHealth(host)) expect(worker).toMatchObject({ httpStatus: 200, status: 'ok' });
      expect((await labExec(host, ['test', '-e', '/var/lib/voxops/lock.json'])).code).toBe(1);
      expect((await labExec(host, 'ls /tmp/voxcore_*.sock.draining 2>/dev/null | wc -l')).stdout.trim()).toBe('0');
    }
  });
});
