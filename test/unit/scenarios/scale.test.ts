import { describe, expect, it } from 'vitest';
import { upstreamSockets } from '../../../src/commands/nginx.js';
import { lockFile } from '../../../src/commands/state.js';
import { eventsOf, voxops, type Run } from '../support/cli.js';
import { expectRefusal } from '../support/expect.js';
import type { SimHost } from '../support/host.js';
import { FLEET, Sim } from '../support/sim.js';

/*
 * `voxops scale fleet` when it does not go smoothly: a removed worker whose call outlasts the drain
 * and the resumed shrink, a new worker that fails, nginx refusing a reload, the check through nginx,
 * Ctrl-C, and every refusal before a change.
 */

function fourWorkers(options: { serverParams?: string } = {}) {
  const sim = new Sim();
  return { sim, fleet1: sim.addFleetHost('fleet1', { workers: 4, ...options }) };
}

const scale = (sim: Sim, to: number, flags: readonly string[] = [], options: Parameters<typeof voxops>[2] = {}) =>
  voxops(sim, ['scale', 'fleet', '--host', 'fleet1', '--workers', String(to), '--json', ...flags], options);

/** What the host says about its worker count: env file, enabled units, the upstream nginx runs. */
function countsOf(host: SimHost) {
  return {
    variable: host.envValue(FLEET.envFile, FLEET.countVariable),
    enabled: [...host.units.values()]
      .filter((u) => u.name.startsWith('voxcore@') && u.enabled)
      .map((u) => u.name)
      .sort(),
    file: upstreamSockets(host.fs.read(FLEET.nginxConfig), FLEET.upstream)?.length,
    loaded: host.nginx!.loadedSockets.length,
  };
}

const counts = (variable: number, enabled: number, file: number, loaded = file) => ({
  variable: String(variable),
  enabled: Array.from({ length: enabled }, (_, i) => `voxcore@${i + 1}`),
  file,
  loaded,
});

const phases = (run: Run, worker: number) =>
  eventsOf(run, 'worker')
    .filter((e) => e.worker === worker)
    .map((e) => e.phase);
const infos = (run: Run) => eventsOf(run, 'info').map((e) => e.message);

describe('scale fleet: shrinking', () => {
  it('leaves a removed worker whose call outlasts the drain running out of rotation (exit 9), and a second run finishes the shrink', async () => {
    const { sim, fleet1 } = fourWorkers();
    const caller = fleet1.startCall(4, Infinity);
    const pids = fleet1.workers().map((w) => w.pid);

    const first = await scale(sim, 3, ['--drain-timeout', '2']);

    expect(first.exitCode).toBe(9);
    expect(first.error).toBe(
      'voxops: fleet1: voxcore@4 still held a call after 2s; left running out of nginx rotation (its call goes on). VOXCORE_WORKERS is still 4 and the other workers were not restarted. Next: when its call has ended, finish with: voxops scale fleet --host fleet1 --workers 3',
    );
    expect(phases(first, 4)).toEqual(['drained', 'undrained']);
    // nginx already sends calls to 3 workers; worker 4 keeps its call; nothing else moved
    expect(countsOf(fleet1)).toEqual({ ...counts(4, 4, 3), variable: '4' });
    expect(fleet1.worker(4)).toBe(caller);
    expect(fleet1.workers().map((w) => w.pid)).toEqual(pids);
    expect(fleet1.dropped).toEqual([]);
    expect(fleet1.drainLeftovers()).toEqual([]);
    expect(sim.historyOf('fleet1')).toMatchObject([{ action: 'scale', outcome: 'failed' }]);

    // the call ends; the same command picks up where the first stopped
    caller.call = undefined;
    const second = await scale(sim, 3);

    expect(second.exitCode, second.stderr).toBe(0);
    expect(infos(second)).toContain(
      'on v1.4.2, 4 workers (resuming a shrink: still to remove 4); nginx fail_timeout paces the restarts: 0s per worker',
    );
    expect(phases(second, 4)).toEqual(['drained', 'idle', 'removed']);
    expect(countsOf(fleet1)).toEqual(counts(3, 3, 3));
    expect(fleet1.workers().map((w) => [w.status, w.workers])).toEqual(Array(3).fill([200, 3]));
    expect(fleet1.dropped).toEqual([]);
  });

  it('without --drain-timeout, says to give one when it finishes the shrink', async () => {
    const { sim, fleet1 } = fourWorkers();
    fleet1.startCall(4, Infinity);
    sim.configure((doc) => (doc.roles.fleet.drain.timeoutSeconds = 1));

    const run = await scale(sim, 3);

    expect(run.exitCode).toBe(9);
    expect(run.error).toMatch(
      /\. Next: when its call has ended, finish with: voxops scale fleet --host fleet1 --workers 3 --drain-timeout <seconds>$/,
    );
  });

  it('stops at once a removed worker that died (and lost its socket) after the preflight', async () => {
    const { sim, fleet1 } = fourWorkers();

    const run = await scale(sim, 3, [], {
      onEvent: (e) => {
        if (e.type !== 'step' || e.status !== 'start' || !e.step.startsWith('new upstream')) return;
        fleet1.crash(fleet1.workerUnit(4));
        fleet1.fs.remove(fleet1.socketOf(4), false);
      },
    });

    expect(run.exitCode, run.stderr).toBe(0);
    expect(eventsOf(run, 'worker').find((e) => e.worker === 4 && e.phase === 'drained')?.message).toBe('no socket: it was not serving');
    expect(phases(run, 4)).toEqual(['drained', 'removed']);
    expect(countsOf(fleet1)).toEqual(counts(3, 3, 3));
  });

  it('Ctrl-C while a removed worker waits for its call: it is put back, still running out of rotation (exit 130)', async () => {
    const { sim, fleet1 } = fourWorkers();
    const caller = fleet1.startCall(4, Infinity);

    const run = await scale(sim, 3, [], {
      onEvent: (e) => {
        if (e.type === 'worker' && e.worker === 4 && e.phase === 'drained') process.emit('SIGINT', 'SIGINT');
      },
    });

    expect(run.exitCode).toBe(130);
    expect(run.error).toBe(
      'voxops: interrupted: fleet1 is half scaled: nginx sends calls to 3 workers, the removed ones still running are out of rotation. Next: voxops scale fleet --host fleet1 --workers 3',
    );
    expect(fleet1.worker(4)).toBe(caller);
    expect(countsOf(fleet1)).toEqual({ ...counts(4, 4, 3), variable: '4' });
    expect(fleet1.drainLeftovers()).toEqual([]);
    expect(fleet1.fs.exists(lockFile)).toBe(false);
  });

  it('puts the config file back when nginx fails to reload the new upstream (exit 5)', async () => {
    const { sim, fleet1 } = fourWorkers();
    const config = fleet1.fs.read(FLEET.nginxConfig);
    fleet1.nginx!.nextReloads = ['fail'];

    const run = await scale(sim, 3);

    expect(run.exitCode).toBe(5);
    expect(run.error).toMatch(/^voxops: fleet1: reload nginx failed \(exit 1\): .*journalctl -xeu nginx\.service/);
    expect(fleet1.fs.read(FLEET.nginxConfig)).toBe(config);
    expect(countsOf(fleet1)).toEqual(counts(4, 4, 4));
    expect(fleet1.ran()).not.toContain('systemctl disable --now -- voxcore@4');
  });
});

describe('scale fleet: growing', () => {
  it('stops the new workers and puts the count back when one fails its gate (exit 4); nginx never lists them', async () => {
    const { sim, fleet1 } = fourWorkers();
    const config = fleet1.fs.read(FLEET.nginxConfig);
    const pids = fleet1.workers().map((w) => w.pid);
    // worker 6 starts but never answers /health
    const started = fleet1.workerUnit(6);
    fleet1.watchers.push((sent) => {
      if (sent.ran.includes('systemctl enable --now -- voxcore@6')) fleet1.procOf(started)!.hung = true;
    });

    const run = await scale(sim, 6);

    expect(run.exitCode).toBe(4);
    expect(run.error).toMatch(
      /^voxops: fleet1: worker 6 \(voxcore@6\) failed its health gate on v1\.4\.2 after 1s: no answer \(curl: \(28\) Operation timed out/,
    );
    expect(eventsOf(run, 'host').find((e) => e.phase === 'rolling-back')?.message).toBe(
      'stopping voxcore@5, voxcore@6, VOXCORE_WORKERS back to 4',
    );
    expect(phases(run, 5)).toEqual(['started', 'healthy']);
    expect(countsOf(fleet1)).toEqual(counts(4, 4, 4));
    expect(fleet1.fs.read(FLEET.nginxConfig)).toBe(config);
    expect(['voxcore@5', 'voxcore@6'].map((u) => fleet1.unit(u)!.state)).toEqual(['inactive', 'inactive']);
    expect(fleet1.workers().map((w) => w.pid)).toEqual(pids);
    expect(fleet1.ran()).not.toContain('systemctl reload nginx');
  });

  it('Ctrl-C between two new workers stops the one already started (exit 130)', async () => {
    const { sim, fleet1 } = fourWorkers();

    const run = await scale(sim, 6, [], {
      onEvent: (e) => {
        if (e.type === 'worker' && e.worker === 5 && e.phase === 'healthy') process.emit('SIGINT', 'SIGINT');
      },
    });

    expect(run.exitCode).toBe(130);
    expect(run.error).toMatch(/^voxops: interrupted: fleet1 was growing; the new workers were stopped again/);
    expect(countsOf(fleet1)).toEqual(counts(4, 4, 4));
    expect(fleet1.unit('voxcore@5')!.state).toBe('inactive');
    expect(fleet1.unit('voxcore@6')!.state).toBe('inactive');
  });

  it("checks the new count over worker 1's socket when nginx has no free worker, and tells the operator to update the inventory and the ingress", async () => {
    const { sim, fleet1 } = fourWorkers();
    sim.addIngressHost('ingress1');
    // once every worker is back, each takes a call: nginx answers 502 to the check
    const run = await scale(sim, 5, [], {
      onEvent: (e) => {
        if (e.type === 'worker' && e.worker === 4 && e.phase === 'healthy') for (const w of [1, 2, 3, 4, 5]) fleet1.startCall(w, Infinity);
      },
    });

    expect(run.exitCode, run.stderr).toBe(0);
    expect(infos(run)).toContain(
      "/health/fleet over worker 1's socket (nginx had no free worker: all busy): expected_workers 5, capacity 5",
    );
    expect(eventsOf(run, 'warning').map((e) => e.message)).toEqual([
      expect.stringMatching(
        /^set workers: 5 for fleet1 in \S+ \(environments\.test\.hosts\.fleet\): it says 4, and deploy\/restart roll the inventory's count; then voxops deploy ingress, so HAProxy's maxconn for fleet1 is 5 too$/,
      ),
    ]);
    expect(fleet1.dropped).toEqual([]);
  });

  it('fails when the fleet does not report the new capacity in time (exit 10)', async () => {
    const { sim, fleet1 } = fourWorkers();
    // a worker dies once the restarts are done
    const run = await scale(sim, 5, [], {
      onEvent: (e) => {
        if (e.type === 'worker' && e.worker === 4 && e.phase === 'healthy') fleet1.crash(fleet1.workerUnit(2));
      },
    });

    expectRefusal(
      run,
      10,
      [
        'voxops: fleet1: GET http://127.0.0.1/health/fleet reports expected_workers 5, capacity 4, not 5. Next: voxops status --host fleet1',
        '  - fleet1: /health/fleet: expected_workers 5, capacity 4',
      ],
      [],
    );
  });
});

describe('scale fleet: the workers that stay', () => {
  it('retries a worker whose call outlasts the drain after the others, and stops when it still holds one (exit 9)', async () => {
    const { sim, fleet1 } = fourWorkers();
    sim.configure((doc) => (doc.roles.fleet.drain = { timeoutSeconds: 1, onTimeout: 'skip' }));
    const caller = fleet1.startCall(2, Infinity);

    const run = await scale(sim, 5);

    expect(run.exitCode).toBe(9);
    expect(run.error).toBe(
      'voxops: fleet1: worker 2 still held a call after two drain timeouts; it serves on, still reading 4 workers. Next: when its call ends: voxops restart fleet --host fleet1 --worker 2',
    );
    expect(phases(run, 2)).toEqual(['drained', 'skipped', 'drained', 'skipped']);
    expect(fleet1.worker(2)).toBe(caller);
    expect(fleet1.workers().map((w) => w.workers)).toEqual([5, 4, 5, 5, 5]);
  });

  it('a worker that does not come back after its restart is named with the scale already done (exit 4)', async () => {
    const { sim, fleet1 } = fourWorkers();
    fleet1.workerUnit(3).nextStarts = ['fail'];

    const run = await scale(sim, 3);

    expect(run.exitCode).toBe(4);
    expect(run.error).toMatch(
      /^voxops: fleet1: worker 3 \(voxcore@3\) did not start on v1\.4\.2: .*; fleet1 is scaled to 3 workers \(VOXCORE_WORKERS=3, nginx updated\), but worker 3 did not come back\. Next: read its log \(voxops logs fleet --host fleet1 --worker 3\), then: voxops restart fleet --host fleet1$/,
    );
    expect(countsOf(fleet1)).toEqual(counts(3, 3, 3));
  });

  it('waits out nginx fail_timeout between the restarts', async () => {
    const { sim, fleet1 } = fourWorkers({ serverParams: 'max_conns=1 max_fails=1 fail_timeout=5s' });
    const healthyAt: number[] = [];

    const run = await scale(sim, 3, [], {
      onEvent: (e) => {
        if (e.type === 'worker' && e.phase === 'healthy') healthyAt.push(sim.clock.now());
      },
    });

    expect(run.exitCode, run.stderr).toBe(0);
    expect(healthyAt).toHaveLength(3);
    expect(healthyAt.slice(1).every((at, i) => at - healthyAt[i]! >= 5_000)).toBe(true);
    expect(fleet1.workers().map((w) => w.workers)).toEqual([3, 3, 3]);
  });
});

describe('scale fleet: nothing to do, dry runs and refusals', () => {
  it('does nothing for the count the host already runs', async () => {
    const { sim, fleet1 } = fourWorkers();

    const run = await scale(sim, 4);

    expect(run.exitCode, run.stderr).toBe(0);
    expect(infos(run)).toContain('fleet1 already runs 4 workers; nothing to do');
    expect(fleet1.changes()).toEqual([]);
  });

  it('a dry run of a grow and of a shrink prints the order of the steps, and changes nothing', async () => {
    const { sim, fleet1 } = fourWorkers({ serverParams: 'max_conns=1 max_fails=1 fail_timeout=5s' });

    const grow = await scale(sim, 5, ['--dry-run']);
    const shrink = await scale(sim, 3, ['--dry-run']);

    expect(fleet1.changes()).toEqual([]);
    const steps = (run: Run) => eventsOf(run, 'command').map((e) => e.step);
    const growing = steps(grow);
    // grow: the upstream tried (and put back), the count, the new unit gated, then the upstream loaded
    expect(growing.indexOf('enable --now voxcore@5')).toBeGreaterThan(growing.indexOf(`set ${FLEET.countVariable}=5 in ${FLEET.envFile}`));
    expect(growing.indexOf(`set ${FLEET.countVariable}=5 in ${FLEET.envFile}`)).toBeGreaterThan(
      growing.indexOf(`restore ${FLEET.nginxConfig} from ${FLEET.nginxConfig}.voxops-prev`),
    );
    expect(growing.lastIndexOf('reload nginx')).toBeGreaterThan(growing.indexOf('enable --now voxcore@5'));
    expect(infos(grow)).toContain('4 -> 5 workers (grow); restart 1, 2, 3, 4 afterwards');
    const shrinking = steps(shrink);
    // shrink: the upstream loaded first, then worker 4 drained and stopped, then the count
    expect(shrinking.indexOf('reload nginx')).toBeLessThan(shrinking.indexOf('disable --now voxcore@4'));
    expect(shrinking.indexOf('disable --now voxcore@4')).toBeLessThan(
      shrinking.indexOf(`set ${FLEET.countVariable}=3 in ${FLEET.envFile}`),
    );
    expect(infos(shrink)).toContain('wait 5s: nginx fail_timeout');
  });

  it('refuses, before any change, a host whose worker count is inconsistent (exit 7)', async () => {
    const { sim, fleet1 } = fourWorkers();
    // a fifth unit somebody enabled and started by hand; nginx does not list it
    fleet1.workerUnit(5).enabled = true;
    fleet1.startUnit(fleet1.workerUnit(5));

    expectRefusal(
      await scale(sim, 6),
      7,
      [
        'voxops: preflight refused the scale of fleet: 2 problem(s); nothing was changed. Next: fix the problems above (voxops status --host fleet1 shows the host), then: voxops scale fleet --host fleet1 --workers 6',
        '  - fleet1: the worker count is inconsistent: VOXCORE_WORKERS=4, enabled units 1,2,3,4,5, upstream voxcore_workers lists workers 1,2,3,4; they must agree before a scale',
        '  - fleet1: voxcore@5 already running though not in use',
      ],
      [fleet1],
    );
  });

  it("refuses when the inventory's nginx file is not the one nginx runs, or has no fleet upstream (exit 7)", async () => {
    const { sim, fleet1 } = fourWorkers();
    // roles.fleet.nginx.config names a copy in sites-available that nginx does not include
    const copy = '/etc/nginx/sites-available/voxcore-fleet.conf';
    sim.configure((doc) => (doc.roles.fleet.nginx.config = copy));
    fleet1.fs.put(copy, fleet1.fs.read(FLEET.nginxConfig).replace(/^ {4}server unix:\/tmp\/voxcore_4\.sock.*\n/m, ''));
    const next =
      'voxops: preflight refused the scale of fleet: 1 problem(s); nothing was changed. Next: fix the problems above (voxops status --host fleet1 shows the host), then: voxops scale fleet --host fleet1 --workers 3';

    expectRefusal(
      await scale(sim, 3),
      7,
      [next, `  - fleet1: upstream voxcore_workers in ${copy} is not what nginx runs (a reload pending?)`],
      [fleet1],
    );

    fleet1.fs.write(copy, 'server {\n    listen 8080;\n}\n');
    expectRefusal(
      await scale(sim, 3),
      7,
      [
        next.replace('1 problem(s)', '2 problem(s)'),
        `  - fleet1: upstream voxcore_workers is not in ${copy} (roles.fleet.nginx.config)`,
        `  - fleet1: cannot rewrite ${copy}: the file has no "upstream voxcore_workers {" line`,
      ],
      [fleet1],
    );
  });

  it('refuses when nginx rejects its configuration as it is (exit 11), when the count is not set or the nginx file is missing (exit 7), and without an env file (exit 2)', async () => {
    const { sim, fleet1 } = fourWorkers();
    fleet1.nginx!.rejects = () => 'nginx: [emerg] unknown directive "serverr" in /etc/nginx/sites-enabled/voxcore-fleet.conf:7';

    expectRefusal(
      await scale(sim, 3),
      11,
      [
        'voxops: fleet1: nginx rejects its configuration as it is now, before any change: nginx: [emerg] unknown directive "serverr" in /etc/nginx/sites-enabled/voxcore-fleet.conf:7; nothing was changed. Next: fix what nginx -t names on fleet1, then: voxops scale fleet --host fleet1 --workers 3',
      ],
      [fleet1],
    );

    fleet1.nginx!.rejects = undefined;
    const env = fleet1.fs.read(FLEET.envFile);
    fleet1.fs.write(FLEET.envFile, env.replace(/^VOXCORE_WORKERS=.*\n/m, ''));
    expectRefusal(
      await scale(sim, 3),
      7,
      [
        'voxops: fleet1: VOXCORE_WORKERS is not set to a worker count in /opt/voxcore/.env; nothing was changed. Next: voxops status --host fleet1',
      ],
      [fleet1],
    );

    fleet1.fs.write(FLEET.envFile, env);
    sim.configure((doc) => (doc.roles.fleet.nginx.config = '/etc/nginx/conf.d/missing.conf'));
    expectRefusal(
      await scale(sim, 3),
      7,
      [
        'voxops: fleet1: /etc/nginx/conf.d/missing.conf (roles.fleet.nginx.config) does not exist; nothing was changed. Next: voxops config check',
      ],
      [fleet1],
    );

    sim.configure((doc) => delete doc.roles.fleet.workers.envFile);
    const noEnv = await scale(sim, 3);
    expect(noEnv.exitCode).toBe(2);
    expect(noEnv.error).toMatch(
      /^voxops: \S+voxops\.yaml: scale needs roles\.fleet\.workers\.envFile \(where VOXCORE_WORKERS is set\)\. Next: add it, then: voxops config check$/,
    );
    expect(fleet1.changes()).toEqual([]);
  });
});
