import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { labExec, labFault } from '../lab/lab.js';
import { fleetHosts, inventoryFile, resetFleetHost, voxops, workerHealth } from './helpers.js';

const inv = ['-i', inventoryFile];

interface ServiceHealth {
  httpStatus: number;
  version?: string;
  pid?: number;
}

async function serviceHealth(host: string, port: number): Promise<ServiceHealth> {
  const r = await labExec(host, `curl -s --max-time 2 -w ' %{http_code}' http://127.0.0.1:${port}/health`);
  const cut = r.stdout.lastIndexOf(' ');
  try {
    return { httpStatus: Number(r.stdout.slice(cut + 1)), ...(JSON.parse(r.stdout.slice(0, cut)) as object) };
  } catch {
    return { httpStatus: Number(r.stdout.slice(cut + 1)) || 0 };
  }
}

async function served(): Promise<string> {
  return (await labExec('api', 'curl -s --max-time 2 http://127.0.0.1/')).stdout;
}

async function lastHistory(host: string): Promise<Record<string, unknown>> {
  const r = await labExec(host, ['tail', '-n', '1', '/var/lib/voxops/history.jsonl']);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

const sha = async (host: string, file: string) => (await labExec(host, ['sha256sum', file])).stdout.split(' ')[0];

async function deploy(role: string, tag: string, ...extra: string[]) {
  const run = await voxops(['deploy', role, '--tag', tag, ...extra, ...inv]);
  expect(run.code, run.stderr).toBe(0);
  return run;
}

describe('api, dialler and console roles (in the lab)', () => {
  beforeAll(async () => {
    await labFault({ kind: 'git-start' });
    for (const role of ['api', 'dialler', 'console']) await voxops(['deploy', role, '--tag', 'v1.4.2', ...inv]);
  });

  it('deploys the api: new process on the new version, downtime reported because there is one api host', async () => {
    const before = await serviceHealth('api', 8080);
    const run = await deploy('api', 'v1.5.0');
    const after = await serviceHealth('api', 8080);
    expect(after).toMatchObject({ httpStatus: 200, version: 'v1.5.0' });
    expect(after.pid).not.toBe(before.pid);
    expect(run.stderr + run.stdout).toMatch(/api has one host, so its restart was an outage: .*down \d+\.\d s/);
    expect(await lastHistory('api')).toMatchObject({ role: 'api', action: 'deploy', from: 'v1.4.2', to: 'v1.5.0', outcome: 'success' });
  });

  it('restarts the dialler only at a moment it holds no leased call', async () => {
    const run = await deploy('dialler', 'v1.5.0', '--json');
    const idle = run.events.find((e) => e.type === 'info' && /leased_calls=0/.test(String(e.message)));
    const restart = run.events.findIndex((e) => e.type === 'step' && e.step === 'restart voxdialler.service' && e.status === 'start');
    expect(idle).toBeDefined();
    expect(run.events.indexOf(idle!)).toBeLessThan(restart);
    expect(await serviceHealth('dialler', 8090)).toMatchObject({ httpStatus: 200, version: 'v1.5.0' });
  });

  it('a dialler that never gets idle is not restarted: exit 9, and its old release is back on disk', async () => {
    // loop_ticks is never 0: stands in for campaigns that keep leasing
    const neverIdle = resolve('.lab/voxops-neveridle.yaml');
    const doc = parse(readFileSync(inventoryFile, 'utf8')) as { roles: { dialler: { idle: { field: string; timeoutSeconds: number } } } };
    doc.roles.dialler.idle = { field: 'loop_ticks', timeoutSeconds: 2 };
    writeFileSync(neverIdle, stringify(doc));
    const before = await serviceHealth('dialler', 8090);
    const head = (await labExec('dialler', ['git', '-C', '/opt/voxdialler', 'rev-parse', 'HEAD'])).stdout;
    const run = await voxops(['deploy', 'dialler', '--tag', 'v1.6.0', '-i', neverIdle]);
    expect(run.code, run.stderr).toBe(9);
    expect(run.stderr).toMatch(/dialler still had loop_ticks=\d+ after 2s; it was not restarted/);
    expect(await serviceHealth('dialler', 8090)).toMatchObject({ pid: before.pid, version: before.version });
    expect((await labExec('dialler', ['git', '-C', '/opt/voxdialler', 'rev-parse', 'HEAD'])).stdout).toBe(head);
    expect(await lastHistory('dialler')).toMatchObject({ to: 'v1.6.0', outcome: 'rolled-back' });
  });

  it('publishes the console by a symlink flip, and rolls back to the kept build without building', async () => {
    await deploy('console', 'v1.5.0');
    expect(await served()).toContain('v1.5.0');
    await deploy('console', 'v1.6.0');
    expect(await served()).toContain('v1.6.0');
    const target = (await labExec('api', ['readlink', '/opt/voxconsole/current'])).stdout.trim();
    expect(target).toMatch(/^\/opt\/voxconsole\/releases\/v1\.6\.0-[0-9a-f]{12}$/);
    const run = await voxops(['rollback', 'console', '--json', ...inv]);
    expect(run.code, run.stderr).toBe(0);
    expect(await served()).toContain('v1.5.0');
    // the kept release went live as it was: no checkout, no build
    const steps = run.events.filter((e) => e.type === 'step').map((e) => String(e.step));
    expect(steps.some((s) => /install|checkout|fetch/.test(s))).toBe(false);
    const status = JSON.parse((await voxops(['status', 'console', '--json', ...inv])).stdout) as {
      hosts: { tag: string; health: string }[];
    };
    expect(status.hosts[0]).toMatchObject({ tag: 'v1.5.0', health: 'ok' });
  });

  describe('a release whose api does not start', () => {
    const fastGate = resolve('.lab/voxops-fastgate.yaml');
    beforeAll(async () => {
      const doc = parse(readFileSync(inventoryFile, 'utf8')) as { roles: { api: { health: { gateTimeoutSeconds: number } } } };
      doc.roles.api.health.gateTimeoutSeconds = 6;
      writeFileSync(fastGate, stringify(doc));
      // a broken release, pushed to the lab's git host like any other tag
      const made = await labExec(
        'git',
        `runuser -u git -- sh -e -c '
rm -rf /tmp/badapi && git clone -q /srv/git/api.git /tmp/badapi && cd /tmp/badapi
git checkout -q v1.6.0
echo v1.6.1-nostart > VERSION
echo "raise SystemExit(\\"v1.6.1-nostart refuses to start\\")" >> src/voxbridge/app.py
git -c user.name=lab -c user.email=lab@voxlab.invalid commit -qam nostart
git tag v1.6.1-nostart && git push -q origin v1.6.1-nostart
rm -rf /tmp/badapi
# the same tag on the other repos (good code there), so that deploy all gets past every preflight
for repo in console fleet dialler; do git -C /srv/git/$repo.git tag v1.6.1-nostart v1.6.0; done
# and one that only the api has
git -C /srv/git/api.git tag v1.6.2-apionly v1.6.0'`,
      );
      expect(made.code, made.stderr).toBe(0);
    });
    afterAll(async () => {
      await labExec(
        'git',
        'for r in api console fleet dialler; do runuser -u git -- git -C /srv/git/$r.git tag -d v1.6.1-nostart v1.6.2-apionly >/dev/null 2>&1; done; true',
      );
      for (const [host, path] of [
        ['api', '/opt/voxbridge'],
        ['api', '/opt/voxconsole'],
        ['dialler', '/opt/voxdialler'],
        ...fleetHosts().map((h) => [h, '/opt/voxcore']),
      ]) {
        await labExec(host!, `git -C ${path} tag -d v1.6.1-nostart v1.6.2-apionly >/dev/null 2>&1; true`);
      }
    });

    it('fails the gate (exit 4) and puts the previous release back, serving', async () => {
      await deploy('api', 'v1.5.0');
      const run = await voxops(['deploy', 'api', '--tag', 'v1.6.1-nostart', '-i', fastGate]);
      expect(run.code, run.stderr).toBe(4);
      expect(run.stderr).toMatch(/api did not come up on v1\.6\.1-nostart.*rolled back to v1\.5\.0/);
      expect(run.stderr).toMatch(/Next: read the log: voxops logs api --host api/);
      expect(await serviceHealth('api', 8080)).toMatchObject({ httpStatus: 200, version: 'v1.5.0' });
      expect(await lastHistory('api')).toMatchObject({ to: 'v1.6.1-nostart', outcome: 'rolled-back' });
      const status = JSON.parse((await voxops(['status', 'api', '--json', ...inv])).stdout) as { hosts: { tag: string }[] };
      expect(status.hosts[0]!.tag).toBe('v1.5.0');
    });

    it('deploy all checks every role before it changes any: a tag one role lacks changes nothing', async () => {
      const before = await serviceHealth('api', 8080);
      const run = await voxops(['deploy', 'all', '--tag', 'v1.6.2-apionly', '-i', fastGate]);
      expect(run.code).toBe(7);
      expect(run.stderr).toMatch(/deploy all v1\.6\.2-apionly: preflight of console refused, before any role was changed/);
      expect(await serviceHealth('api', 8080)).toEqual(before);
    });

    it('deploy all stops at the role that failed and starts none after it', async () => {
      const before = await labExec('dialler', ['git', '-C', '/opt/voxdialler', 'rev-parse', 'HEAD']);
      const run = await voxops(['deploy', 'all', '--tag', 'v1.6.1-nostart', '-i', fastGate]);
      expect(run.code).toBe(4);
      expect(run.stderr).toMatch(/deploy all v1\.6\.1-nostart: api failed; not started: console, fleet, dialler, ingress/);
      expect((await labExec('dialler', ['git', '-C', '/opt/voxdialler', 'rev-parse', 'HEAD'])).stdout).toBe(before.stdout);
    });
  });

  describe('with the git host down', () => {
    beforeAll(async () => labFault({ kind: 'git-stop' }));
    afterAll(async () => labFault({ kind: 'git-start' }));

    it('--source git refuses before changing anything and names the way out', async () => {
      const run = await voxops(['deploy', 'api', '--tag', 'v1.6.0', '--source', 'git', ...inv]);
      expect(run.code).toBe(7);
      expect(run.stderr).toMatch(/api cannot fetch from origin \(ssh: connect to host 10\.231\.0\.10/);
      expect(run.stderr).toMatch(/Next: voxops deploy api --tag v1\.6\.0 --source rsync/);
    });

    it('pushes the release with rsync, leaving .env, the virtualenv and the kept console builds as they were', async () => {
      const env = await sha('api', '/opt/voxbridge/.env');
      const venv = (await labExec('api', ['stat', '-c', '%i %Y', '/opt/voxbridge/.venv/pyvenv.cfg'])).stdout;
      const run = await deploy('api', 'v1.6.0');
      expect(run.stderr + run.stdout).toMatch(/api cannot fetch from origin .*pushing v1\.6\.0 with rsync instead/);
      expect(await serviceHealth('api', 8080)).toMatchObject({ httpStatus: 200, version: 'v1.6.0' });
      expect(await sha('api', '/opt/voxbridge/.env')).toBe(env);
      expect((await labExec('api', ['stat', '-c', '%i %Y', '/opt/voxbridge/.venv/pyvenv.cfg'])).stdout).toBe(venv);
      // the tag is recorded as a checkout would record it: status, history and last-known-good see it
      const status = JSON.parse((await voxops(['status', 'api', '--json', ...inv])).stdout) as { hosts: { tag: string }[] };
      expect(status.hosts[0]!.tag).toBe('v1.6.0');
      expect(await lastHistory('api')).toMatchObject({ to: 'v1.6.0', outcome: 'success' });

      const releases = (await labExec('api', 'ls /opt/voxconsole/releases')).stdout;
      const consoleRun = await deploy('console', 'v1.6.0', '--source', 'rsync');
      expect(consoleRun.code).toBe(0);
      expect(await served()).toContain('v1.6.0');
      for (const kept of releases.trim().split('\n')) {
        expect((await labExec('api', ['test', '-d', `/opt/voxconsole/releases/${kept}`])).code, `${kept} was kept`).toBe(0);
      }
    });
  });

  it('deploy all puts every role on the release, in order, with one report for all of it', async () => {
    await Promise.all(fleetHosts().map((h) => resetFleetHost(h, 'v1.4.2')));
    const reports = mkdtempSync(join(tmpdir(), 'voxops-all-'));
    const run = await voxops(['deploy', 'all', '--tag', 'v1.5.0', '--parallel', '2', '--report', reports, '--json', ...inv]);
    expect(run.code, run.stderr).toBe(0);
    const order = run.events.filter((e) => e.type === 'start').map((e) => String(e.role));
    expect(order).toEqual(['api', 'console', 'fleet', 'dialler', 'ingress']);
    expect(await serviceHealth('api', 8080)).toMatchObject({ version: 'v1.5.0' });
    expect(await serviceHealth('dialler', 8090)).toMatchObject({ version: 'v1.5.0' });
    expect(await served()).toContain('v1.5.0');
    for (const host of fleetHosts())
      for (const w of await workerHealth(host)) expect(w).toMatchObject({ httpStatus: 200, version: 'v1.5.0' });
    const report = JSON.parse(readFileSync(join(reports, 'voxops-report.json'), 'utf8')) as {
      role: string;
      hosts: { role: string; outcome: string }[];
    };
    expect(report.role).toBe('all');
    expect(new Set(report.hosts.map((h) => h.role))).toEqual(new Set(['api', 'console', 'fleet', 'dialler', 'ingress']));
    expect(report.hosts.every((h) => h.outcome === 'success')).toBe(true);
  });

  it('goes back to git once the git host is back, replacing what rsync pushed', async () => {
    await deploy('api', 'v1.5.0');
    expect((await labExec('api', ['test', '-e', '/opt/voxbridge/.voxops-release'])).code).toBe(1);
    expect((await labExec('api', ['git', '-C', '/opt/voxbridge', 'status', '--porcelain'])).stdout).toBe('');
    expect(await serviceHealth('api', 8080)).toMatchObject({ version: 'v1.5.0' });
  });
});
