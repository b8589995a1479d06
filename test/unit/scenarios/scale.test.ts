import { describe, expect, it } from 'vitest';
import { lockFile } from '../../../src/commands/state.js';
import { upstreamSockets } from '../../../src/commands/nginx.js';
import { eventsOf, voxops } from '../support/cli.js';
import { FLEET, Sim } from '../support/sim.js';
import type { SimHost } from '../support/host.js';

function fourWorkers() {
  const sim = new Sim();
  return { sim, fleet1: sim.addFleetHost('fleet1', { workers: 4 }) };
}

const sockets = (n: number) => Array.from({ length: n }, (_, i) => `/tmp/voxcore_${i + 1}.sock`);

/** What the host says about its worker count: env file, enabled units, nginx (file and loaded), the processes. */
function countsOf(host: SimHost) {
  const config = host.fs.read(FLEET.nginxConfig);
  return {
    variable: host.envValue(FLEET.envFile, FLEET.countVariable),
    enabled: [...host.units.values()].filter((u) => u.name.startsWith('voxcore@') && u.enabled).map((u) => u.name).sort(),
    upstream: upstreamSockets(config, FLEET.upstream),
    tries: /proxy_next_upstream_tries (\d+);/.exec(config)?.[1],
    loaded: host.nginx!.loadedSockets,
    workersSeen: host.workers().map((w) => w.workers),
  };
}

describe('scale fleet', () => {
  it('grows 4 -> 6: new workers started and gated before nginx lists them, the others restarted to read the count', async () => {
    const { sim, fleet1 } = fourWorkers();
    const before = fleet1.workers().map((w) => w.pid);

    const run = await voxops(sim, ['scale', 'fleet', '--host', 'fleet1', '--workers', '6', '--json']);

    expect(run.exitCode, run.stderr).toBe(0);
    expect(countsOf(fleet1)).toEqual({
      variable: '6',
      enabled: ['voxcore@1', 'voxcore@2', 'voxcore@3', 'voxcore@4', 'voxcore@5', 'voxcore@6'],
      upstream: sockets(6),
      tries: '6',
      loaded: sockets(6),
      workersSeen: Array(6).fill(6),
    });
    expect(fleet1.workers().slice(0, 4).every((w, i) => w.pid !== before[i])).toBe(true);
    expect(fleet1.workers().map((w) => [w.status, w.version])).toEqual(Array(6).fill([200, 'v1.4.2']));
    // the new workers were healthy before the reload that put them in nginx
    const log = fleet1.ran();
    expect(log.indexOf('systemctl enable --now -- voxcore@6')).toBeLessThan(log.indexOf('systemctl reload nginx'));
    expect(eventsOf(run, 'info').map((e) => e.message)).toContain('/health/fleet through nginx: expected_workers 6, capacity 6');
    expect(eventsOf(run, 'warning').map((e) => e.message)).toContainEqual(expect.stringMatching(/^set workers: 6 for fleet1 in .*voxops\.yaml \(environments\.test\.hosts\.fleet\): it says 4/));
    expect(sim.historyOf('fleet1')).toMatchObject([{ action: 'scale', outcome: 'success', detail: 'workers 4 -> 6' }]);
    expect(fleet1.fs.exists(lockFile)).toBe(false);
    expect(fleet1.dropped).toEqual([]);
  });

  // real time today: 0.6 s (removeWorkers polls a removed worker's call every 200 ms)
  it('shrinks 4 -> 3: worker 4 leaves nginx first, is stopped once its call has ended, the rest restart', async () => {
    const { sim, fleet1 } = fourWorkers();
    fleet1.startCall(4, 3);

    const run = await voxops(sim, ['scale', 'fleet', '--host', 'fleet1', '--workers', '3', '--json']);

    expect(run.exitCode, run.stderr).toBe(0);
    expect(countsOf(fleet1)).toEqual({
      variable: '3',
      enabled: ['voxcore@1', 'voxcore@2', 'voxcore@3'],
      upstream: sockets(3),
      tries: '3',
      loaded: sockets(3),
      workersSeen: Array(3).fill(3),
    });
    expect(fleet1.workerUnit(4).state).toBe('inactive');
    expect(fleet1.fs.exists('/tmp/voxcore_4.sock')).toBe(false);
    expect(fleet1.drainLeftovers()).toEqual([]);
    expect(fleet1.dropped).toEqual([]);
    const log = fleet1.ran();
    expect(log.indexOf('systemctl reload nginx')).toBeLessThan(log.indexOf('systemctl disable --now -- voxcore@4'));
    expect(eventsOf(run, 'worker').filter((e) => e.worker === 4).map((e) => e.phase)).toEqual(['drained', 'idle', 'removed']);
  });

  it('puts the config file back and loads nothing when nginx -t rejects the new upstream (exit 11)', async () => {
    const { sim, fleet1 } = fourWorkers();
    const config = fleet1.fs.read(FLEET.nginxConfig);
    const before = countsOf(fleet1);
    const pids = fleet1.workers().map((w) => w.pid);
    fleet1.nginx!.rejects = (files) =>
      (upstreamSockets(files.get(FLEET.nginxConfig) ?? '', FLEET.upstream)?.length ?? 0) > 4
        ? `nginx: [emerg] zone "${FLEET.upstream}" is too small in ${FLEET.nginxConfig}:2`
        : undefined;

    const run = await voxops(sim, ['scale', 'fleet', '--host', 'fleet1', '--workers', '6', '--json']);

    expect(run.exitCode).toBe(11);
    expect(run.error).toBe(
      `voxops: fleet1: nginx -t rejected the 6-worker upstream: nginx: [emerg] zone "${FLEET.upstream}" is too small in ${FLEET.nginxConfig}:2; it was not loaded and ${FLEET.nginxConfig} is back as it was. Next: fix what nginx names on fleet1 (nginx -t), then: voxops scale fleet --host fleet1 --workers 6`,
    );
    expect(fleet1.fs.read(FLEET.nginxConfig)).toBe(config);
    expect(countsOf(fleet1)).toEqual(before);
    expect(fleet1.workers().map((w) => w.pid)).toEqual(pids);
    // nothing started, stopped or reloaded; the env file never touched
    expect(fleet1.changes().flatMap((c) => c.ran).filter((c) => c.startsWith('systemctl') || c.startsWith('sh '))).toEqual([]);
    expect(fleet1.fs.exists(lockFile)).toBe(false);
  });
});
