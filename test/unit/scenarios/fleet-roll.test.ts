import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildDir } from '../../../src/commands/build-cache.js';
import { eventsOf, voxops, type Run } from '../support/cli.js';
import { expectRefusal } from '../support/expect.js';
import type { SimHost } from '../support/host.js';
import { localClones, type LocalClone } from '../support/local-clone.js';
import { FLEET, Sim } from '../support/sim.js';

/*
 * The one-at-a-time roll's other paths through the CLI: batches and nginx fail_timeout pacing,
 * long calls, the rsync source, kept builds and the rollback that restores one, what a worker
 * without a socket does, and what `status` says of a fleet host that does not add up.
 */

const phases = (run: Run, worker: number) =>
  eventsOf(run, 'worker')
    .filter((e) => e.worker === worker)
    .map((e) => e.phase);
const infos = (run: Run) => eventsOf(run, 'info').map((e) => e.message);
const installed = (host: SimHost) => host.fs.read(`${FLEET.path}/.venv/installed-version`).trim();

describe('batches and pacing', () => {
  it('--batch 2 rolls two workers at a time and waits out nginx fail_timeout before the next two', async () => {
    const sim = new Sim();
    const fleet1 = sim.addFleetHost('fleet1', { serverParams: 'max_conns=1 max_fails=1 fail_timeout=3s' });
    const at = new Map<string, number>();

    const run = await voxops(sim, ['deploy', 'fleet', '--tag', 'v1.5.0', '--batch', '2', '--json'], {
      onEvent: (e) => {
        if (e.type === 'worker') at.set(`${e.worker} ${e.phase}`, sim.clock.now());
      },
    });

    expect(run.exitCode, run.stderr).toBe(0);
    expect(infos(run)).toEqual(
      expect.arrayContaining([
        'on v1.4.2, 4 workers, 20000 MiB free; nginx fail_timeout paces the roll: 3s per worker (max_fails=0 on the upstream servers removes it)',
        'worker 1, 2 back in nginx rotation in 3.0s (fail_timeout)',
        'worker 3, 4 back in nginx rotation in 3.0s (fail_timeout)',
      ]),
    );
    // 1 and 2 out together; 3 and 4 only once 1 and 2 are back in rotation
    expect(at.get('1 drained')).toBe(at.get('2 drained'));
    expect(at.get('3 drained')! - Math.max(at.get('1 healthy')!, at.get('2 healthy')!)).toBeGreaterThanOrEqual(3_000);
    for (const w of run.summary!.workers) expect(w.inRotationAt! - w.healthyAt!).toBeGreaterThanOrEqual(3_000);
    expect(fleet1.workers().map((w) => w.version)).toEqual(Array(4).fill('v1.5.0'));
    expect(fleet1.dropped).toEqual([]);
  });

  it('a dry run names the batches and the fail_timeout wait after each', async () => {
    const sim = new Sim();
    sim.addFleetHost('fleet1', { serverParams: 'max_conns=1 max_fails=1 fail_timeout=3s' });

    const run = await voxops(sim, ['deploy', 'fleet', '--tag', 'v1.5.0', '--batch', '3', '--dry-run', '--json']);

    expect(run.exitCode, run.stderr).toBe(0);
    expect(infos(run).filter((m) => m.startsWith('batches') || m.startsWith('wait '))).toEqual([
      'batches [[1,2,3],[4]]',
      'wait 3s: nginx fail_timeout keeps the worker out of rotation after its drain',
      'wait 3s: nginx fail_timeout keeps the worker out of rotation after its drain',
    ]);
  });

  it('looks at a long call less and less often: every poll at first, then every 250 ms, then every second', async () => {
    const sim = new Sim();
    const fleet1 = sim.addFleetHost('fleet1', { workers: 1 });
    // a call that outlasts many looks
    fleet1.startCall(1, 740);
    const looks: number[] = [];
    fleet1.watchers.push((sent) => {
      if (sent.step === 'GET /health over /tmp/voxcore_1.sock.draining') looks.push(sim.clock.now());
    });

    const run = await voxops(sim, ['deploy', 'fleet', '--tag', 'v1.5.0', '--drain-timeout', '600', '--json']);

    expect(run.exitCode, run.stderr).toBe(0);
    const start = looks[0]!;
    const gaps = looks.slice(1).map((t, i) => ({ after: looks[i]! - start, gap: t - looks[i]! }));
    expect(new Set(gaps.filter((g) => g.after < 4_900).map((g) => g.gap))).toEqual(new Set([10]));
    expect(new Set(gaps.filter((g) => g.after >= 5_100 && g.after < 59_000).map((g) => g.gap))).toEqual(new Set([250]));
    expect(new Set(gaps.filter((g) => g.after >= 60_100).map((g) => g.gap))).toEqual(new Set([1_000]));
    expect(fleet1.dropped).toEqual([]);
  });

  it('restarts a worker that has no socket at all without waiting for a call', async () => {
    const sim = new Sim();
    const fleet1 = sim.addFleetHost('fleet1');
    fleet1.crash(fleet1.workerUnit(2));
    fleet1.fs.remove(fleet1.socketOf(2), false);

    const run = await voxops(sim, ['restart', 'fleet', '--host', 'fleet1', '--worker', '2', '--json']);

    expect(run.exitCode, run.stderr).toBe(0);
    expect(phases(run, 2)).toEqual(['drained', 'restarted', 'healthy']);
    expect(eventsOf(run, 'worker')[0]!.message).toBe('no socket: the worker was not serving');
    expect(fleet1.workers()[1]).toMatchObject({ status: 200, version: 'v1.4.2' });
  });

  it('refuses a worker the host does not have (exit 7)', async () => {
    const sim = new Sim();
    const fleet1 = sim.addFleetHost('fleet1', { workers: 2 });

    expectRefusal(
      await voxops(sim, ['restart', 'fleet', '--host', 'fleet1', '--worker', '3']),
      7,
      [
        'voxops: preflight refused the restart of fleet: 1 problem(s); nothing was changed. Next: fix the problems above (voxops status fleet shows the fleet), then re-run',
        '  - fleet1: there is no worker 3 (the host has 2)',
      ],
      [fleet1],
    );
  });
});

describe('the release source', () => {
  // one local clone of v1.5.0 (and the fake rsync) for both runs
  const localClone = localClones('all');
  let clone: LocalClone;
  beforeAll(async () => {
    clone = await localClone('v1.5.0');
  });

  it('a dry run says when a host that cannot fetch gets the release by rsync', async () => {
    const sim = new Sim();
    sim.addFleetHost('fleet1', { workers: 2 });
    sim.origins.fleet.reachable = false;
    sim.configure((doc) => (doc.roles.fleet.localRepo = clone.repo));

    const plan = await voxops(sim, ['deploy', 'fleet', '--tag', 'v1.5.0', '--dry-run', '--json']);

    expect(plan.exitCode, plan.stderr).toBe(0);
    expect(infos(plan)).toContain('rsync push of v1.5.0 from the local clone (git archive), host-owned paths untouched; then:');
    expect(eventsOf(plan, 'command').map((e) => e.command)).toContain('cd /opt/voxcore && uv sync --frozen');
  });

  // --source rsync asks no git host: the plan pushes (it fell back to git fetch before the fix)
  it('--source rsync pushes the release from the local clone when the git host is down', async () => {
    const sim = new Sim();
    const fleet1 = sim.addFleetHost('fleet1', { workers: 2 });
    sim.origins.fleet.reachable = false;
    sim.configure((doc) => (doc.roles.fleet.localRepo = clone.repo));

    const run = await voxops(sim, ['deploy', 'fleet', '--tag', 'v1.5.0', '--source', 'rsync', '--json']);

    expect(run.exitCode, run.stderr).toBe(0);
    expect(fleet1.ran().filter((c) => c.includes(' fetch '))).toEqual([]);
    expect(readFileSync(clone.rsyncLog, 'utf8')).toContain('deploy@10.0.0.11:/opt/voxcore/');
    expect(fleet1.workers().map((w) => w.version)).toEqual(['v1.5.0', 'v1.5.0']);
  });
});

describe('a git host that goes down after the preflight', () => {
  async function fetchFails() {
    const sim = new Sim();
    const fleet1 = sim.addFleetHost('fleet1', { workers: 2 });
    const pids = fleet1.workers().map((w) => w.pid);
    const run = await voxops(sim, ['deploy', 'fleet', '--tag', 'v1.5.0', '--json'], {
      onEvent: (e) => {
        if (e.type === 'host' && e.phase === 'start') sim.origins.fleet.reachable = false;
      },
    });
    return { sim, fleet1, pids, run };
  }

  it('stops the deploy at the fetch, before any worker moves (exit 5)', async () => {
    const { sim, fleet1, pids, run } = await fetchFails();

    expect(run.exitCode).toBe(5);
    expect(run.error).toMatch(/^voxops: fleet1: git fetch failed \(exit 128\): /);
    expect(eventsOf(run, 'host').map((e) => e.phase)).toEqual(['start', 'failed']);
    expect(fleet1.releaseIn(FLEET.path)).toBe('v1.4.2');
    expect(fleet1.workers().map((w) => w.pid)).toEqual(pids);
    expect(sim.historyOf('fleet1')).toMatchObject([{ to: 'v1.5.0', outcome: 'failed' }]);
  });

  // git says why on its first stderr line; its last lines are boilerplate ("and the repository exists.")
  it('says why git could not fetch', async () => {
    const { sim, run } = await fetchFails();

    expect(run.error).toContain('ssh: connect to host 10.0.0.5 port 22: Connection refused');
    expect(sim.historyOf('fleet1')[0]!.detail).toContain('ssh: connect to host 10.0.0.5 port 22: Connection refused');
  });
});

describe('kept builds (roles.fleet.build)', () => {
  /** fleet1 (2 workers) keeping up to 2 builds of .venv */
  function keeping() {
    const sim = new Sim();
    const fleet1 = sim.addFleetHost('fleet1', { workers: 2 });
    sim.configure((doc) => (doc.roles.fleet.build = { outputs: ['.venv'], keep: 2 }));
    const kept = () =>
      fleet1.fs
        .list('/var/lib/voxops/builds/fleet')
        .map((e) => e.name)
        .sort();
    return { sim, fleet1, kept, commit: (tag: string) => sim.origins.fleet.commit(tag) };
  }

  it('keeps each installed build, prunes the oldest beyond `keep`, and a rollback restores a kept build instead of installing', async () => {
    const { sim, fleet1, kept, commit } = keeping();

    for (const tag of ['v1.5.0', 'v1.6.0']) expect((await voxops(sim, ['deploy', 'fleet', '--tag', tag])).exitCode).toBe(0);
    expect(kept()).toEqual([commit('v1.5.0'), commit('v1.6.0')].sort());
    expect(fleet1.fs.read(`${buildDir('fleet', commit('v1.5.0'))}/.venv/installed-version`)).toBe('v1.5.0\n');

    const installs = () => fleet1.ran().filter((c) => c === 'uv sync --frozen').length;
    const before = installs();
    const rollback = await voxops(sim, ['rollback', 'fleet', '--to', 'v1.5.0', '--json']);

    expect(rollback.exitCode, rollback.stderr).toBe(0);
    expect(installs()).toBe(before);
    expect(eventsOf(rollback, 'step').map((e) => e.step)).toContain('restore the kept build');
    expect(installed(fleet1)).toBe('v1.5.0');
    expect(fleet1.fs.exists(`${FLEET.path}/.venv.voxops-old`)).toBe(false);
    expect(fleet1.workers().map((w) => w.version)).toEqual(['v1.5.0', 'v1.5.0']);

    // a third build: the oldest of the others goes
    expect((await voxops(sim, ['deploy', 'fleet', '--tag', 'v1.5.1-slowboot'])).exitCode).toBe(0);
    expect(kept()).toHaveLength(2);
    expect(kept()).toContain(commit('v1.5.1-slowboot'));
  });

  it('warns, and still deploys, when the build cannot be kept (a full disk)', async () => {
    const { sim, fleet1 } = keeping();
    // the builds directory cannot be made: a file is in its way
    fleet1.fs.put('/var/lib/voxops/builds', 'not a directory\n');

    const run = await voxops(sim, ['deploy', 'fleet', '--tag', 'v1.5.0', '--json']);

    expect(run.exitCode, run.stderr).toBe(0);
    expect(eventsOf(run, 'warning').map((e) => e.message)).toEqual([
      expect.stringMatching(/^could not keep this build for rollback: fleet1: keep this build for rollback failed \(exit 1\): /),
    ]);
    expect(fleet1.workers().map((w) => w.version)).toEqual(['v1.5.0', 'v1.5.0']);
  });

  it('a failed gate goes back to the kept build of the previous release', async () => {
    const { sim, fleet1 } = keeping();
    expect((await voxops(sim, ['deploy', 'fleet', '--tag', 'v1.5.0'])).exitCode).toBe(0);
    const installs = () => fleet1.ran().filter((c) => c === 'uv sync --frozen').length;
    const before = installs();

    const run = await voxops(sim, ['deploy', 'fleet', '--tag', 'v1.5.1-badhealth', '--json']);

    expect(run.exitCode).toBe(4);
    // one install (the bad release); going back restored v1.5.0's kept build
    expect(installs()).toBe(before + 1);
    expect(installed(fleet1)).toBe('v1.5.0');
    expect(fleet1.workers().map((w) => [w.status, w.version])).toEqual([
      [200, 'v1.5.0'],
      [200, 'v1.5.0'],
    ]);
  });
});

describe('status of a fleet host that does not add up', () => {
  it('names each mismatch: a worker on another release, an unhealthy one, the count, the units, nginx', async () => {
    const sim = new Sim();
    const fleet1 = sim.addFleetHost('fleet1');
    // worker 2 was restarted onto v1.5.0 by hand; worker 3 answers 500; a fifth unit is enabled; nginx has keepalive
    fleet1.worker(2)!.version = 'v1.5.0';
    fleet1.worker(3)!.spec = { flavour: 'badhealth' };
    fleet1.workerUnit(5).enabled = true;
    fleet1.fs.write(
      FLEET.nginxConfig,
      fleet1.fs.read(FLEET.nginxConfig).replace('    least_conn;\n', '    least_conn;\n    keepalive 16;\n'),
    );

    const status = await voxops(sim, ['status', 'fleet', '--json']);

    expect(status.exitCode, status.stderr).toBe(0);
    const host = JSON.parse(status.stdout).hosts[0];
    expect(host.problems).toEqual([
      'fleet1: worker 2 runs v1.5.0 but v1.4.2 is checked out',
      'fleet1: worker 3 (voxcore@3) is unhealthy (unit active, socket present)',
      'fleet1: VOXCORE_WORKERS=4 but 5 worker units are enabled: /health reports the wrong capacity',
      'fleet1: 5 worker units enabled, the inventory says 4',
      'fleet1: nginx: upstream voxcore_workers has keepalive: cached connections would keep reaching a drained worker',
    ]);
    expect(host.workers[2]).toMatchObject({ health: 'unhealthy', version: 'v1.4.2' });
    expect(host.workersSetting).toEqual({ variable: 'VOXCORE_WORKERS', value: 4, enabledUnits: 5, matches: false });
  });

  it('a deploy refuses a worker that answers 500 and warns about an upstream without a zone', async () => {
    const sim = new Sim();
    const fleet1 = sim.addFleetHost('fleet1');
    fleet1.worker(3)!.spec = { flavour: 'badhealth' };
    fleet1.fs.write(FLEET.nginxConfig, fleet1.fs.read(FLEET.nginxConfig).replace(/^ {4}zone .*\n/m, ''));

    const run = await voxops(sim, ['deploy', 'fleet', '--tag', 'v1.5.0', '--allow-unhealthy', '--dry-run', '--json']);

    expect(run.exitCode, run.stderr).toBe(0);
    expect(eventsOf(run, 'warning').map((e) => e.message)).toEqual([
      'fleet1: worker 3 (voxcore@3, active) is unhealthy: HTTP 500',
      'fleet1: nginx: upstream voxcore_workers has no zone: max_conns=1 is counted per nginx worker process, so a worker can get two calls',
    ]);
  });
});
