import { describe, expect, it } from 'vitest';
import { backupPath, candidatePath, parseFleetServers, renderHaproxyConfig } from '../../../src/commands/haproxy.js';
import { lockFile } from '../../../src/commands/state.js';
import { eventsOf, voxops, type Run } from '../support/cli.js';
import { expectRefusal } from '../support/expect.js';
import type { SimHost } from '../support/host.js';
import { INGRESS, Sim } from '../support/sim.js';

/*
 * The ingress (HAProxy in front of the fleet hosts) through the whole CLI on a scripted host:
 * add-fleet, remove-fleet and its drain, deploy ingress when things go wrong, and status.
 */

/**
 * fleet1 (4 workers) and fleet2 (2 workers) behind ingress1, whose haproxy.cfg is what voxops
 * renders; fleet3 (3 workers, 10.0.0.13) is on the network but not yet in the inventory.
 */
function estate() {
  const sim = new Sim();
  const fleet1 = sim.addFleetHost('fleet1');
  const fleet2 = sim.addFleetHost('fleet2', { workers: 2 });
  const fleet3 = sim.addFleetHost('fleet3', { workers: 3, listed: false });
  const ingress1 = sim.addIngressHost('ingress1');
  const config = ingress1.fs.read(INGRESS.config);
  return { sim, fleet1, fleet2, fleet3, ingress1, config, pid: ingress1.haproxy!.pid };
}

/** The fleet list haproxy.cfg names now, and the one the running haproxy loaded. */
function servers(ingress: SimHost) {
  const listed = parseFleetServers(ingress.fs.read(INGRESS.config), INGRESS.backend, INGRESS.fleetPort) ?? [];
  return {
    file: listed.map((s) => `${s.name} ${s.host}:${s.port} ${s.maxconn ?? '-'}`),
    loaded: ingress.haproxy!.loaded.map((s) => `${s.name} ${s.host}:${s.port} ${s.maxconn ?? '-'}`),
  };
}

const infos = (run: Run) => eventsOf(run, 'info').map((e) => e.message);
const warnings = (run: Run) => eventsOf(run, 'warning').map((e) => e.message);
/** every runtime API command voxops sent (the python3 client's last argument) */
const runtime = (host: SimHost) => host.log.filter((c) => c.step.startsWith('haproxy: ')).map((c) => c.step.slice('haproxy: '.length));

describe('ingress add-fleet', () => {
  it('checks the new fleet host from the ingress, adds it with its worker count as maxconn, reloads and waits until it is UP', async () => {
    const { sim, ingress1, config, pid } = estate();

    const run = await voxops(sim, ['ingress', 'add-fleet', 'http://10.0.0.13:80', '--json']);

    expect(run.exitCode, run.stderr).toBe(0);
    expect(servers(ingress1)).toEqual({
      file: ['fleet1 10.0.0.11:80 4', 'fleet2 10.0.0.12:80 2', 'fleet-10-0-0-13 10.0.0.13:80 3'],
      loaded: ['fleet1 10.0.0.11:80 4', 'fleet2 10.0.0.12:80 2', 'fleet-10-0-0-13 10.0.0.13:80 3'],
    });
    expect(ingress1.fs.read(backupPath(INGRESS.config))).toBe(config);
    expect(ingress1.haproxy!.pid).not.toBe(pid);
    // asked from the ingress host, before anything changed
    const log = ingress1.ran();
    expect(log.indexOf("curl -sS --max-time 3 -w '\\n%{http_code}' http://10.0.0.13:80/health/fleet")).toBeLessThan(
      log.findIndex((c) => c.startsWith('dd ')),
    );
    expect(infos(run)).toContain('UP: fleet-10-0-0-13');
    expect(warnings(run)).toEqual([
      "the ingress now serves http://10.0.0.11:80, http://10.0.0.12:80, http://10.0.0.13:80, which is not the inventory's fleet list: add it to environments.test.hosts.fleet, or the next `voxops deploy ingress` will undo this",
    ]);
    expect(sim.historyOf('ingress1')).toMatchObject([
      { role: 'ingress', action: 'add-fleet', outcome: 'success', detail: 'add-fleet http://10.0.0.13:80 (fleet-10-0-0-13, maxconn 3)' },
    ]);
    expect(ingress1.fs.exists(lockFile)).toBe(false);
  });

  it('takes the name and worker count the inventory gives a listed host that is missing from the live config', async () => {
    const sim = new Sim();
    sim.addFleetHost('fleet1');
    sim.addFleetHost('fleet2', { workers: 2 });
    // a hand-written config that lists fleet1 only
    const ingress1 = sim.addIngressHost('ingress1', { config: 'stale' });

    const run = await voxops(sim, ['ingress', 'add-fleet', 'http://10.0.0.12', '--json']);

    expect(run.exitCode, run.stderr).toBe(0);
    // fleet1 stays as the hand-written line has it (no maxconn); fleet2 as the inventory describes it
    expect(servers(ingress1).loaded).toEqual(['fleet1 10.0.0.11:80 -', 'fleet2 10.0.0.12:80 2']);
    // what it serves is now the inventory's list: nothing to warn about
    expect(warnings(run)).toEqual([]);
  });

  it('only verifies a fleet host that is already behind the ingress', async () => {
    const { sim, ingress1, config, pid } = estate();

    const run = await voxops(sim, ['ingress', 'add-fleet', 'http://10.0.0.12:80', '--json']);

    expect(run.exitCode, run.stderr).toBe(0);
    expect(infos(run)).toEqual(expect.arrayContaining(['http://10.0.0.12:80 is already behind the ingress as fleet2', 'UP: fleet2']));
    expect(ingress1.fs.read(INGRESS.config)).toBe(config);
    expect(ingress1.haproxy!.pid).toBe(pid);
    expect(ingress1.changes().map((c) => c.step)).toEqual([
      'take the deploy lock',
      'record progress',
      'clear progress',
      'release the deploy lock',
    ]);
    expect(sim.historyOf('ingress1')).toEqual([]);
  });

  it('refuses a fleet host that does not answer healthy from the ingress host, and changes nothing (exit 7)', async () => {
    const { sim, ingress1, fleet3 } = estate();
    // every worker of fleet3 is dead: nginx has nothing to pass /health/fleet to
    for (const i of [1, 2, 3]) fleet3.crash(fleet3.workerUnit(i));

    const dead = await voxops(sim, ['ingress', 'add-fleet', 'http://10.0.0.13:80']);
    const nowhere = await voxops(sim, ['ingress', 'add-fleet', 'http://10.0.0.99:80']);

    expectRefusal(
      dead,
      7,
      [
        'voxops: ingress1: http://10.0.0.13:80/health/fleet does not answer healthy from the ingress host; nothing was changed. Next: check the fleet host (voxops status fleet), then: voxops ingress add-fleet http://10.0.0.13:80',
        '  - HTTP 502: not JSON: <html><head><title>502 Bad Gateway</title></head></html>',
      ],
      [ingress1],
    );
    expectRefusal(
      nowhere,
      7,
      [
        'voxops: ingress1: http://10.0.0.99:80/health/fleet does not answer healthy from the ingress host; nothing was changed. Next: check the fleet host (voxops status fleet), then: voxops ingress add-fleet http://10.0.0.99:80',
        '  - no answer: curl: (28) Operation timed out after 3000 milliseconds with 0 bytes received',
      ],
      [ingress1],
    );
  });

  it('refuses a URL that is not a fleet URL before it connects anywhere (exit 2)', async () => {
    const { sim, ingress1 } = estate();

    const run = await voxops(sim, ['ingress', 'add-fleet', 'http://10.0.0.13/attach']);

    expectRefusal(
      run,
      2,
      [
        'voxops: "http://10.0.0.13/attach" is not a fleet URL: expected http://HOST[:PORT] (scheme http, a host name or IP, an optional port, nothing after it). Next: voxops ingress add-fleet http://10.0.0.12:80',
      ],
      [ingress1],
    );
    expect(ingress1.log).toEqual([]);
  });
});

describe('ingress remove-fleet', () => {
  it('drains the server, waits until its sessions have ended, then reloads without it', async () => {
    const { sim, ingress1 } = estate();
    ingress1.haproxy!.sessions.set('fleet2', 3);

    const run = await voxops(sim, ['ingress', 'remove-fleet', 'http://10.0.0.12:80', '--json']);

    expect(run.exitCode, run.stderr).toBe(0);
    expect(servers(ingress1)).toEqual({ file: ['fleet1 10.0.0.11:80 4'], loaded: ['fleet1 10.0.0.11:80 4'] });
    expect(ingress1.haproxy!.sessions.get('fleet2')).toBe(0);
    // drained before the new config was installed, and only then
    const commands = runtime(ingress1);
    expect(commands.indexOf('set server fleet/fleet2 state drain')).toBeGreaterThan(-1);
    const log = ingress1.log.map((c) => c.step);
    expect(log.indexOf('haproxy: set server fleet/fleet2 state drain')).toBeLessThan(log.indexOf(`install ${INGRESS.config}`));
    expect(infos(run)).toContainEqual(expect.stringMatching(/^fleet2 drained: 0 sessions after \d+\.\ds$/));
    expect(warnings(run)).toEqual([
      "the ingress now serves http://10.0.0.11:80, which is not the inventory's fleet list: remove it from environments.test.hosts.fleet, or the next `voxops deploy ingress` will undo this",
    ]);
    expect(sim.historyOf('ingress1')).toMatchObject([
      { action: 'remove-fleet', outcome: 'success', detail: 'remove-fleet http://10.0.0.12:80 (fleet2)' },
    ]);
  });

  it('leaves a server whose calls outlast the drain timeout drained but listed, and the config as it was (exit 9)', async () => {
    const { sim, ingress1, config, pid } = estate();
    ingress1.haproxy!.sessions.set('fleet2', 2);
    ingress1.haproxy!.holding.add('fleet2');

    const run = await voxops(sim, ['ingress', 'remove-fleet', 'http://10.0.0.12:80', '--drain-timeout', '25', '--json']);

    expect(run.exitCode).toBe(9);
    expect(run.error).toBe(
      'voxops: ingress1: fleet2 (http://10.0.0.12:80) still has 2 session(s) after 25s; it stays drained (no new calls) but listed, and the config was not changed. Next: when its calls have ended: voxops ingress remove-fleet http://10.0.0.12:80 (or voxops deploy ingress)',
    );
    // it said twice (every 10 s) what it was waiting for
    expect(infos(run).filter((m) => m === 'fleet2 drained, waiting for 2 session(s) to end')).toHaveLength(2);
    expect(ingress1.fs.read(INGRESS.config)).toBe(config);
    expect(ingress1.fs.exists(candidatePath(INGRESS.config))).toBe(false);
    expect(ingress1.haproxy!.pid).toBe(pid);
    expect(ingress1.haproxy!.drained).toEqual(new Set(['fleet2']));
    expect(sim.historyOf('ingress1')).toMatchObject([{ action: 'remove-fleet', outcome: 'failed' }]);

    // a later deploy ingress finds the config current and puts the drained server back in rotation
    const deploy = await voxops(sim, ['deploy', 'ingress', '--json']);

    expect(deploy.exitCode, deploy.stderr).toBe(0);
    expect(infos(deploy)).toContain('fleet2 was left drained (an unfinished remove-fleet?); it is back in rotation');
    expect(ingress1.haproxy!.drained).toEqual(new Set());
    expect(ingress1.haproxy!.pid).toBe(pid);
  });

  it('Ctrl-C during the drain puts the server back in rotation and changes nothing (exit 130)', async () => {
    const { sim, ingress1, config } = estate();
    ingress1.haproxy!.sessions.set('fleet2', 1);
    ingress1.haproxy!.holding.add('fleet2');
    const listeners = process.listeners('SIGINT');

    const run = await voxops(sim, ['ingress', 'remove-fleet', 'http://10.0.0.12:80', '--drain-timeout', '60', '--json'], {
      onEvent: (e) => {
        if (e.type === 'info' && e.message.startsWith('fleet2 drained, waiting')) process.emit('SIGINT', 'SIGINT');
      },
    });

    expect(process.listeners('SIGINT')).toEqual(listeners);
    expect(run.exitCode).toBe(130);
    expect(run.error).toBe(
      'voxops: interrupted while fleet2 drained; it is back in rotation and nothing was changed. Next: voxops deploy ingress',
    );
    expect(runtime(ingress1).filter((c) => c.startsWith('set server'))).toEqual([
      'set server fleet/fleet2 state drain',
      'set server fleet/fleet2 state ready',
    ]);
    expect(ingress1.haproxy!.drained).toEqual(new Set());
    expect(ingress1.fs.read(INGRESS.config)).toBe(config);
    expect(ingress1.fs.exists(candidatePath(INGRESS.config))).toBe(false);
    expect(sim.historyOf('ingress1')).toMatchObject([{ action: 'remove-fleet', outcome: 'interrupted' }]);
    expect(ingress1.fs.exists(lockFile)).toBe(false);
  });

  it('refuses a URL that is not behind the ingress, and the last fleet host (exit 2)', async () => {
    const { sim, ingress1 } = estate();

    const unknown = await voxops(sim, ['ingress', 'remove-fleet', 'http://10.0.0.13:80']);

    expectRefusal(
      unknown,
      2,
      [
        'voxops: http://10.0.0.13:80 is not behind the ingress on ingress1 (it serves http://10.0.0.11:80, http://10.0.0.12:80). Next: voxops ingress remove-fleet <one of those URLs>',
      ],
      [ingress1],
    );

    // a backend with no server left in it
    ingress1.fs.write(INGRESS.config, ingress1.fs.read(INGRESS.config).replace(/^ {4}server .*\n/gm, ''));
    const empty = await voxops(sim, ['ingress', 'remove-fleet', 'http://10.0.0.12:80']);

    expect(empty.exitCode).toBe(2);
    expect(empty.error).toBe(
      'voxops: http://10.0.0.12:80 is not behind the ingress on ingress1 (it serves nothing). Next: voxops ingress remove-fleet <one of those URLs>',
    );

    const alone = new Sim();
    alone.addFleetHost('fleet1');
    const single = alone.addIngressHost('ingress1');

    const last = await voxops(alone, ['ingress', 'remove-fleet', 'http://10.0.0.11:80']);

    expectRefusal(
      last,
      2,
      [
        'voxops: http://10.0.0.11:80 is the last fleet host behind the ingress on ingress1; removing it would leave no backend. Next: add the replacement first: voxops ingress add-fleet <URL>',
      ],
      [single],
    );
  });

  it('a dry run shows the drain of the server it drops and changes nothing', async () => {
    const { sim, ingress1 } = estate();

    const run = await voxops(sim, ['ingress', 'remove-fleet', 'http://10.0.0.12:80', '--dry-run', '--json']);

    expect(run.exitCode, run.stderr).toBe(0);
    expect(eventsOf(run, 'command').map((e) => e.command)).toEqual(
      expect.arrayContaining([
        "echo 'set server fleet/fleet2 state drain' to /run/haproxy/admin.sock (HAProxy runtime API, python3 client)",
        "poll until every server UP (at most 1s): echo 'show stat' to /run/haproxy/admin.sock (HAProxy runtime API, python3 client)",
      ]),
    );
    expect(ingress1.changes()).toEqual([]);
    expect(ingress1.haproxy!.drained).toEqual(new Set());
  });

  it('refuses a live config that has no fleet backend at all (exit 7)', async () => {
    const { sim, ingress1 } = estate();
    ingress1.fs.write(INGRESS.config, ingress1.fs.read(INGRESS.config).replace(/^backend fleet$/m, 'backend calls'));

    const run = await voxops(sim, ['ingress', 'remove-fleet', 'http://10.0.0.12:80']);

    expectRefusal(
      run,
      7,
      [
        'voxops: ingress1: /etc/haproxy/haproxy.cfg has no backend "fleet"; nothing was changed. Next: render the whole config from the inventory first: voxops deploy ingress',
      ],
      [ingress1],
    );
  });
});

describe('deploy ingress when things go wrong', () => {
  it("refuses when HAProxy's runtime API does not answer, and when the live config has server names it will not pass on (exit 7)", async () => {
    const { sim, ingress1 } = estate();
    ingress1.haproxy!.running = false;

    const stopped = await voxops(sim, ['deploy', 'ingress']);

    expectRefusal(
      stopped,
      7,
      [
        'voxops: preflight refused the deploy of ingress: 1 problem(s); nothing was changed. Next: fix the problems above, then re-run',
        '  - ingress1: HAProxy\'s runtime API does not answer on /run/haproxy/admin.sock (cannot connect to /run/haproxy/admin.sock: [Errno 2] No such file or directory); is haproxy running with "stats socket /run/haproxy/admin.sock level admin"?',
      ],
      [ingress1],
    );

    ingress1.haproxy!.running = true;
    ingress1.fs.write(
      INGRESS.config,
      ingress1.fs.read(INGRESS.config).replace('server fleet2 ', 'server fleet2;disable ').replace('server fleet1 ', 'server -fleet1 '),
    );

    const odd = await voxops(sim, ['deploy', 'ingress']);

    expectRefusal(
      odd,
      7,
      [
        'voxops: preflight refused the deploy of ingress: 1 problem(s); nothing was changed. Next: fix the problems above, then re-run',
        '  - ingress1: /etc/haproxy/haproxy.cfg has server names voxops will not pass to the runtime API: "-fleet1", "fleet2;disable"',
      ],
      [ingress1],
    );
  });

  it('refuses an environment with no fleet hosts: the ingress would serve nothing (exit 2)', async () => {
    const sim = new Sim();
    const ingress1 = sim.addIngressHost('ingress1', { config: 'stale' });

    const run = await voxops(sim, ['deploy', 'ingress']);

    expectRefusal(
      run,
      2,
      ['voxops: environment test has no fleet hosts: the ingress would serve nothing. Next: list them under environments.test.hosts.fleet'],
      [ingress1],
    );
  });

  it('drains a server the new config drops, and says so when the running haproxy does not list it', async () => {
    const { sim, ingress1 } = estate();
    // the live file lists fleet3, which the inventory does not; the running haproxy never loaded it
    const withExtra = renderHaproxyConfig(INGRESS, [
      { name: 'fleet1', host: '10.0.0.11', port: 80, maxconn: 4 },
      { name: 'fleet2', host: '10.0.0.12', port: 80, maxconn: 2 },
      { name: 'fleet3', host: '10.0.0.13', port: 80, maxconn: 3 },
    ]);
    ingress1.fs.write(INGRESS.config, withExtra);

    const run = await voxops(sim, ['deploy', 'ingress', '--json']);

    expect(run.exitCode, run.stderr).toBe(0);
    expect(infos(run)).toContain('fleet3 is not in the running haproxy: nothing to drain');
    expect(servers(ingress1).file).toEqual(['fleet1 10.0.0.11:80 4', 'fleet2 10.0.0.12:80 2']);
    expect(sim.historyOf('ingress1')).toMatchObject([{ action: 'deploy', outcome: 'success' }]);
  });

  it("puts the old file back when the reload fails, and prints the unit's journal (exit 5)", async () => {
    const { sim, ingress1, config, pid } = estate();
    ingress1.fs.write(INGRESS.config, config.replace(/^ {4}server fleet2 .*\n/m, ''));
    const before = ingress1.fs.read(INGRESS.config);
    ingress1.haproxy!.nextReloads = ['fail'];

    const run = await voxops(sim, ['deploy', 'ingress', '--json']);

    expect(run.exitCode).toBe(5);
    expect(run.error).toMatch(
      /^voxops: ingress1: reload haproxy\.service failed \(exit 1\): .*\. Next: the old config is back in place; read the log: journalctl -u haproxy\.service$/,
    );
    expect(run.stderr).toContain('Reload failed for haproxy.service - HAProxy Load Balancer.');
    expect(ingress1.fs.read(INGRESS.config)).toBe(before);
    expect(ingress1.haproxy!.pid).toBe(pid);
    expect(sim.historyOf('ingress1')).toMatchObject([{ action: 'deploy', outcome: 'failed' }]);
  });

  it('fails the gate when the reload starts no new haproxy worker (exit 4)', async () => {
    const { sim, ingress1, config, pid } = estate();
    ingress1.fs.write(INGRESS.config, config.replace(/^ {4}server fleet2 .*\n/m, ''));
    ingress1.haproxy!.nextReloads = ['lost'];

    const run = await voxops(sim, ['deploy', 'ingress']);

    expect(run.exitCode).toBe(4);
    expect(run.error).toBe(
      `voxops: ingress1: haproxy did not start a new worker within 15s of the reload (worker pid still ${pid}). Next: journalctl -u haproxy.service on ingress1, then: voxops deploy ingress`,
    );
  });

  it('fails the gate when a backend does not come UP, saying what the ingress sees of it (exit 4)', async () => {
    const { sim, ingress1, fleet2, config } = estate();
    ingress1.fs.write(INGRESS.config, config.replace(/^ {4}server fleet2 .*\n/m, ''));
    for (const i of [1, 2]) fleet2.crash(fleet2.workerUnit(i));

    const run = await voxops(sim, ['deploy', 'ingress']);

    expect(run.exitCode).toBe(4);
    expect(run.error).toBe(
      'voxops: ingress1: the new config is live, but not every fleet backend came UP within 1s: fleet2: DOWN (check L7STS: 502); from the ingress: HTTP 502: not JSON: <html><head><title>502 Bad Gateway</title></head></html>. Next: check the fleet hosts (voxops health), then: voxops deploy ingress',
    );
    // the new config stays: it is what the inventory asks for
    expect(servers(ingress1).loaded).toEqual(['fleet1 10.0.0.11:80 4', 'fleet2 10.0.0.12:80 2']);
  });

  it('Ctrl-C while it waits for the backends to come UP: the new config stays loaded (exit 130)', async () => {
    const { sim, ingress1, fleet2, config } = estate();
    ingress1.fs.write(INGRESS.config, config.replace(/^ {4}server fleet2 .*\n/m, ''));
    for (const i of [1, 2]) fleet2.crash(fleet2.workerUnit(i));

    const run = await voxops(sim, ['deploy', 'ingress', '--json'], {
      onEvent: (e) => {
        if (e.type === 'step' && e.status === 'start' && e.step === 'wait until fleet1, fleet2 UP') process.emit('SIGINT', 'SIGINT');
      },
    });

    expect(run.exitCode).toBe(130);
    expect(run.error).toBe(
      'voxops: interrupted while waiting for fleet2 to come UP on ingress1; the new config is loaded. Next: check it: voxops deploy ingress --dry-run',
    );
    expect(servers(ingress1).loaded).toEqual(['fleet1 10.0.0.11:80 4', 'fleet2 10.0.0.12:80 2']);
    expect(ingress1.fs.exists(lockFile)).toBe(false);
  });

  it('an added fleet host the running haproxy does not list yet (a reload pending) is a health problem (exit 10)', async () => {
    const { sim, ingress1 } = estate();
    // someone edited the file by hand and did not reload: the running process has fleet1 only
    ingress1.haproxy!.loaded = ingress1.haproxy!.loaded.filter((s) => s.name === 'fleet1');

    const run = await voxops(sim, ['ingress', 'add-fleet', 'http://10.0.0.12:80']);

    expectRefusal(
      run,
      10,
      [
        'voxops: ingress1: the config is current, but not every fleet backend is UP. Next: check the fleet hosts: voxops health',
        '  - fleet2: not listed by the running haproxy',
      ],
      [],
    );
  });

  it('refuses a fleet host whose address HAProxy cannot use (exit 2)', async () => {
    const { sim, ingress1 } = estate();
    sim.configure((doc) => (doc.environments.test.hosts.fleet[1].address = '999.0.0.12'));

    const run = await voxops(sim, ['deploy', 'ingress']);

    expect(run.exitCode).toBe(2);
    expect(run.stderr).toMatch(
      /^voxops: \S+voxops\.yaml: fleet hosts HAProxy cannot use\. Next: fix them, then run voxops config check\n {2}- environments\.test\.hosts\.fleet: fleet2: "999\.0\.0\.12" is not a valid IPv4 address\n$/,
    );
    expect(ingress1.changes()).toEqual([]);
  });

  it('counts a backend DOWN only because its fleet host is full as up, with a warning', async () => {
    const { sim, ingress1, fleet2, config } = estate();
    ingress1.fs.write(INGRESS.config, config.replace(/^ {4}server fleet2 .*\n/m, ''));
    // fleet2: worker 1 holds a call, worker 2 is idle but unhealthy: /health/fleet says 0 free
    fleet2.startCall(1, Infinity);
    fleet2.worker(2)!.spec = { flavour: 'badhealth' };

    const run = await voxops(sim, ['deploy', 'ingress', '--json']);

    expect(run.exitCode, run.stderr).toBe(0);
    expect(warnings(run)).toEqual([
      'fleet2 is DOWN: its fleet host is full (HTTP 200, healthy 1, free 0 of 1); it rejoins when a worker frees up',
    ]);
  });

  it('a config that is already current but has a backend DOWN is a health problem (exit 10)', async () => {
    const { sim, ingress1, fleet2, pid } = estate();
    for (const i of [1, 2]) fleet2.crash(fleet2.workerUnit(i));

    const run = await voxops(sim, ['deploy', 'ingress']);

    // exactly these lines, with exit 10 (the lock was taken and released: nothing else changed)
    expectRefusal(
      run,
      10,
      [
        'voxops: ingress1: the config is current, but not every fleet backend is UP. Next: check the fleet hosts: voxops health',
        '  - fleet2: DOWN (check L7STS: 502); from the ingress: HTTP 502: not JSON: <html><head><title>502 Bad Gateway</title></head></html>',
      ],
      [],
    );
    expect(ingress1.haproxy!.pid).toBe(pid);
  });

  it('a dry run shows the diff, the drain of what it drops and the reload, and checks the rendered config read-only', async () => {
    const { sim, ingress1 } = estate();
    ingress1.fs.write(
      INGRESS.config,
      renderHaproxyConfig(INGRESS, [
        { name: 'fleet1', host: '10.0.0.11', port: 80, maxconn: 4 },
        { name: 'old9', host: '10.0.0.19', port: 80, maxconn: 4 },
      ]),
    );

    const run = await voxops(sim, ['deploy', 'ingress', '--dry-run', '--json']);

    expect(run.exitCode, run.stderr).toBe(0);
    expect(ingress1.changes()).toEqual([]);
    const plan = eventsOf(run, 'command').map((e) => e.command);
    expect(plan).toEqual(
      expect.arrayContaining([
        "echo 'set server fleet/old9 state drain' to /run/haproxy/admin.sock (HAProxy runtime API, python3 client)",
        "poll every 250 ms until old9 has 0 sessions (at most 1s): echo 'show stat' to /run/haproxy/admin.sock (HAProxy runtime API, python3 client)",
        'systemctl reload -- haproxy.service',
        "poll until fleet1, fleet2 UP (at most 1s): echo 'show stat' to /run/haproxy/admin.sock (HAProxy runtime API, python3 client)",
      ]),
    );
    expect(infos(run)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^changes to \/etc\/haproxy\/haproxy\.cfg:\n[\s\S]*-    server old9 10\.0\.0\.19:80 maxconn 4/),
        'haproxy -c accepts the rendered config',
      ]),
    );
    expect(ingress1.ran()).toContain('haproxy -c -f /dev/stdin');

    // HAProxy rejects it: the dry run says so, still changing nothing
    ingress1.haproxy!.rejects = () => "config : parsing [/dev/stdin:46] : 'server fleet2' : could not resolve address";
    const rejected = await voxops(sim, ['deploy', 'ingress', '--dry-run']);

    expect(rejected.exitCode).toBe(11);
    expect(rejected.error).toBe(
      "voxops: ingress1: haproxy -c rejected the rendered config: config : parsing [/dev/stdin:46] : 'server fleet2' : could not resolve address (dry run). Next: fix the fleet list (environments.<env>.hosts.fleet or the URL), then: voxops deploy ingress --dry-run",
    );
    expect(ingress1.changes()).toEqual([]);
  });

  it('a dry run of a current config says nothing would change', async () => {
    const { sim, ingress1 } = estate();

    const run = await voxops(sim, ['deploy', 'ingress', '--dry-run', '--json']);

    expect(run.exitCode, run.stderr).toBe(0);
    expect(infos(run)).toContain(
      '/etc/haproxy/haproxy.cfg is already what voxops would render (fleet1 10.0.0.11:80 maxconn 4, fleet2 10.0.0.12:80 maxconn 2); nothing would change',
    );
    expect(ingress1.ran()).not.toContain('haproxy -c -f /dev/stdin');
  });
});

describe('status of the ingress', () => {
  it("lists each backend with HAProxy's view of it; one not UP is a problem health reports (exit 10)", async () => {
    const { sim, ingress1, fleet2 } = estate();
    ingress1.haproxy!.sessions.set('fleet1', 3);
    for (const i of [1, 2]) fleet2.crash(fleet2.workerUnit(i));

    const status = await voxops(sim, ['status', 'ingress', '--json']);

    expect(status.exitCode, status.stderr).toBe(0);
    const report = JSON.parse(status.stdout);
    expect(report.hosts).toEqual([
      expect.objectContaining({
        name: 'ingress1',
        role: 'ingress',
        tag: null,
        health: 'unhealthy',
        backends: [
          { name: 'fleet1', address: '10.0.0.11:80', status: 'UP', sessions: 3, maxconn: 4 },
          { name: 'fleet2', address: '10.0.0.12:80', status: 'DOWN', sessions: 0, maxconn: 2 },
        ],
        problems: ['ingress1: fleet backend fleet2 (10.0.0.12:80) is DOWN'],
        workers: [],
      }),
    ]);

    const health = await voxops(sim, ['health', 'ingress']);

    expect(health.exitCode).toBe(10);
    expect(health.stderr).toContain('  - ingress1: fleet backend fleet2 (10.0.0.12:80) is DOWN\n');
  });

  it('says when the runtime API does not answer and when the config lists no server', async () => {
    const sim = new Sim();
    sim.addFleetHost('fleet1');
    // a hand-written config (no maxconn), and an inventory that leaves roles.ingress to its defaults
    const ingress1 = sim.addIngressHost('ingress1', { config: 'stale' });
    sim.configure((doc) => delete doc.roles.ingress);
    ingress1.haproxy!.running = false;

    const down = await voxops(sim, ['status', 'ingress', '--json']);

    expect(down.exitCode, down.stderr).toBe(0);
    expect(JSON.parse(down.stdout).hosts[0]).toMatchObject({
      health: 'unhealthy',
      backends: [{ name: 'fleet1', address: '10.0.0.11:80', status: 'unknown', sessions: null, maxconn: null }],
      problems: ['ingress1: the HAProxy runtime API at /run/haproxy/admin.sock does not answer'],
    });

    ingress1.haproxy!.running = true;
    ingress1.fs.write(INGRESS.config, ingress1.fs.read(INGRESS.config).replace(/^ {4}server .*\n/gm, ''));
    const empty = await voxops(sim, ['status', 'ingress', '--json']);

    expect(JSON.parse(empty.stdout).hosts[0]).toMatchObject({
      health: 'unhealthy',
      backends: [],
      problems: ['ingress1: /etc/haproxy/haproxy.cfg lists no server in backend fleet'],
    });
  });

  it('shows the journal of haproxy for voxops logs ingress', async () => {
    const { sim, ingress1 } = estate();
    ingress1.journal(ingress1.unit(INGRESS.unit)!, 'Server fleet/fleet2 is DOWN, reason: Layer7 wrong status');

    const run = await voxops(sim, ['logs', 'ingress', '--host', 'ingress1']);

    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stdout).toContain('ingress1 haproxy.service: Server fleet/fleet2 is DOWN, reason: Layer7 wrong status');
  });
});
