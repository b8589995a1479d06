import { describe, expect, it } from 'vitest';
import { lockFile } from '../../../src/commands/state.js';
import { eventsOf, voxops } from '../support/cli.js';
import { API, DIALLER, Sim } from '../support/sim.js';

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
      expect.stringMatching(new RegExp(`^api has one host, so its restart was an outage: voxbridge\\.service pid ${now.pid} serves v1\\.5\\.0; api was down \\d+\\.\\d s$`)),
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
    expect(run.error).toBe('voxops: api1: api did not come up on v1.5.1-badhealth within 1s: HTTP 500; api1 was rolled back to v1.4.2. Next: read the log: voxops logs api --host api1');
    expect(run.stderr).toMatch(/journal of api1:\n[\s\S]*ERROR health check fails: RELEASE_FLAVOUR=badhealth/);
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
    expect(eventsOf(run, 'info').map((e) => e.message)).toContainEqual(expect.stringMatching(/^dialler: leased_calls=0 after \d+\.\d s: restarting now$/));
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
    expect(eventsOf(run, 'host').find((e) => e.phase === 'rolling-back')?.message).toBe('back to v1.4.2 (files only: the running process was not restarted)');
    expect(dialler1.releaseIn(DIALLER.path)).toBe('v1.4.2');
    expect(dialler1.procOf(DIALLER.unit)).toBe(before);
    expect(dialler1.ran().filter((c) => c.startsWith('systemctl'))).toEqual([]);
    expect(dialler1.stranded).toEqual([]);
    expect(sim.historyOf('dialler1')).toMatchObject([{ to: 'v1.5.0', outcome: 'rolled-back' }]);
    expect(dialler1.fs.exists(lockFile)).toBe(false);
  });
});
