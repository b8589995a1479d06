import { describe, expect, it } from 'vitest';
import { progressFile, lockFile } from '../../../src/commands/state.js';
import type { OperationEvent } from '../../../src/events.js';
import { eventsOf, voxops } from '../support/cli.js';
import { Sim } from '../support/sim.js';

/** voxops options: Ctrl-C the moment worker 3 (of `host`, or of any host) is drained. */
function ctrlCWhenDrained(host?: string) {
  return {
    onEvent: (e: OperationEvent) => {
      if (e.type === 'worker' && (host === undefined || e.host === host) && e.worker === 3 && e.phase === 'drained')
        process.emit('SIGINT', 'SIGINT');
    },
  };
}

/** One fleet host of four workers on v1.4.2; worker 3 holds a call that lasts until the test ends it. */
function fleetWithLongCall() {
  const sim = new Sim();
  const fleet1 = sim.addFleetHost('fleet1');
  const caller = fleet1.startCall(3, Infinity);
  return { sim, fleet1, caller };
}

describe('--resume', () => {
  it('finishes an interrupted deploy: no second install, only the workers not yet on the tag, history from the release before it', async () => {
    const { sim, fleet1, caller } = fleetWithLongCall();
    const first = await voxops(sim, ['deploy', 'fleet', '--tag', 'v1.5.0', '--schedule', 'one-at-a-time', '--json'], ctrlCWhenDrained());
    expect(first.exitCode).toBe(130);
    expect(JSON.parse(fleet1.fs.read(progressFile))).toMatchObject({
      role: 'fleet',
      action: 'deploy',
      from: 'v1.4.2',
      to: 'v1.5.0',
      installed: expect.stringMatching(/^[0-9a-f]{40}$/),
    });

    // a plain re-run is told about the interrupted one
    const plain = await voxops(sim, ['deploy', 'fleet', '--tag', 'v1.5.0', '--dry-run', '--json']);
    expect(eventsOf(plain, 'warning').map((e) => e.message)).toContainEqual(expect.stringContaining('--tag v1.5.0 --resume continues it'));

    caller.call = { remaining: 2 };
    const before = fleet1.log.length;
    const resumed = await voxops(sim, ['deploy', 'fleet', '--tag', 'v1.5.0', '--resume', '--json']);
    expect(resumed.exitCode, resumed.stderr).toBe(0);
    const sent = fleet1.log.slice(before).map((c) => c.step);
    expect(sent).not.toContain('install');
    expect(sent.filter((s) => s.startsWith('restart voxcore@')).sort()).toEqual(['restart voxcore@3', 'restart voxcore@4']);
    expect(fleet1.workers().map((w) => w.version)).toEqual(Array(4).fill('v1.5.0'));
    expect(fleet1.dropped).toEqual([]);
    // the history says what the host ran before the deploy, so last-known-good stays v1.4.2
    expect(sim.historyOf('fleet1').at(-1)).toMatchObject({ action: 'deploy', from: 'v1.4.2', to: 'v1.5.0', outcome: 'success' });
    expect(fleet1.fs.exists(progressFile)).toBe(false);
    expect(fleet1.fs.exists(lockFile)).toBe(false);
  });

  it('leaves alone a host that finished before the run stopped, and keeps the record it continues when stopped again', async () => {
    const sim = new Sim();
    const fleet1 = sim.addFleetHost('fleet1');
    const fleet2 = sim.addFleetHost('fleet2');
    const caller = fleet2.startCall(3, Infinity);
    const first = await voxops(sim, ['deploy', 'fleet', '--tag', 'v1.5.0', '--json'], ctrlCWhenDrained('fleet2'));
    expect(first.exitCode).toBe(130);
    expect(first.error).toContain('Next: finish: voxops deploy fleet --tag v1.5.0 --resume, or undo');
    expect(fleet1.fs.exists(progressFile)).toBe(false);
    const record = JSON.parse(fleet2.fs.read(progressFile));

    // resumed, and stopped again before the call ends: the record is the first run's, under the new run
    const fleet1Sent = fleet1.log.length;
    const again = await voxops(sim, ['deploy', 'fleet', '--tag', 'v1.5.0', '--resume', '--json'], ctrlCWhenDrained('fleet2'));
    expect(again.exitCode).toBe(130);
    expect(
      fleet1.log
        .slice(fleet1Sent)
        .filter((c) => !c.readOnly)
        .map((c) => c.step),
    ).toEqual([]);
    expect(eventsOf(again, 'info').map((e) => e.message)).toContain('every worker already serves v1.5.0; nothing to do');
    const kept = JSON.parse(fleet2.fs.read(progressFile));
    expect(kept).toEqual({ ...record, run: expect.not.stringMatching(record.run) });
    expect(kept.installed).toMatch(/^[0-9a-f]{40}$/);

    caller.call = { remaining: 2 };
    const last = await voxops(sim, ['deploy', 'fleet', '--tag', 'v1.5.0', '--resume', '--json']);
    expect(last.exitCode, last.stderr).toBe(0);
    expect([...fleet1.workers(), ...fleet2.workers()].map((w) => w.version)).toEqual(Array(8).fill('v1.5.0'));
    expect(fleet2.dropped).toEqual([]);
  });

  it('a resumed run that must install again (the checkout moved) forgets the old install: killed mid-install, the next resume installs', async () => {
    const { sim, fleet1, caller } = fleetWithLongCall();
    const first = await voxops(sim, ['deploy', 'fleet', '--tag', 'v1.5.0', '--schedule', 'one-at-a-time', '--json'], ctrlCWhenDrained());
    expect(first.exitCode).toBe(130);
    expect(JSON.parse(fleet1.fs.read(progressFile)).installed).toMatch(/^[0-9a-f]{40}$/);
    // somebody checked out the old release by hand: the record's install no longer describes the tree
    const clone = fleet1.cloneAt('/opt/voxcore')!;
    clone.head = clone.tags.get('v1.4.2')!;
    fleet1.failSteps.set('install', 1);

    const again = await voxops(sim, ['deploy', 'fleet', '--tag', 'v1.5.0', '--resume', '--json']);
    expect(again.exitCode).toBe(5);
    expect(JSON.parse(fleet1.fs.read(progressFile)).installed).toBeUndefined();

    caller.call = { remaining: 2 };
    const before = fleet1.log.length;
    const last = await voxops(sim, ['deploy', 'fleet', '--tag', 'v1.5.0', '--resume', '--json']);
    expect(last.exitCode, last.stderr).toBe(0);
    expect(fleet1.log.slice(before).map((c) => c.step)).toContain('install');
    expect(fleet1.workers().map((w) => w.version)).toEqual(Array(4).fill('v1.5.0'));
  });

  it('refuses --resume on a restart, which has nothing to continue (exit 2)', async () => {
    const sim = new Sim();
    sim.addFleetHost('fleet1');
    const run = await voxops(sim, ['restart', 'fleet', '--resume']);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain('--resume continues a deploy or rollback; a restart has nothing to continue');
  });

  it('puts a socket a killed run left moved aside back in rotation before the roll', async () => {
    const sim = new Sim();
    const fleet1 = sim.addFleetHost('fleet1');
    // what a SIGKILL right after a drain leaves: the socket moved aside, a placeholder at the real path
    const socket = fleet1.socketOf(2);
    fleet1.fs.rename(socket, `${socket}.draining`);
    fleet1.fs.write(socket, '');

    const run = await voxops(sim, ['deploy', 'fleet', '--tag', 'v1.5.0', '--json']);

    expect(run.exitCode, run.stderr).toBe(0);
    expect(eventsOf(run, 'warning').map((e) => e.message)).toContainEqual(
      expect.stringContaining('worker 2 left moved aside by an interrupted run'),
    );
    expect(fleet1.drainLeftovers()).toEqual([]);
    expect(fleet1.workers().map((w) => w.version)).toEqual(Array(4).fill('v1.5.0'));
  });
});

describe('locks are leases', () => {
  const held = (sim: Sim, idleSeconds: number) => {
    const holder = sim.lock('fleet1', { id: 'dead00beef', leaseSeconds: 120 });
    // the holder last renewed it this long ago, by the host's clock
    sim.host('fleet1').fs.touch(lockFile);
    sim.clock.advance(idleSeconds * 1000);
    return holder;
  };

  it('refuses a lock its holder still renews, and says when it frees itself', async () => {
    const sim = new Sim();
    const fleet1 = sim.addFleetHost('fleet1');
    held(sim, 30);
    const run = await voxops(sim, ['deploy', 'fleet', '--tag', 'v1.5.0']);
    expect(run.exitCode).toBe(3);
    expect(run.error).toMatch(/--lock-wait <seconds>/);
    expect(fleet1.changes()).toEqual([]);
    const status = await voxops(sim, ['lock', 'status']);
    expect(status.stdout).toMatch(/fleet1: locked by alice@jenkins-7 .*expires 90s from now unless its holder renews it/);
  });

  it('takes over a lock whose holder stopped renewing it', async () => {
    const sim = new Sim();
    const fleet1 = sim.addFleetHost('fleet1');
    held(sim, 150);
    const run = await voxops(sim, ['deploy', 'fleet', '--tag', 'v1.5.0', '--json']);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(eventsOf(run, 'warning').map((e) => e.message)).toContainEqual(
      expect.stringMatching(/the lock of alice@jenkins-7 .*EXPIRED 30s ago: its holder stopped renewing it: this run takes it over/),
    );
    expect(fleet1.changes().map((c) => c.step)).toContain('take over the expired deploy lock');
    expect(fleet1.fs.exists(lockFile)).toBe(false);
    expect(fleet1.workers().map((w) => w.version)).toEqual(Array(4).fill('v1.5.0'));
  });

  it('--lock-wait waits for a held lock to go, then runs', async () => {
    const sim = new Sim();
    const fleet1 = sim.addFleetHost('fleet1');
    held(sim, 0);
    let reads = 0;
    const run = await voxops(sim, ['deploy', 'fleet', '--tag', 'v1.5.0', '--lock-wait', '60', '--json'], {
      onCommand: (host, step) => {
        // the other run finishes while this one waits
        if (host === 'fleet1' && step === 'read the deploy lock' && ++reads === 3) fleet1.fs.remove(lockFile, false);
      },
    });
    expect(run.exitCode, run.stderr).toBe(0);
    expect(reads).toBeGreaterThanOrEqual(3);
    expect(fleet1.workers().map((w) => w.version)).toEqual(Array(4).fill('v1.5.0'));
  });

  it('--lock-wait gives up after its time with the holder named (exit 3)', async () => {
    const sim = new Sim();
    sim.addFleetHost('fleet1');
    held(sim, 0);
    const run = await voxops(sim, ['deploy', 'fleet', '--tag', 'v1.5.0', '--lock-wait', '20']);
    expect(run.exitCode).toBe(3);
    expect(run.error).toMatch(/^voxops: lock on fleet1 is held by alice@jenkins-7/);
  });
});
