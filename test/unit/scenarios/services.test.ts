import { describe, expect, it } from 'vitest';
import { releaseName } from '../../../src/commands/console.js';
import { lockFile } from '../../../src/commands/state.js';
import { eventsOf, voxops } from '../support/cli.js';
import { expectRefusal } from '../support/expect.js';
import { API, CONSOLE, DIALLER, Sim } from '../support/sim.js';

/*
 * The roles with one service per host (api, dialler, console) when things are not as they should
 * be: an install that fails, a service down before its deploy, Ctrl-C while the dialler holds
 * leases, a console nginx will not serve, and what status says of each.
 */

describe('api and dialler', () => {
  it("an install that fails puts the previous release's files back and leaves the running process alone (exit 5)", async () => {
    const sim = new Sim();
    const api1 = sim.addServiceHost('api', 'api1');
    const before = api1.procOf(API.unit)!;

    const run = await voxops(sim, ['deploy', 'api', '--tag', 'v1.5.1-noinstall', '--json']);

    expect(run.exitCode).toBe(5);
    expect(run.error).toMatch(
      /^voxops: api1: install failed \(exit 1\): error: uv sync --frozen failed for v1\.5\.1-noinstall: No space left on device/,
    );
    expect(eventsOf(run, 'host').map((e) => e.phase)).toEqual(['start', 'rolling-back', 'rolled-back']);
    expect(api1.releaseIn(API.path)).toBe('v1.4.2');
    expect(api1.procOf(API.unit)).toBe(before);
    expect(api1.ran().filter((c) => c.startsWith('systemctl'))).toEqual([]);
    expect(sim.historyOf('api1')).toMatchObject([{ to: 'v1.5.1-noinstall', outcome: 'rolled-back' }]);
    expect(api1.fs.exists(lockFile)).toBe(false);
  });

  it('deploys an api that was down before, with a warning, and gates the new process', async () => {
    const sim = new Sim();
    const api1 = sim.addServiceHost('api', 'api1');
    api1.crash(api1.unit(API.unit)!);

    const run = await voxops(sim, ['deploy', 'api', '--tag', 'v1.5.0', '--json']);

    expect(run.exitCode, run.stderr).toBe(0);
    expect(eventsOf(run, 'warning').map((e) => e.message)).toContain(
      "api1: api is not healthy before the deploy (no answer (curl: (7) Failed to connect to 127.0.0.1 port 8080 after 0 ms: Couldn't connect to server))",
    );
    expect(api1.procOf(API.unit)!.version).toBe('v1.5.0');
  });

  it('restart refuses hosts that are not on one release, and restarts one that is, gated, as an outage', async () => {
    const sim = new Sim();
    const api1 = sim.addServiceHost('api', 'api1');
    const api2 = sim.addServiceHost('api', 'api2', { release: 'v1.5.0' });

    expectRefusal(
      await voxops(sim, ['restart', 'api']),
      7,
      [
        'voxops: cannot restart api: its hosts are not on one release tag; nothing was changed. Next: deploy one release first: voxops deploy api --tag <tag>',
        '  - api1: "v1.4.2"',
        '  - api2: "v1.5.0"',
      ],
      [api1, api2],
    );

    const before = api2.procOf(API.unit)!.pid;
    const run = await voxops(sim, ['restart', 'api', '--host', 'api2', '--json']);

    expect(run.exitCode, run.stderr).toBe(0);
    expect(api2.procOf(API.unit)).toMatchObject({ version: 'v1.5.0' });
    expect(api2.procOf(API.unit)!.pid).not.toBe(before);
    expect(api2.ran().filter((c) => c.startsWith('git') && !/ (describe|rev-parse) /.test(c))).toEqual([]);
    expect(eventsOf(run, 'warning').map((e) => e.message)).toEqual([
      expect.stringMatching(/^api has one host, so its restart was an outage: voxbridge\.service pid \d+ serves v1\.5\.0; api was down/),
    ]);
    expect(api1.changes()).toEqual([]);
  });

  it('Ctrl-C while the dialler holds leases: nothing restarted, the old files back (exit 130)', async () => {
    const sim = new Sim();
    const dialler1 = sim.addServiceHost('dialler', 'dialler1');
    const before = dialler1.procOf(DIALLER.unit)!;
    dialler1.lease(1, Infinity);
    let probes = 0;
    dialler1.watchers.push((sent) => {
      if (sent.ran.at(-1)?.endsWith(DIALLER.url) && ++probes === 3) process.emit('SIGINT', 'SIGINT');
    });

    const run = await voxops(sim, ['deploy', 'dialler', '--tag', 'v1.5.0', '--json']);

    expect(run.exitCode).toBe(130);
    expect(run.error).toMatch(/^voxops: interrupted while dialler1 waited for dialler leased_calls=0; dialler was not restarted/);
    expect(dialler1.procOf(DIALLER.unit)).toBe(before);
    expect(dialler1.stranded).toEqual([]);
    expect(dialler1.releaseIn(DIALLER.path)).toBe('v1.4.2');
    expect(dialler1.ran().filter((c) => c.startsWith('systemctl'))).toEqual([]);
  });

  it('status tells a service that answers 500 from one that does not answer', async () => {
    const sim = new Sim();
    const api1 = sim.addServiceHost('api', 'api1');
    const dialler1 = sim.addServiceHost('dialler', 'dialler1');
    api1.procOf(API.unit)!.spec = { flavour: 'badhealth' };
    dialler1.crash(dialler1.unit(DIALLER.unit)!);

    const status = await voxops(sim, ['status', '--json']);

    expect(status.exitCode, status.stderr).toBe(0);
    expect(
      JSON.parse(status.stdout).hosts.map((h: { name: string; health: string; problems: string[] }) => [h.name, h.health, h.problems]),
    ).toEqual([
      ['api1', 'unhealthy', ['api1: api http://127.0.0.1:8080/health is unhealthy']],
      ['dialler1', 'unreachable', ['dialler1: dialler http://127.0.0.1:8090/health is unreachable']],
    ]);
  });
});

describe('console', () => {
  function consoleHost(options: { release?: string; kept?: string[] } = {}) {
    const sim = new Sim();
    const console1 = sim.addConsoleHost('console1', options);
    const dir = (tag: string) => `${CONSOLE.path}/releases/${releaseName(tag, sim.origins.console.commit(tag))}`;
    return { sim, console1, dir };
  }

  it('refuses a host whose nginx -t fails or whose `current` is not a symlink (exit 7)', async () => {
    const { sim, console1 } = consoleHost();
    console1.nginx!.rejects = () => 'nginx: [emerg] unexpected "}" in /etc/nginx/sites-enabled/voxconsole.conf:4';
    console1.fs.remove(CONSOLE.current, false);
    console1.fs.mkdir(CONSOLE.current, true);

    expectRefusal(
      await voxops(sim, ['deploy', 'console', '--tag', 'v1.5.0']),
      7,
      [
        'voxops: preflight refused the deploy of console: 2 problem(s); nothing was changed. Next: fix the problems above (voxops status console), then re-run',
        '  - console1: nginx -t fails before any change: nginx: [emerg] unexpected "}" in /etc/nginx/sites-enabled/voxconsole.conf:4',
        '  - console1: /opt/voxconsole/current is not a symlink: nginx must serve the console from it',
      ],
      [console1],
    );
  });

  it('does not flip `current` when nginx -t starts failing during the deploy (exit 11)', async () => {
    const { sim, console1, dir } = consoleHost();

    const run = await voxops(sim, ['deploy', 'console', '--tag', 'v1.5.0', '--json'], {
      onEvent: (e) => {
        if (e.type === 'step' && e.status === 'done' && e.step.startsWith('keep the build as '))
          console1.nginx!.rejects = () => 'nginx: [emerg] open() "/etc/nginx/mime.types" failed (2: No such file or directory)';
      },
    });

    expect(run.exitCode).toBe(11);
    expect(run.error).toBe(
      'voxops: console1: nginx -t fails, so the console was not switched: nginx: [emerg] open() "/etc/nginx/mime.types" failed (2: No such file or directory). Next: fix nginx on console1 (nginx -t), then re-run',
    );
    expect(console1.fs.lstat(CONSOLE.current)).toMatchObject({ kind: 'symlink', target: dir('v1.4.2') });
    expect(console1.ran()).not.toContain('systemctl reload nginx');
  });

  it('a dry run of a rollback to a kept build shows the flip alone', async () => {
    const { sim, console1 } = consoleHost({ release: 'v1.5.0', kept: ['v1.4.2'] });

    const run = await voxops(sim, ['rollback', 'console', '--to', 'v1.4.2', '--dry-run', '--json']);

    expect(run.exitCode, run.stderr).toBe(0);
    expect(eventsOf(run, 'info').map((e) => e.message)).toContain(
      `kept build ${releaseName('v1.4.2', sim.origins.console.commit('v1.4.2'))}: no checkout, no build`,
    );
    expect(eventsOf(run, 'command').map((e) => e.step)).not.toContain('npm ci');
    expect(console1.changes()).toEqual([]);
  });

  it('status: a console that serves nothing is unhealthy', async () => {
    const { sim, console1, dir } = consoleHost();
    console1.fs.remove(`${dir('v1.4.2')}/index.html`, false);

    const status = await voxops(sim, ['status', 'console', '--json']);

    expect(JSON.parse(status.stdout).hosts[0]).toMatchObject({
      tag: 'v1.4.2',
      health: 'unhealthy',
      problems: ['console1: console http://127.0.0.1/ is unhealthy'],
    });
  });
});
