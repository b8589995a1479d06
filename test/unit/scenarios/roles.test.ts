import { beforeAll, describe, expect, it } from 'vitest';
import { releaseName } from '../../../src/commands/console.js';
import { lockFile } from '../../../src/commands/state.js';
import { eventsOf, voxops, type Run } from '../support/cli.js';
import { consoleIndex } from '../support/commands.js';
import { API, CONSOLE, DIALLER, Sim } from '../support/sim.js';

/* The roles with one service per host, through the whole CLI on a scripted host: api, dialler, console. */

function oneApiHost() {
  const sim = new Sim();
  const api1 = sim.addServiceHost('api', 'api1');
  return { sim, api1, before: api1.procOf(API.unit)! };
}

function oneDiallerHost() {
  const sim = new Sim();
  const dialler1 = sim.addServiceHost('dialler', 'dialler1');
  return { sim, dialler1, before: dialler1.procOf(DIALLER.unit)! };
}

describe('deploy api', () => {
  it('checks out, installs, restarts and gates it, and warns that one host means an outage', async () => {
    const { sim, api1, before } = oneApiHost();

    const run = await voxops(sim, ['deploy', 'api', '--tag', 'v1.5.0', '--json']);

    expect(run.exitCode, run.stderr).toBe(0);
    const now = api1.procOf(API.unit)!;
    expect(now.pid).not.toBe(before.pid);
    expect(now.version).toBe('v1.5.0');
    expect(api1.releaseIn(API.path)).toBe('v1.5.0');
    expect(eventsOf(run, 'warning').map((e) => e.message)).toEqual([
      expect.stringMatching(
        new RegExp(
          `^api has one host, so its restart was an outage: voxbridge\\.service pid ${now.pid} serves v1\\.5\\.0; api was down \\d+\\.\\d s$`,
        ),
      ),
    ]);
    expect(api1.ran().filter((c) => /^(git -C \/opt\/voxbridge (fetch|checkout)|uv |systemctl)/.test(c))).toEqual([
      'git -C /opt/voxbridge fetch --quiet --tags --force origin',
      'git -C /opt/voxbridge checkout --quiet --force --detach refs/tags/v1.5.0',
      'uv sync --frozen',
      'systemctl reset-failed -- voxbridge.service',
      'systemctl restart -- voxbridge.service',
    ]);
    expect(sim.historyOf('api1')).toMatchObject([{ role: 'api', action: 'deploy', from: 'v1.4.2', to: 'v1.5.0', outcome: 'success' }]);
    expect(api1.fs.exists(lockFile)).toBe(false);
  });

  it('puts the previous release back and restarts it when the new one fails its gate (exit 4)', async () => {
    const { sim, api1, before } = oneApiHost();

    const run = await voxops(sim, ['deploy', 'api', '--tag', 'v1.5.1-badhealth', '--json']);

    expect(run.exitCode).toBe(4);
    expect(run.error).toBe(
      'voxops: api1: api did not come up on v1.5.1-badhealth within 1s: HTTP 500; api1 was rolled back to v1.4.2. Next: read the log: voxops logs api --host api1',
    );
    expect(run.jsonError?.journal).toMatchObject({
      host: 'api1',
      text: expect.stringMatching(/ERROR health check fails: RELEASE_FLAVOUR=badhealth/),
    });
    expect(eventsOf(run, 'host').map((e) => e.phase)).toEqual(['start', 'rolling-back', 'rolled-back']);
    const now = api1.procOf(API.unit)!;
    expect(now.version).toBe('v1.4.2');
    expect(now.pid).not.toBe(before.pid);
    expect(api1.releaseIn(API.path)).toBe('v1.4.2');
    expect(api1.ran().filter((c) => c.startsWith('systemctl restart'))).toHaveLength(2);
    expect(sim.historyOf('api1')).toMatchObject([{ to: 'v1.5.1-badhealth', outcome: 'rolled-back' }]);
    expect(api1.fs.exists(lockFile)).toBe(false);
  });
});

describe('deploy dialler', () => {
  it('restarts only at a moment /health reports leased_calls=0', async () => {
    const { sim, dialler1, before } = oneDiallerHost();
    dialler1.lease(2, 3);

    const run = await voxops(sim, ['deploy', 'dialler', '--tag', 'v1.5.0', '--json']);

    expect(run.exitCode, run.stderr).toBe(0);
    expect(dialler1.stranded).toEqual([]);
    expect(before.leased).toEqual({ count: 0, remaining: expect.any(Number) });
    expect(eventsOf(run, 'info').map((e) => e.message)).toContainEqual(
      expect.stringMatching(/^dialler: leased_calls=0 after \d+\.\d s: restarting now$/),
    );
    expect(dialler1.procOf(DIALLER.unit)).toMatchObject({ version: 'v1.5.0' });
    // three probes saw the leases, the next saw none; only then the restart (else `stranded` would name it)
    const log = dialler1.ran();
    const probesBefore = log.slice(0, log.indexOf('systemctl restart -- voxdialler.service')).filter((c) => c.endsWith(DIALLER.url));
    expect(probesBefore.length).toBeGreaterThanOrEqual(4);
  });

  it('never idle: the old release is put back on disk, nothing is restarted (exit 9)', async () => {
    const { sim, dialler1, before } = oneDiallerHost();
    dialler1.lease(2, Infinity);

    const run = await voxops(sim, ['deploy', 'dialler', '--tag', 'v1.5.0', '--drain-timeout', '1', '--json']);

    expect(run.exitCode).toBe(9);
    expect(run.error).toBe(
      'voxops: dialler1: dialler still had leased_calls=2 after 1s; it was not restarted. Next: try again when the campaigns are quieter, or wait longer: voxops deploy dialler --tag <tag> --drain-timeout 600',
    );
    expect(eventsOf(run, 'host').find((e) => e.phase === 'rolling-back')?.message).toBe(
      'back to v1.4.2 (files only: the running process was not restarted)',
    );
    expect(dialler1.releaseIn(DIALLER.path)).toBe('v1.4.2');
    expect(dialler1.procOf(DIALLER.unit)).toBe(before);
    expect(dialler1.ran().filter((c) => c.startsWith('systemctl'))).toEqual([]);
    expect(dialler1.stranded).toEqual([]);
    expect(sim.historyOf('dialler1')).toMatchObject([{ to: 'v1.5.0', outcome: 'rolled-back' }]);
    expect(dialler1.fs.exists(lockFile)).toBe(false);
  });
});

function consoleHost(options: { release?: string; kept?: string[] } = {}) {
  const sim = new Sim();
  const console1 = sim.addConsoleHost('console1', options);
  const dir = (tag: string) => `${CONSOLE.path}/releases/${releaseName(tag, sim.origins.console.commit(tag))}`;
  return { sim, console1, dir };
}

describe('deploy console', () => {
  it('builds, keeps the build as a release, flips `current` to it and checks what is served', async () => {
    const { sim, console1, dir } = consoleHost();

    const run = await voxops(sim, ['deploy', 'console', '--tag', 'v1.5.0', '--json']);

    expect(run.exitCode, run.stderr).toBe(0);
    expect(console1.fs.lstat(CONSOLE.current)).toMatchObject({ kind: 'symlink', target: dir('v1.5.0') });
    expect(console1.fs.read(`${CONSOLE.current}/index.html`)).toBe(consoleIndex('v1.5.0'));
    // the previous build stays beside it, for a rollback by flip
    expect(console1.fs.exists(`${dir('v1.4.2')}/index.html`)).toBe(true);
    expect(console1.ran()).toEqual(expect.arrayContaining(['npm ci', 'npm run build', 'nginx -t -q', 'systemctl reload nginx']));
    expect(console1.ran().filter((c) => c.startsWith('systemctl restart'))).toEqual([]);
    // a static deploy is no outage: no downtime warning
    expect(eventsOf(run, 'warning')).toEqual([]);
    expect(sim.historyOf('console1')).toMatchObject([{ role: 'console', from: 'v1.4.2', to: 'v1.5.0', outcome: 'success' }]);
    expect(console1.fs.exists(lockFile)).toBe(false);
  });

  it('rolls back to a kept build with a flip alone: no checkout, no build', async () => {
    const { sim, console1, dir } = consoleHost({ release: 'v1.5.0', kept: ['v1.4.2'] });
    sim.history('console1', [{ from: 'v1.4.2', to: 'v1.5.0' }]);

    const run = await voxops(sim, ['rollback', 'console', '--json']);

    expect(run.exitCode, run.stderr).toBe(0);
    expect(console1.fs.lstat(CONSOLE.current)).toMatchObject({ kind: 'symlink', target: dir('v1.4.2') });
    expect(console1.ran().filter((c) => /^(git -C \S+ (fetch|checkout)|npm|cp -a)/.test(c))).toEqual([]);
    expect(eventsOf(run, 'info').map((e) => e.message)).toContain(
      'console on v1.5.0, 20000 MiB free; going back to the kept build v1.4.2-' + sim.origins.console.commit('v1.4.2').slice(0, 12),
    );
    expect(sim.historyOf('console1').at(-1)).toMatchObject({ action: 'rollback', from: 'v1.5.0', to: 'v1.4.2', outcome: 'success' });
  });

  describe('when the URL does not serve the new build', () => {
    // one run (its 10 s verify timeout on the virtual clock), two sets of assertions
    let run: Run;
    const { sim, console1, dir } = consoleHost();
    beforeAll(async () => {
      // a cache in front of nginx keeps serving the old page
      console1.console!.serveOverride = consoleIndex('v1.4.2');
      run = await voxops(sim, ['deploy', 'console', '--tag', 'v1.5.0', '--json']);
    }, 30_000);

    it('flips `current` back to the previous build (exit 4)', () => {
      expect(run.exitCode).toBe(4);
      expect(run.error).toMatch(
        `voxops: console1: http://127.0.0.1/ does not serve ${dir('v1.5.0').split('/').pop()}/index.html after the flip; ${CONSOLE.current} points back at ${dir('v1.4.2')}`,
      );
      expect(console1.fs.lstat(CONSOLE.current)).toMatchObject({ kind: 'symlink', target: dir('v1.4.2') });
      expect(console1.ran().filter((c) => c === 'systemctl reload nginx')).toHaveLength(2);
      expect(sim.historyOf('console1')).toMatchObject([{ to: 'v1.5.0', outcome: 'rolled-back' }]);
      expect(console1.fs.exists(lockFile)).toBe(false);
    });

    // like every other exit 4 (before the engine, the console's had no hint)
    it('says what to run next', () => {
      expect(run.error).toMatch(/\. Next: \S/);
    });
  });
});
