import { describe, expect, it } from 'vitest';
import { lockFile } from '../../../src/commands/state.js';
import { eventsOf, voxops } from '../support/cli.js';
import { FLEET, Sim } from '../support/sim.js';

/**
 * What happens to a worker whose call outlasts the drain timeout, and to a run that is interrupted.
 * Calls end by probe counts (never by time), so these pass whether voxops sleeps on the real clock
 * (today: each --drain-timeout 1 costs one real second) or on the injected virtual one.
 */
function oneFleetHost() {
  const sim = new Sim();
  return { sim, fleet1: sim.addFleetHost('fleet1') };
}

const phasesOf = (run: Awaited<ReturnType<typeof voxops>>, worker: number) => eventsOf(run, 'worker').filter((e) => e.worker === worker).map((e) => e.phase);

describe('a call that outlasts the drain timeout', () => {
  it('--on-drain-timeout skip: the worker goes back in rotation on the old release, serving its call (exit 9)', async () => {
    const { sim, fleet1 } = oneFleetHost();
    const caller = fleet1.startCall(2, Infinity);

    const run = await voxops(sim, ['deploy', 'fleet', '--tag', 'v1.5.0', '--drain-timeout', '1', '--on-drain-timeout', 'skip', '--json']);

    expect(run.exitCode).toBe(9);
    expect(run.error).toBe(
      'voxops: fleet1: worker 2 still held a call after two drain timeouts; it stays on v1.4.2 and serving. Next: finish it when the call ends: voxops restart fleet --host fleet1 --worker 2',
    );
    // skipped, retried after the others, skipped again
    expect(phasesOf(run, 2)).toEqual(['drained', 'skipped', 'drained', 'skipped']);
    expect(fleet1.worker(2)).toBe(caller);
    expect(caller.call).toBeDefined();
    expect(fleet1.workers().map((w) => w.version)).toEqual(['v1.5.0', 'v1.4.2', 'v1.5.0', 'v1.5.0']);
    expect(fleet1.workers()[1]).toMatchObject({ status: 200, pid: caller.pid, activeCalls: 1 });
    expect(fleet1.ran()).not.toContain('systemctl restart -- voxcore@2');
    expect(fleet1.dropped).toEqual([]);
    expect(fleet1.drainLeftovers()).toEqual([]);
    expect(fleet1.fs.exists(lockFile)).toBe(false);
    expect(sim.historyOf('fleet1')).toMatchObject([{ to: 'v1.5.0', outcome: 'failed' }]);
  });

  it('--on-drain-timeout force: the worker is restarted anyway and its call is dropped', async () => {
    const { sim, fleet1 } = oneFleetHost();
    const caller = fleet1.startCall(2, Infinity);

    const run = await voxops(sim, ['deploy', 'fleet', '--tag', 'v1.5.0', '--drain-timeout', '1', '--on-drain-timeout', 'force', '--json']);

    expect(run.exitCode, run.stderr).toBe(0);
    expect(eventsOf(run, 'worker').find((e) => e.worker === 2 && e.phase === 'forced')?.message).toBe(
      'still in a call after 1s; restarting anyway (--on-drain-timeout force): that call is dropped',
    );
    expect(fleet1.dropped).toEqual([`voxcore@2 (pid ${caller.pid})`]);
    expect(fleet1.workers().map((w) => [w.status, w.version])).toEqual(Array(4).fill([200, 'v1.5.0']));
  });

  it('--on-drain-timeout wait: warns and keeps waiting until the call ends, then rolls the worker', async () => {
    const { sim, fleet1 } = oneFleetHost();
    const caller = fleet1.startCall(2, Infinity);

    const run = await voxops(sim, ['deploy', 'fleet', '--tag', 'v1.5.0', '--drain-timeout', '1', '--on-drain-timeout', 'wait', '--json'], {
      // the caller hangs up once voxops has said it is still waiting
      onEvent: (e) => {
        if (e.type === 'warning' && e.message.includes('still waiting') && caller.call) caller.call.remaining = 0;
      },
    });

    expect(run.exitCode, run.stderr).toBe(0);
    expect(eventsOf(run, 'warning').map((e) => e.message)).toEqual(['worker 2 still in a call after 1s; still waiting']);
    expect(phasesOf(run, 2)).toEqual(['drained', 'idle', 'restarted', 'healthy']);
    expect(fleet1.dropped).toEqual([]);
    expect(fleet1.workers().map((w) => w.version)).toEqual(Array(4).fill('v1.5.0'));
  });
});

describe('a hung worker', () => {
  // real time today: 10 s (HUNG_AFTER_MS in src/deploy/roll-worker.ts is measured with Date.now)
  it('that accepts but never answers /health is restarted once it has been silent for 10 s', async () => {
    const { sim, fleet1 } = oneFleetHost();
    const hung = fleet1.worker(2)!;
    hung.hung = true;

    const run = await voxops(sim, ['restart', 'fleet', '--host', 'fleet1', '--worker', '2', '--json']);

    expect(run.exitCode, run.stderr).toBe(0);
    expect(eventsOf(run, 'worker').find((e) => e.phase === 'forced')?.message).toBe('no answer to /health for 10s: the process is hung, restarting it');
    expect(fleet1.worker(2)!.pid).not.toBe(hung.pid);
    expect(fleet1.workers()[1]).toMatchObject({ status: 200, version: 'v1.4.2' });
  }, 30_000);
});

describe('Ctrl-C', () => {
  it('stops at the next safe point: the waiting worker goes back unchanged, every worker serves, the lock is released (exit 130)', async () => {
    const { sim, fleet1 } = oneFleetHost();
    const caller = fleet1.startCall(3, Infinity);
    const listeners = process.listeners('SIGINT');

    const run = await voxops(sim, ['deploy', 'fleet', '--tag', 'v1.5.0', '--json'], {
      onEvent: (e) => {
        if (e.type === 'worker' && e.worker === 3 && e.phase === 'drained') process.emit('SIGINT', 'SIGINT');
      },
    });

    expect(process.listeners('SIGINT')).toEqual(listeners);
    expect(run.exitCode).toBe(130);
    expect(run.stderr).toContain('voxops: SIGINT: stopping at the next safe point (no worker is left drained; locks are released)');
    expect(run.error).toBe(
      'voxops: interrupted: fleet1 worker 3 was put back in rotation unchanged; every worker is serving, some may run v1.5.0 and some v1.4.2. Next: finish: voxops deploy fleet --tag v1.5.0, or undo: voxops rollback fleet --to v1.4.2',
    );
    expect(phasesOf(run, 3)).toEqual(['drained', 'undrained']);
    expect(fleet1.workers().map((w) => [w.status, w.version])).toEqual([
      [200, 'v1.5.0'],
      [200, 'v1.5.0'],
      [200, 'v1.4.2'],
      [200, 'v1.4.2'],
    ]);
    expect(fleet1.worker(3)).toBe(caller);
    expect(fleet1.dropped).toEqual([]);
    expect(fleet1.drainLeftovers()).toEqual([]);
    expect(fleet1.fs.exists(lockFile)).toBe(false);
    expect(fleet1.releaseIn(FLEET.path)).toBe('v1.5.0');
    expect(sim.historyOf('fleet1')).toMatchObject([{ to: 'v1.5.0', outcome: 'interrupted' }]);
    expect(run.summary).toMatchObject({ exitCode: 130 });
  });
});
