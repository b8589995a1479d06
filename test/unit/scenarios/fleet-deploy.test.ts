import { beforeAll, describe, expect, it } from 'vitest';
import { lockFile } from '../../../src/commands/state.js';
import { eventsOf, voxops, type Run } from '../support/cli.js';
import { expectOverridableRefusal, expectRefusal } from '../support/expect.js';
import { FLEET, Sim } from '../support/sim.js';

/** Two fleet hosts of four workers each, every worker healthy on v1.4.2 (the lab's topology). */
function twoFleetHosts() {
  const sim = new Sim();
  return { sim, fleet1: sim.addFleetHost('fleet1'), fleet2: sim.addFleetHost('fleet2') };
}

const pids = (host: ReturnType<Sim['host']>) => host.workers().map((w) => w.pid);

describe('deploy fleet', () => {
  it('rolls every worker of every host to the new tag: new pid, new version, history, lock released', async () => {
    const { sim, fleet1, fleet2 } = twoFleetHosts();
    const before = new Map([fleet1, fleet2].map((h) => [h.name, pids(h)]));

    const run = await voxops(sim, ['deploy', 'fleet', '--rolling', '--tag', 'v1.5.0', '--json']);

    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stderr).toBe('');
    expect(run.events[0]).toMatchObject({ type: 'start', operation: 'deploy', role: 'fleet', tag: 'v1.5.0', hosts: ['fleet1', 'fleet2'], dryRun: false });
    expect(eventsOf(run, 'worker').filter((e) => e.phase === 'healthy').map((e) => `${e.host}/${e.worker}`)).toEqual([
      'fleet1/1', 'fleet1/2', 'fleet1/3', 'fleet1/4', 'fleet2/1', 'fleet2/2', 'fleet2/3', 'fleet2/4',
    ]);
    expect(run.events.at(-1)).toMatchObject({ type: 'summary', summary: { exitCode: 0, hosts: [{ host: 'fleet1', outcome: 'success' }, { host: 'fleet2', outcome: 'success' }] } });
    expect(run.summary!.workers.every((w) => w.outcome === 'rolled' && w.version === 'v1.5.0')).toBe(true);
    for (const host of [fleet1, fleet2]) {
      expect(host.releaseIn(FLEET.path)).toBe('v1.5.0');
      for (const [n, worker] of host.workers().entries()) {
        expect(worker).toMatchObject({ status: 200, version: 'v1.5.0', activeCalls: 0 });
        expect(worker.pid).not.toBe(before.get(host.name)![n]);
      }
      expect(sim.historyOf(host.name)).toMatchObject([{ role: 'fleet', action: 'deploy', from: 'v1.4.2', to: 'v1.5.0', outcome: 'success', user: 'tester' }]);
      expect(host.fs.exists(lockFile)).toBe(false);
      expect(host.drainLeftovers()).toEqual([]);
      expect(host.dropped).toEqual([]);
      // each worker: drained, waited on, restarted, then its old socket removed, one after another
      expect(host.ran().filter((c) => /^(mv -T|systemctl restart|rm -f -- \/tmp)/.test(c))).toEqual(
        [1, 2, 3, 4].flatMap((i) => [`mv -T -- /tmp/voxcore_${i}.sock /tmp/voxcore_${i}.sock.draining`, `systemctl restart -- voxcore@${i}`, `rm -f -- /tmp/voxcore_${i}.sock.draining`]),
      );
    }
  });

  it('waits for a call in progress and never restarts a worker under it', async () => {
    const { sim, fleet1 } = twoFleetHosts();
    const caller = fleet1.startCall(2, 5);

    const run = await voxops(sim, ['deploy', 'fleet', '--tag', 'v1.5.0', '--json']);

    expect(run.exitCode, run.stderr).toBe(0);
    expect(fleet1.dropped).toEqual([]);
    expect(caller.call).toBeUndefined();
    const log = fleet1.ran();
    const restart = log.indexOf('systemctl restart -- voxcore@2');
    const probes = log.slice(0, restart).filter((c) => c.includes('--unix-socket /tmp/voxcore_2.sock.draining'));
    // five probes saw the call, the sixth saw it ended; only then the restart
    expect(probes).toHaveLength(6);
    expect(eventsOf(run, 'worker').filter((e) => e.host === 'fleet1' && e.worker === 2).map((e) => e.phase)).toEqual(['drained', 'idle', 'restarted', 'healthy']);
    expect(fleet1.workers()[1]).toMatchObject({ status: 200, version: 'v1.5.0' });
  });

  it('rolls a host back to the previous tag when a worker fails its gate, and leaves later hosts untouched (exit 4)', async () => {
    const { sim, fleet1, fleet2 } = twoFleetHosts();
    const before1 = pids(fleet1);
    const before2 = pids(fleet2);

    const run = await voxops(sim, ['deploy', 'fleet', '--tag', 'v1.5.1-badhealth', '--json']);

    expect(run.exitCode).toBe(4);
    expect(run.error).toBe(
      "voxops: fleet1: worker 1 (voxcore@1) failed its health gate on v1.5.1-badhealth after 1s: /health answered HTTP 500; fleet1 was rolled back to v1.4.2. Next: read the worker's log: voxops logs fleet --host fleet1 --worker 1",
    );
    expect(run.stderr).toMatch(/journal of fleet1 worker 1:\n[\s\S]*ERROR health check fails: RELEASE_FLAVOUR=badhealth/);
    expect(eventsOf(run, 'host').map((e) => `${e.host} ${e.phase}`)).toEqual(['fleet1 start', 'fleet1 rolling-back', 'fleet1 rolled-back']);
    expect(run.summary).toMatchObject({ exitCode: 4, hosts: [{ host: 'fleet1', outcome: 'rolled-back' }, { host: 'fleet2', outcome: 'not-started' }] });
    // fleet1: back on v1.4.2; worker 1 was restarted twice (new pid), the others never moved
    expect(fleet1.releaseIn(FLEET.path)).toBe('v1.4.2');
    expect(fleet1.workers().map((w) => [w.status, w.version])).toEqual(Array(4).fill([200, 'v1.4.2']));
    expect(pids(fleet1)[0]).not.toBe(before1[0]);
    expect(pids(fleet1).slice(1)).toEqual(before1.slice(1));
    expect(fleet1.ran().filter((c) => c.startsWith('systemctl restart'))).toEqual(['systemctl restart -- voxcore@1', 'systemctl restart -- voxcore@1']);
    expect(sim.historyOf('fleet1')).toMatchObject([{ from: 'v1.4.2', to: 'v1.5.1-badhealth', outcome: 'rolled-back' }]);
    // fleet2: locked and unlocked, nothing else
    expect(fleet2.changes().map((c) => c.step)).toEqual(['take the deploy lock', 'release the deploy lock']);
    expect(pids(fleet2)).toEqual(before2);
    for (const host of [fleet1, fleet2]) {
      expect(host.fs.exists(lockFile)).toBe(false);
      expect(host.drainLeftovers()).toEqual([]);
    }
  });

  describe('when the rollback fails too', () => {
    // one run (a failing gate: 1 s of real time today), two sets of assertions: what works, and the bug
    let run: Run;
    const { sim, fleet1 } = twoFleetHosts();
    beforeAll(async () => {
      // the restart onto the bad release works, the rollback's restart does not
      fleet1.workerUnit(1).nextStarts = ['ok', 'fail'];
      run = await voxops(sim, ['deploy', 'fleet', '--tag', 'v1.5.1-badhealth', '--json']);
    });

    it('says the host needs a human (exit 8)', () => {
      expect(run.exitCode).toBe(8);
      expect(run.error).toMatch(
        /^voxops: fleet1: (fleet1: )?worker 1 \(voxcore@1\) failed its health gate on v1\.5\.1-badhealth after 1s: \/health answered HTTP 500; then rolling back to v1\.4\.2 failed too: fleet1: restart voxcore@1 failed \(exit 1\): See "systemctl status voxcore@1\.service" and "journalctl -xeu voxcore@1\.service" for details\.\.? Next: check the host now: voxops status --host fleet1$/,
      );
      expect(eventsOf(run, 'host').map((e) => `${e.host} ${e.phase}`)).toEqual(['fleet1 start', 'fleet1 rolling-back', 'fleet1 failed']);
      expect(run.summary).toMatchObject({ exitCode: 8, hosts: [{ host: 'fleet1', outcome: 'failed' }, { host: 'fleet2', outcome: 'not-started' }] });
      expect(fleet1.workerUnit(1).state).toBe('failed');
      expect(sim.historyOf('fleet1')).toMatchObject([{ to: 'v1.5.1-badhealth', outcome: 'failed' }]);
      expect(sim.host('fleet2').changes().map((c) => c.step)).toEqual(['take the deploy lock', 'release the deploy lock']);
      expect(fleet1.fs.exists(lockFile)).toBe(false);
    });

    // BUG (src/deploy/fleet.ts runHost, RollbackFailedError): the message is `${host}: ${error.message}`,
    // and the gate error's message already starts with the host: "voxops: fleet1: fleet1: worker 1 ...".
    // (src/deploy/role-operation.ts does the same for api/dialler.)
    it.fails('names the host once', () => {
      expect(run.error).toMatch(/^voxops: fleet1: worker 1 /);
    });
  });

  // BUG (src/deploy/fleet.ts runHost): a worker whose unit systemd fails to start on the new release
  // is not treated like a failed gate. Today: exit 5 ("restart voxcore@1 failed"), no Next hint, no
  // rollback: the checkout stays on v1.5.0 with workers 2-4 on v1.4.2, worker 1 down (unit failed),
  // and /tmp/voxcore_1.sock.draining left behind. Expected (README, "If a gate fails, the host is
  // rolled back"): the host goes back to v1.4.2, worker 1 serves again, exit 4.
  it.fails('rolls the host back when a worker fails to start on the new release (exit 4)', async () => {
    const { sim, fleet1 } = twoFleetHosts();
    fleet1.workerUnit(1).nextStarts = ['fail'];

    const run = await voxops(sim, ['deploy', 'fleet', '--tag', 'v1.5.0']);

    expect(fleet1.releaseIn(FLEET.path)).toBe('v1.4.2');
    expect(fleet1.workers().map((w) => [w.status, w.version])).toEqual(Array(4).fill([200, 'v1.4.2']));
    expect(fleet1.drainLeftovers()).toEqual([]);
    expect(run.exitCode).toBe(4);
    expect(run.error).toMatch(/Next: /);
  });

  it('refuses to start while another run holds a lock, and changes nothing (exit 3)', async () => {
    const { sim, fleet1, fleet2 } = twoFleetHosts();
    sim.lock('fleet2');

    const run = await voxops(sim, ['deploy', 'fleet', '--tag', 'v1.5.0', '--json']);

    expect(run.exitCode).toBe(3);
    expect(run.error).toMatch(
      /^voxops: lock on fleet2 is held by alice@jenkins-7 \(pid 4242, deploy v1\.5\.0, since 2025-06-02T08:50:00\.000Z, build https:\/\/jenkins\.example\.com\/job\/voxops\/81\/\)\. Next: wait for it to finish \(held for \d+ h \d+ min\), or if it is dead: voxops lock status, then voxops lock release --force$/,
    );
    expect(run.summary).toMatchObject({ exitCode: 3 });
    for (const host of [fleet1, fleet2]) expect(host.changes()).toEqual([]);
    expect(JSON.parse(fleet2.fs.read(lockFile))).toMatchObject({ user: 'alice' });
    expect(fleet1.fs.exists(lockFile)).toBe(false);
  });

  it('--dry-run runs only read-only steps, takes no lock and prints the plan', async () => {
    const { sim, fleet1, fleet2 } = twoFleetHosts();
    const before = pids(fleet1);

    const run = await voxops(sim, ['deploy', 'fleet', '--tag', 'v1.5.0', '--dry-run', '--json']);

    expect(run.exitCode, run.stderr).toBe(0);
    for (const host of [fleet1, fleet2]) {
      expect(host.log.length).toBeGreaterThan(0);
      expect(host.changes()).toEqual([]);
      expect(host.fs.exists(lockFile)).toBe(false);
      expect(host.releaseIn(FLEET.path)).toBe('v1.4.2');
    }
    expect(pids(fleet1)).toEqual(before);
    const plan = eventsOf(run, 'command').filter((e) => e.host === 'fleet1').map((e) => e.command);
    expect(plan).toContain('git -C /opt/voxcore checkout --quiet --force --detach refs/tags/v1.5.0 && rm -f -- /opt/voxcore/.voxops-release');
    expect(plan).toContain('cd /opt/voxcore && uv sync --frozen');
    expect(plan).toContain('{ test -S /tmp/voxcore_2.sock && mv -T -- /tmp/voxcore_2.sock /tmp/voxcore_2.sock.draining && touch -- /tmp/voxcore_2.sock && chown --reference=/tmp/voxcore_2.sock.draining -- /tmp/voxcore_2.sock; } || test -S /tmp/voxcore_2.sock.draining');
    expect(plan).toContain('systemctl restart -- voxcore@4');
    expect(run.events[0]).toMatchObject({ type: 'start', dryRun: true });
    expect(run.summary!.hosts.map((h) => h.outcome)).toEqual(['planned', 'planned']);
  });

  it('refuses an unknown tag before touching any host (exit 7)', async () => {
    const { sim, fleet1, fleet2 } = twoFleetHosts();

    const run = await voxops(sim, ['deploy', 'fleet', '--tag', 'v9.9.9']);

    expectRefusal(
      run,
      7,
      [
        'voxops: preflight refused the deploy: 2 problem(s); nothing was changed. Next: check the tag name; the tags are listed by: git ls-remote --tags git@git.example.com:vox/vox-agents.git',
        '  - fleet1: tag v9.9.9 does not exist in origin',
        '  - fleet2: tag v9.9.9 does not exist in origin',
      ],
      [fleet1, fleet2],
    );
  });

  it('refuses a host with an unhealthy worker (exit 7), and goes ahead with --allow-unhealthy, restarting it', async () => {
    const { sim, fleet1 } = twoFleetHosts();
    fleet1.crash(fleet1.workerUnit(3));

    const unhealthy = "fleet1: worker 3 (voxcore@3, failed) is unhealthy: curl: (7) Failed to connect to localhost port 80 after 0 ms: Couldn't connect to server";
    await expectOverridableRefusal(
      sim,
      ['deploy', 'fleet', '--tag', 'v1.5.0'],
      '--allow-unhealthy',
      {
        stderr: ['voxops: preflight refused the deploy: 1 problem(s); nothing was changed. Next: fix the problems above (voxops status shows the fleet), then re-run', `  - ${unhealthy}`],
        hosts: [fleet1],
      },
      unhealthy,
    );
    expect(fleet1.workers().map((w) => [w.status, w.version])).toEqual(Array(4).fill([200, 'v1.5.0']));
    expect(fleet1.workerUnit(3).state).toBe('active');
  });

  it('stops with exit 6 when a host drops the connection mid-roll, and says its lock may be left', async () => {
    const { sim, fleet1 } = twoFleetHosts();
    // the connection dies as soon as worker 2 has been drained
    const run = await voxops(sim, ['deploy', 'fleet', '--tag', 'v1.5.0', '--json'], {
      onEvent: (e) => {
        if (e.type === 'worker' && e.host === 'fleet1' && e.worker === 2 && e.phase === 'drained') fleet1.link.lostAfterCommands = fleet1.link.commands;
      },
    });

    expect(run.exitCode).toBe(6);
    expect(run.error).toBe('voxops: fleet1: SSH connection lost during a command (read ECONNRESET)');
    expect(eventsOf(run, 'warning').map((e) => e.message)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^could not record history: fleet1: SSH connection lost/), 'could not release the lock on fleet1: run voxops lock release']),
    );
    expect(fleet1.fs.exists(lockFile)).toBe(true);
    expect(sim.host('fleet2').changes().map((c) => c.step)).toEqual(['take the deploy lock', 'release the deploy lock']);
  });
});
