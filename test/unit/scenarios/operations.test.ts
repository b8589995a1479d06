import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { lockFile } from '../../../src/commands/state.js';
import { eventsOf, voxops } from '../support/cli.js';
import { expectRefusal } from '../support/expect.js';
import { API, DIALLER, Sim } from '../support/sim.js';

/*
 * What on-call runs (status, health, history, logs, the locks) and the runs over several roles
 * (deploy all, a bare rollback, restart all, --hosts across roles), through the whole CLI.
 */

/** api1, console1, fleet1 (2 workers), dialler1: every service healthy on v1.4.2. */
function smallEstate() {
  const sim = new Sim();
  const api1 = sim.addServiceHost('api', 'api1');
  const console1 = sim.addConsoleHost('console1');
  const fleet1 = sim.addFleetHost('fleet1', { workers: 2 });
  const dialler1 = sim.addServiceHost('dialler', 'dialler1');
  return { sim, api1, console1, fleet1, dialler1 };
}

/** A process id no process has here: a lock holder that is gone. */
function deadPid(): number {
  for (let pid = 4_000_000; ; pid++) {
    try {
      process.kill(pid, 0);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ESRCH') return pid;
    }
  }
}

describe('status, health, history, logs', () => {
  it('a healthy estate: health says so (exit 0), status names every host, --host narrows it', async () => {
    const { sim } = smallEstate();

    const health = await voxops(sim, ['health']);
    const status = await voxops(sim, ['status', '--host', 'api1', '--host', 'fleet1', '--json']);

    expect(health.exitCode, health.stderr).toBe(0);
    expect(health.stdout).toBe('healthy: 4 hosts, 2 workers\n');
    expect(status.exitCode, status.stderr).toBe(0);
    const report = JSON.parse(status.stdout);
    expect(report.hosts.map((h: { name: string; role: string; tag: string }) => `${h.name} ${h.role} ${h.tag}`)).toEqual([
      'api1 api v1.4.2',
      'fleet1 fleet v1.4.2',
    ]);

    const unknown = await voxops(sim, ['status', '--host', 'api9']);
    expect(unknown.exitCode).toBe(2);
    expect(unknown.error).toBe('voxops: no host named api9 in environment test. Next: voxops config check lists the hosts');
  });

  it('health --json lists the problems in one object', async () => {
    const { sim, api1 } = smallEstate();
    api1.crash(api1.unit(API.unit)!);

    const health = await voxops(sim, ['health', '--json']);

    expect(health.exitCode).toBe(10);
    expect(JSON.parse(health.stdout)).toEqual({ ok: false, problems: [expect.stringMatching(/^api1: /)] });
  });

  it('history shows what each host recorded, newest last, in text or JSON, for the hosts asked', async () => {
    const { sim } = smallEstate();
    sim.history('api1', [
      { from: 'v1.4.2', to: 'v1.5.0' },
      { action: 'rollback', from: 'v1.5.0', to: 'v1.4.2' },
    ]);
    sim.history('fleet1', [{ from: 'v1.4.2', to: 'v1.5.0', outcome: 'rolled-back', detail: 'worker 1 failed its gate' }]);

    const json = await voxops(sim, ['history', '--host', 'api1', '--json']);
    const text = await voxops(sim, ['history', '--lines', '1']);

    expect(json.exitCode, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual([
      {
        host: 'api1',
        entries: [
          expect.objectContaining({ action: 'deploy', to: 'v1.5.0' }),
          expect.objectContaining({ action: 'rollback', to: 'v1.4.2' }),
        ],
      },
    ]);
    expect(text.exitCode, text.stderr).toBe(0);
    // the last line of each host's history, oldest first: api1's rollback, fleet1's rolled-back deploy
    const rows = text.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(/\s{2,}/));
    expect(rows.map((r) => r.slice(1, 7))).toEqual([
      ['host', 'role', 'action', 'from', 'to', 'outcome'],
      ['api1', 'api', 'rollback', 'v1.5.0', 'v1.4.2', 'success'],
      ['fleet1', 'fleet', 'deploy', 'v1.4.2', 'v1.5.0', 'rolled-back'],
    ]);

    const none = await voxops(smallEstate().sim, ['history']);
    expect(none.stdout).toBe('no history recorded yet\n');
  });

  it("logs shows a worker's journal, and says what it needs when the worker is missing or out of range (exit 2)", async () => {
    const { sim, fleet1 } = smallEstate();
    fleet1.journal(fleet1.workerUnit(2), 'call 7f3a ended: caller hung up');

    const logs = await voxops(sim, ['logs', 'fleet', '--host', 'fleet1', '--worker', '2', '--lines', '5']);
    const none = await voxops(sim, ['logs', 'fleet', '--host', 'fleet1']);
    const beyond = await voxops(sim, ['logs', 'fleet', '--host', 'fleet1', '--worker', '3']);

    expect(logs.exitCode, logs.stderr).toBe(0);
    expect(logs.stdout).toContain('fleet1 voxcore@2: call 7f3a ended: caller hung up');
    expect(fleet1.ran().at(-1)).toBe('journalctl --no-pager --output=short-iso -n 5 -u voxcore@2');
    expect(none.exitCode).toBe(2);
    expect(none.error).toBe('voxops: logs fleet needs --worker N. Next: voxops logs fleet --host fleet1 --worker 1');
    expect(beyond.exitCode).toBe(2);
    expect(beyond.error).toBe('voxops: fleet1 has 2 workers; there is no worker 3. Next: voxops logs fleet --host fleet1 --worker 2');
  });
});

describe('locks', () => {
  it('lock status says who holds which lock, and whether its holder is gone', async () => {
    const { sim } = smallEstate();
    sim.lock('api1');
    const pid = deadPid();
    sim.lock('fleet1', { user: 'tester', machine: hostname(), pid });

    const text = await voxops(sim, ['lock', 'status']);
    const json = await voxops(sim, ['lock', 'status', '--host', 'fleet1', '--json']);

    expect(text.exitCode, text.stderr).toBe(0);
    expect(text.stdout.split('\n')).toEqual([
      'api1: locked by alice@jenkins-7 (pid 4242, deploy v1.5.0, since 2025-06-02T08:50:00.000Z, build https://jenkins.example.com/job/voxops/81/)',
      'console1: free',
      `fleet1: locked by tester@${hostname()} (pid ${pid}, deploy v1.5.0, since 2025-06-02T08:50:00.000Z, build https://jenkins.example.com/job/voxops/81/) (STALE: its process is gone)`,
      'dialler1: free',
      '',
    ]);
    expect(JSON.parse(json.stdout)).toMatchObject({
      locks: [{ host: 'fleet1', holder: { pid }, stale: true, age: expect.stringMatching(/^\d+ (h \d+ )?min$/) }],
    });
  });

  it('a deploy refused by a stale lock says the holder is gone and how to release it (exit 3)', async () => {
    const { sim } = smallEstate();
    const pid = deadPid();
    sim.lock('api1', { machine: hostname(), pid });

    const run = await voxops(sim, ['deploy', 'api', '--tag', 'v1.5.0']);

    expect(run.exitCode).toBe(3);
    expect(run.error).toMatch(new RegExp(`Next: the holder's process \\(pid ${pid}\\) is gone\\b.*voxops lock release --force$`));
  });

  it('a lock whose holder stopped renewing its lease is taken over; lock status said when it would free itself', async () => {
    const { sim, fleet1 } = smallEstate();
    sim.lock('fleet1', { leaseSeconds: 120 });
    sim.clock.advance(60_000);

    const live = await voxops(sim, ['lock', 'status', '--host', 'fleet1']);
    const refused = await voxops(sim, ['deploy', 'fleet', '--tag', 'v1.5.0']);

    expect(live.stdout).toMatch(/^fleet1: locked by alice@jenkins-7 .*expires 60s from now unless its holder renews it/);
    expect(refused.exitCode).toBe(3);

    sim.clock.advance(600_000);
    const run = await voxops(sim, ['deploy', 'fleet', '--tag', 'v1.5.0', '--json']);

    expect(run.exitCode, run.stderr).toBe(0);
    expect(eventsOf(run, 'warning').map((e) => e.message)).toContainEqual(
      expect.stringMatching(
        /^the lock of alice@jenkins-7 \(.*\) EXPIRED 540s ago: its holder stopped renewing it: this run takes it over$/,
      ),
    );
    expect(fleet1.workers().map((w) => w.version)).toEqual(['v1.5.0', 'v1.5.0']);
    expect(sim.historyOf('fleet1')).toMatchObject([{ user: 'tester', outcome: 'success' }]);
    expect(fleet1.fs.exists(lockFile)).toBe(false);
  });

  it('--lock-wait waits for another run to release its lock, and refuses when it does not in time (exit 3)', async () => {
    const { sim, fleet1 } = smallEstate();
    sim.lock('fleet1', { leaseSeconds: 120 });
    let reads = 0;
    const releasesAfter = (n: number) => (sent: { step: string }) => {
      if (sent.step === 'read the deploy lock' && ++reads === n && fleet1.fs.exists(lockFile)) fleet1.fs.remove(lockFile, false);
    };
    fleet1.watchers.push(releasesAfter(3));

    const waited = await voxops(sim, ['deploy', 'fleet', '--tag', 'v1.5.0', '--lock-wait', '60', '--json']);

    expect(waited.exitCode, waited.stderr).toBe(0);
    expect(fleet1.workers().map((w) => w.version)).toEqual(['v1.5.0', 'v1.5.0']);

    // the other run keeps renewing its lock: the wait runs out
    sim.lock('fleet1', { leaseSeconds: 120 });
    fleet1.watchers.push((sent) => {
      if (sent.step === 'read the deploy lock' && fleet1.fs.exists(lockFile)) fleet1.fs.touch(lockFile);
    });
    const started = sim.clock.now();
    const timedOut = await voxops(sim, ['deploy', 'fleet', '--tag', 'v1.6.0', '--lock-wait', '30']);

    expect(timedOut.exitCode).toBe(3);
    expect(timedOut.error).toMatch(/^voxops: lock on fleet1 is held by alice@jenkins-7 /);
    expect(sim.clock.now() - started).toBeGreaterThanOrEqual(30_000);
    expect(fleet1.workers().map((w) => w.version)).toEqual(['v1.5.0', 'v1.5.0']);
  });

  it("lock release frees your own lock, keeps somebody else's (exit 2) unless --force", async () => {
    const { sim, api1, fleet1, dialler1 } = smallEstate();
    // a pid above any pid_max: that run's process is surely gone
    sim.lock('api1', { user: 'tester', machine: hostname(), pid: 999_999_999 });
    sim.lock('dialler1', { user: 'tester', machine: hostname(), pid: process.pid });
    sim.lock('fleet1');

    const mine = await voxops(sim, ['lock', 'release']);

    expect(mine.exitCode).toBe(2);
    expect(mine.stdout.split('\n')).toEqual([
      'api1: released the lock of tester@' +
        hostname() +
        ' (pid 999999999, deploy v1.5.0, since 2025-06-02T08:50:00.000Z, build https://jenkins.example.com/job/voxops/81/)',
      'console1: not locked',
      `fleet1: held by alice@jenkins-7, not you (tester@${hostname()}): add --force`,
      `dialler1: held by your own run (pid ${process.pid}), which is still running: stop it, or add --force`,
      '',
    ]);
    expect(mine.error).toBe(
      'voxops: 2 lock(s) may still be in use and were kept. Next: make sure that deploy is dead (voxops lock status), then: voxops lock release --force',
    );
    expect(api1.fs.exists(lockFile)).toBe(false);
    expect(fleet1.fs.exists(lockFile)).toBe(true);

    const forced = await voxops(sim, ['lock', 'release', '--force', '--host', 'fleet1', '--json']);

    expect(forced.exitCode, forced.stderr).toBe(0);
    expect(JSON.parse(forced.stdout)).toEqual({
      results: [{ host: 'fleet1', holder: expect.objectContaining({ user: 'alice' }), released: true }],
    });
    expect(fleet1.fs.exists(lockFile)).toBe(false);
    expect(dialler1.fs.exists(lockFile)).toBe(true);
  });
});

describe('runs over several roles', () => {
  it('deploy all refuses in the preflight of a later role before any role changes (exit 7)', async () => {
    const { sim, api1, console1, fleet1, dialler1 } = smallEstate();
    fleet1.freeMb = 100;

    const run = await voxops(sim, ['deploy', 'all', '--tag', 'v1.5.0']);

    expectRefusal(
      run,
      7,
      [
        'voxops: deploy all v1.5.0: preflight of fleet refused, before any role was changed: preflight refused the deploy of fleet: 1 problem(s); nothing was changed. Next: fix the problems above (voxops status fleet shows the fleet), then re-run',
        '  - fleet1: only 100 MiB free at /opt/voxcore (need 1024 MiB)',
      ],
      [api1, console1, fleet1, dialler1],
    );
  });

  it('--hosts across roles deploys only those hosts, role by role, and leaves the ingress config alone', async () => {
    const { sim, api1, console1, fleet1, dialler1 } = smallEstate();
    const ingress1 = sim.addIngressHost('ingress1', { config: 'stale' });

    const run = await voxops(sim, ['deploy', 'all', '--tag', 'v1.5.0', '--hosts', 'fleet1,api1', '--json']);

    expect(run.exitCode, run.stderr).toBe(0);
    // (the preflight of both roles is quiet: only the real runs tell)
    expect(eventsOf(run, 'start').map((e) => `${e.role} ${e.hosts.join(',')}`)).toEqual(['api api1', 'fleet fleet1']);
    expect(eventsOf(run, 'info').map((e) => e.message)).toContainEqual(
      expect.stringMatching(/^deploy all v1\.5\.0: preflight of api, fleet passed in /),
    );
    expect(run.summary).toMatchObject({
      role: 'all',
      tag: 'v1.5.0',
      exitCode: 0,
      hosts: [
        { host: 'api1', outcome: 'success' },
        { host: 'fleet1', outcome: 'success' },
      ],
    });
    expect(api1.procOf(API.unit)!.version).toBe('v1.5.0');
    expect(fleet1.workers().map((w) => w.version)).toEqual(['v1.5.0', 'v1.5.0']);
    for (const host of [console1, dialler1, ingress1]) expect(host.log).toEqual([]);

    const misspelt = await voxops(sim, ['deploy', 'all', '--tag', 'v1.5.0', '--hosts', 'fleet1,flet2']);
    expect(misspelt.exitCode).toBe(2);
    expect(misspelt.error).toBe('voxops: no host named flet2 in environment test. Next: voxops config check lists the hosts');
  });

  it('Ctrl-C during one role starts no further role, and says what was done and what not (exit 130)', async () => {
    const { sim, api1, console1, fleet1 } = smallEstate();

    const run = await voxops(sim, ['deploy', 'all', '--tag', 'v1.5.0', '--json'], {
      onEvent: (e) => {
        if (e.type === 'host' && e.host === 'api1' && e.phase === 'done') {
          process.emit('SIGINT', 'SIGINT');
          process.emit('SIGINT', 'SIGINT');
        }
      },
    });

    expect(run.exitCode).toBe(130);
    expect(run.stderr).toContain('voxops: SIGINT again: still finishing the current worker and releasing locks');
    expect(run.error).toBe(
      'voxops: deploy all v1.5.0: interrupted before console; done: api; not started: console, fleet, dialler. Next: voxops status',
    );
    expect(run.summary).toMatchObject({ role: 'all', exitCode: 130, hosts: [{ host: 'api1', outcome: 'success' }] });
    expect(api1.procOf(API.unit)!.version).toBe('v1.5.0');
    expect(console1.changes()).toEqual([]);
    expect(fleet1.changes()).toEqual([]);
  });

  it('a bare rollback takes every role back to its last-known-good, in reverse order, skipping roles voxops never deployed twice', async () => {
    const sim = new Sim();
    const api1 = sim.addServiceHost('api', 'api1', { release: 'v1.5.0', known: ['v1.4.2'] });
    const fleet1 = sim.addFleetHost('fleet1', { workers: 2, release: 'v1.5.0', known: ['v1.4.2'] });
    const dialler1 = sim.addServiceHost('dialler', 'dialler1');
    sim.history('api1', [{ from: 'v1.4.2', to: 'v1.5.0' }]);
    sim.history('fleet1', [{ from: 'v1.4.2', to: 'v1.5.0' }]);

    const run = await voxops(sim, ['rollback', '--json']);

    expect(run.exitCode, run.stderr).toBe(0);
    expect(eventsOf(run, 'warning').map((e) => e.message)).toContain(
      "dialler: skipped, no last-known-good in its hosts' history (voxops has not deployed it twice)",
    );
    // the dialler is skipped in the preflight and again in the run; the fleet goes before the api
    expect(
      eventsOf(run, 'start')
        .filter((e) => !e.dryRun)
        .map((e) => `${e.role} ${e.tag}`),
    ).toEqual(['fleet v1.4.2', 'api v1.4.2']);
    expect(api1.procOf(API.unit)!.version).toBe('v1.4.2');
    expect(fleet1.workers().map((w) => w.version)).toEqual(['v1.4.2', 'v1.4.2']);
    expect(dialler1.changes()).toEqual([]);
    expect(dialler1.procOf(DIALLER.unit)!.version).toBe('v1.4.2');
  });

  it('a rollback of one role whose hosts do not all know a last-known-good is refused (exit 7)', async () => {
    const sim = new Sim();
    const fleet1 = sim.addFleetHost('fleet1', { workers: 2, release: 'v1.5.0', known: ['v1.4.2'] });
    const fleet2 = sim.addFleetHost('fleet2', { workers: 2, release: 'v1.5.0', known: ['v1.4.2'] });
    sim.history('fleet1', [{ from: 'v1.4.2', to: 'v1.5.0' }]);

    expectRefusal(
      await voxops(sim, ['rollback', 'fleet']),
      7,
      [
        'voxops: no last-known-good release in the history of fleet2; nothing was changed. Next: name the release: voxops rollback fleet --to <tag> (voxops history shows what ran)',
      ],
      [fleet1, fleet2],
    );
  });

  it('refuses a rollback with nothing to roll back, and one whose --hosts run none of the roles (exit 2)', async () => {
    const { sim } = smallEstate();
    const onlyIngress = new Sim();
    onlyIngress.addFleetHost('fleet1');
    onlyIngress.configure((doc) => (doc.environments.test.hosts = { ingress: [{ name: 'ingress1', address: '10.0.0.12' }] }));
    onlyIngress.addIngressHost('ingress1');

    const ingress = await voxops(onlyIngress, ['rollback']);
    const elsewhere = await voxops(sim, ['rollback', 'api', '--hosts', 'fleet1']);

    expect(ingress.exitCode).toBe(2);
    expect(ingress.error).toBe(
      'voxops: nothing to roll back: the ingress is config only (voxops deploy ingress). Next: voxops status shows which host runs which role',
    );
    expect(elsewhere.exitCode).toBe(2);
    expect(elsewhere.error).toBe('voxops: none of fleet1 runs api. Next: voxops status shows which host runs which role');
  });

  it('restart all restarts the api, every fleet worker and the dialler, in that order, on the release each runs', async () => {
    const { sim, api1, fleet1, dialler1, console1 } = smallEstate();
    const before = [api1.procOf(API.unit)!.pid, ...fleet1.workers().map((w) => w.pid), dialler1.procOf(DIALLER.unit)!.pid];

    const run = await voxops(sim, ['restart', 'all', '--json']);

    expect(run.exitCode, run.stderr).toBe(0);
    expect(
      eventsOf(run, 'start')
        .filter((e) => !e.dryRun)
        .map((e) => e.role),
    ).toEqual(['api', 'fleet', 'dialler']);
    const after = [api1.procOf(API.unit)!.pid, ...fleet1.workers().map((w) => w.pid), dialler1.procOf(DIALLER.unit)!.pid];
    expect(after.every((pid, i) => pid !== before[i])).toBe(true);
    expect(fleet1.workers().map((w) => w.version)).toEqual(['v1.4.2', 'v1.4.2']);
    expect(console1.changes()).toEqual([]);
    expect(run.summary).toMatchObject({ operation: 'restart', role: 'all', exitCode: 0 });
    expect(sim.historyOf('fleet1')).toMatchObject([{ action: 'restart', from: 'v1.4.2', to: 'v1.4.2' }]);
  });
});
