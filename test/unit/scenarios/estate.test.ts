import { describe, expect, it } from 'vitest';
import { backupPath, renderHaproxyConfig } from '../../../src/commands/haproxy.js';
import { upstreamSockets } from '../../../src/commands/nginx.js';
import { lockFile } from '../../../src/commands/state.js';
import { eventsOf, voxops } from '../support/cli.js';
import type { SimHost } from '../support/host.js';
import { API, DIALLER, FLEET, INGRESS, Sim } from '../support/sim.js';

/* Changes to the estate's shape and whole-estate runs: scale fleet, deploy ingress, deploy all. */

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
    enabled: [...host.units.values()]
      .filter((u) => u.name.startsWith('voxcore@') && u.enabled)
      .map((u) => u.name)
      .sort(),
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
    expect(
      fleet1
        .workers()
        .slice(0, 4)
        .every((w, i) => w.pid !== before[i]),
    ).toBe(true);
    expect(fleet1.workers().map((w) => [w.status, w.version])).toEqual(Array(6).fill([200, 'v1.4.2']));
    // the new workers were healthy before the reload that put them in nginx
    const log = fleet1.ran();
    expect(log.indexOf('systemctl enable --now -- voxcore@6')).toBeLessThan(log.indexOf('systemctl reload nginx'));
    expect(eventsOf(run, 'info').map((e) => e.message)).toContain('/health/fleet through nginx: expected_workers 6, capacity 6');
    expect(eventsOf(run, 'warning').map((e) => e.message)).toContainEqual(
      expect.stringMatching(/^set workers: 6 for fleet1 in .*voxops\.yaml \(environments\.test\.hosts\.fleet\): it says 4/),
    );
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
    expect(
      eventsOf(run, 'worker')
        .filter((e) => e.worker === 4)
        .map((e) => e.phase),
    ).toEqual(['drained', 'idle', 'removed']);
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
    expect(
      fleet1
        .changes()
        .flatMap((c) => c.ran)
        .filter((c) => c.startsWith('systemctl') || c.startsWith('sh ')),
    ).toEqual([]);
    expect(fleet1.fs.exists(lockFile)).toBe(false);
  });
});

function ingressInFrontOfTwoFleetHosts(config: 'rendered' | 'stale') {
  const sim = new Sim();
  sim.addFleetHost('fleet1');
  sim.addFleetHost('fleet2', { workers: 2 });
  const ingress1 = sim.addIngressHost('ingress1', { config });
  return { sim, ingress1, config: ingress1.fs.read(INGRESS.config), pid: ingress1.haproxy!.pid };
}

describe('deploy ingress', () => {
  it('renders haproxy.cfg from the fleet hosts, checks it, keeps the old one, reloads and waits for every backend UP', async () => {
    const { sim, ingress1, config: old, pid } = ingressInFrontOfTwoFleetHosts('stale');

    const run = await voxops(sim, ['deploy', 'ingress', '--json']);

    expect(run.exitCode, run.stderr).toBe(0);
    const rendered = renderHaproxyConfig(INGRESS, [
      { name: 'fleet1', host: '10.0.0.11', port: 80, maxconn: 4 },
      { name: 'fleet2', host: '10.0.0.12', port: 80, maxconn: 2 },
    ]);
    expect(ingress1.fs.read(INGRESS.config)).toBe(rendered);
    expect(ingress1.fs.read(backupPath(INGRESS.config))).toBe(old);
    expect(ingress1.haproxy!.pid).not.toBe(pid);
    expect(ingress1.haproxy!.loaded.map((s) => `${s.name} ${s.host}:${s.port} ${s.maxconn}`)).toEqual([
      'fleet1 10.0.0.11:80 4',
      'fleet2 10.0.0.12:80 2',
    ]);
    expect(ingress1.ran()).toEqual(
      expect.arrayContaining(['haproxy -c -f /etc/haproxy/haproxy.cfg.voxops-new', 'systemctl reload -- haproxy.service']),
    );
    expect(eventsOf(run, 'info').map((e) => e.message)).toContain('UP: fleet1, fleet2');
    expect(sim.historyOf('ingress1')).toMatchObject([
      { role: 'ingress', action: 'deploy', outcome: 'success', detail: 'deploy: fleet1=10.0.0.11:80, fleet2=10.0.0.12:80' },
    ]);
    expect(ingress1.fs.exists(lockFile)).toBe(false);
  });

  it('only verifies a config that is already what it would render', async () => {
    const { sim, ingress1, config, pid } = ingressInFrontOfTwoFleetHosts('rendered');

    const run = await voxops(sim, ['deploy', 'ingress', '--json']);

    expect(run.exitCode, run.stderr).toBe(0);
    expect(eventsOf(run, 'host').map((e) => `${e.phase}: ${e.message}`)).toEqual([
      expect.stringMatching(/^start: (sha256:\w+) -> \1$/),
      'done: /etc/haproxy/haproxy.cfg unchanged; nothing to do (serving fleet1 (10.0.0.11:80, maxconn 4), fleet2 (10.0.0.12:80, maxconn 2))',
    ]);
    expect(ingress1.fs.read(INGRESS.config)).toBe(config);
    expect(ingress1.haproxy!.pid).toBe(pid);
    // the lock, and the progress record every change keeps while it runs: nothing of haproxy's
    expect(ingress1.changes().map((c) => c.step)).toEqual([
      'take the deploy lock',
      'record progress',
      'clear progress',
      'release the deploy lock',
    ]);
  });

  it('loads nothing when haproxy -c rejects the rendered config (exit 11), and records the failed attempt', async () => {
    const { sim, ingress1, config: old } = ingressInFrontOfTwoFleetHosts('stale');
    ingress1.haproxy!.rejects = (text) =>
      text.includes('fleet2')
        ? "config : parsing [/etc/haproxy/haproxy.cfg.voxops-new:46] : 'server fleet2' : could not resolve address '10.0.0.12'"
        : undefined;

    const run = await voxops(sim, ['deploy', 'ingress']);

    expect(run.exitCode).toBe(11);
    expect(run.error).toBe(
      "voxops: ingress1: haproxy -c rejected the rendered config: config : parsing [/etc/haproxy/haproxy.cfg.voxops-new:46] : 'server fleet2' : could not resolve address '10.0.0.12'; /etc/haproxy/haproxy.cfg was not changed and haproxy keeps running the old one. Next: fix the fleet list (environments.<env>.hosts.fleet or the URL), then: voxops deploy ingress --dry-run",
    );
    expect(ingress1.fs.read(INGRESS.config)).toBe(old);
    expect(ingress1.fs.exists(`${INGRESS.config}.voxops-new`)).toBe(false);
    expect(ingress1.ran()).not.toContain('systemctl reload -- haproxy.service');
    expect(sim.historyOf('ingress1')).toMatchObject([
      { role: 'ingress', action: 'deploy', outcome: 'failed', detail: expect.stringContaining('haproxy -c rejected') },
    ]);
  });
});

describe('deploy all', () => {
  it('stops at the first role that fails and says which roles were not started', async () => {
    const sim = new Sim();
    const api1 = sim.addServiceHost('api', 'api1');
    const console1 = sim.addConsoleHost('console1');
    const fleet1 = sim.addFleetHost('fleet1');
    const dialler1 = sim.addServiceHost('dialler', 'dialler1');
    const ingress1 = sim.addIngressHost('ingress1', { config: 'stale' });
    // v1.5.0 is good for every role but the fleet, whose workers answer 500
    sim.origins.fleet.tag('v1.5.0', { flavour: 'badhealth' });
    const dialler = dialler1.procOf(DIALLER.unit);

    const run = await voxops(sim, ['deploy', 'all', '--tag', 'v1.5.0', '--json']);

    expect(run.exitCode).toBe(4);
    expect(run.error).toBe(
      "voxops: deploy all v1.5.0: fleet failed after api, console succeeded; not started: dialler, ingress: fleet1: worker 1 (voxcore@1) failed its health gate on v1.5.0 after 1s: /health answered HTTP 500; fleet1 was rolled back to v1.4.2. Next: read the worker's log: voxops logs fleet --host fleet1 --worker 1",
    );
    expect(eventsOf(run, 'info').map((e) => e.message)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^deploy all v1\.5\.0: preflight of api, console, fleet, dialler, ingress passed in /),
        'deploy all v1.5.0: fleet (3 of 5)',
      ]),
    );
    expect(run.events.at(-1)).toMatchObject({ type: 'summary', summary: { role: 'all', exitCode: 4 } });
    expect(run.summary!.hosts.map((h) => `${h.host} ${h.outcome}`)).toEqual(['api1 success', 'console1 success', 'fleet1 rolled-back']);
    expect(api1.procOf(API.unit)!.version).toBe('v1.5.0');
    expect(console1.releaseIn('/opt/voxconsole')).toBe('v1.5.0');
    expect(fleet1.releaseIn(FLEET.path)).toBe('v1.4.2');
    expect(fleet1.workers().map((w) => w.version)).toEqual(Array(4).fill('v1.4.2'));
    // the roles after the fleet were only looked at (the preflight of all five)
    expect(dialler1.changes()).toEqual([]);
    expect(dialler1.procOf(DIALLER.unit)).toBe(dialler);
    expect(ingress1.changes()).toEqual([]);
  });
});
