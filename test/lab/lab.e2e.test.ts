// The lab itself, end to end: real ssh, real systemd, real nginx, real faults.
import { statSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labExec, labFault, labRefreshKnownHosts, labUp, readLab } from './lab.js';
import { labPath } from './paths.js';
import { poll, run } from './sh.js';
import { runCalls } from './calls.js';
import { labCheckouts } from './topology.js';

const ssh = (address: string, cmd: string, knownHosts = labPath('known_hosts'), user = 'root') =>
  run(
    'ssh',
    [
      '-F',
      '/dev/null',
      '-i',
      labPath('id_ed25519'),
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      `UserKnownHostsFile=${knownHosts}`,
      '-o',
      'GlobalKnownHostsFile=/dev/null',
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      'BatchMode=yes',
      '-o',
      'ConnectTimeout=3',
      `${user}@${address}`,
      '--',
      cmd,
    ],
    { allowFail: true, timeoutMs: 30_000 },
  );

const addr = (name: string) => readLab().hosts.find((h) => h.name === name)!.address;

/** pid from /health over the worker's own socket, and the socket's inode. */
async function workerIdentity(host: string, i: number): Promise<{ pid: number; inode: number }> {
  const r = await labExec(
    host,
    `curl -fsS -m 2 --unix-socket /tmp/voxcore_${i}.sock http://w/health && echo && stat -c %i /tmp/voxcore_${i}.sock`,
  );
  if (r.code !== 0) throw new Error(`worker ${i} on ${host}: ${r.stderr}`);
  const [json, inode] = r.stdout.trim().split('\n');
  return { pid: (JSON.parse(json!) as { pid: number }).pid, inode: Number(inode) };
}

async function newWorkerIdentity(host: string, i: number, old: { pid: number }) {
  return poll(
    `voxcore@${i} on ${host} to answer from a new pid`,
    async () => {
      const id = await workerIdentity(host, i);
      return id.pid !== old.pid ? id : undefined;
    },
    { intervalMs: 100, timeoutMs: 30_000 },
  );
}

beforeAll(async () => {
  await labUp({ log: () => undefined });
});

describe('access', () => {
  it('every host accepts the deploy key and presents the key recorded in .lab/known_hosts', async () => {
    for (const h of readLab().hosts) {
      const r = await ssh(h.address, 'hostname');
      expect(r.code, `${h.name}: ${r.stderr}`).toBe(0);
      expect(r.stdout.trim()).toBe(h.name);
    }
  });

  it('host keys are really checked: an unrelated known_hosts file is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'voxlab-kh-'));
    const other = join(dir, 'known_hosts');
    writeFileSync(other, `${addr('fleet1')} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n`);
    const r = await ssh(addr('fleet1'), 'true', other);
    expect(r.code).toBe(255);
    expect(r.stderr).toMatch(/host key/i);
  });

  it('each host has its own SSH host key and machine-id', async () => {
    const keys = new Set<string>();
    const ids = new Set<string>();
    const lab = readLab();
    for (const h of lab.hosts) {
      const r = await labExec(h.name, 'cat /etc/ssh/ssh_host_ed25519_key.pub /etc/machine-id');
      const [key, id] = r.stdout.trim().split('\n');
      keys.add(key!.split(' ')[1]!);
      ids.add(id!);
    }
    expect(keys.size).toBe(lab.hosts.length);
    expect(ids.size).toBe(lab.hosts.length);
  });

  it('the git host serves the release repos over ssh to user git, also from inside the lab', async () => {
    const env = {
      ...process.env,
      GIT_SSH_COMMAND: `ssh -F /dev/null -i ${labPath('id_ed25519')} -o IdentitiesOnly=yes -o UserKnownHostsFile=${labPath('known_hosts')} -o StrictHostKeyChecking=yes -o BatchMode=yes`,
    };
    const local = await run('git', ['ls-remote', '--tags', 'git@10.231.0.10:/srv/git/fleet.git'], { env, timeoutMs: 30_000 });
    expect(local.stdout).toMatch(/refs\/tags\/v1\.4\.2/);
    const remote = await labExec('fleet1', 'git -C /opt/voxcore ls-remote --tags origin');
    expect(remote.code, remote.stderr).toBe(0);
    expect(remote.stdout).toMatch(/refs\/tags\/v1\.5\.1-nosocket/);
  });

  it('hosts reach each other and the bridge address, but no route leads outside the lab', async () => {
    const r = await labExec('fleet1', `curl -fsS -m 3 http://${addr('fleet2')}/health && ip route`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('"status":"ok"');
    expect(r.stdout).not.toMatch(/^default/m);
    const out = await labExec('fleet1', 'ip route get 1.1.1.1');
    expect(out.code).not.toBe(0);
  });
});

describe('release state and services', () => {
  // The lab is shared and persistent (voxops e2e tests deploy other tags), so this checks the
  // shape; teardown.e2e.test.ts checks that a purged lab starts at v1.4.2 everywhere.
  it('every role host has a detached release checkout whose origin is the git host', async () => {
    for (const [host, path, repo] of labCheckouts()) {
      const r = await labExec(host, [
        'sh',
        '-c',
        'cd "$1" && cat VERSION && git describe --tags --exact-match && git remote get-url origin && (git symbolic-ref -q HEAD || echo detached)',
        'sh',
        path,
      ]);
      const [version, tag, origin, head] = r.stdout.trim().split('\n');
      expect(version, `${host}:${path} ${r.stderr}`).toMatch(/^v\d/);
      expect(tag).toBe(version);
      expect(origin).toBe(`git@10.231.0.10:/srv/git/${repo}.git`);
      expect(head).toBe('detached');
    }
  });

  it('fleet units mirror production and nginx reports full capacity', async () => {
    const unit = await labExec('fleet1', 'systemctl cat voxcore@1 && systemctl is-active voxcore@1 voxcore@2 voxcore@3 voxcore@4 nginx');
    expect(unit.stdout).toContain('Restart=always');
    expect(unit.stdout).toContain('EnvironmentFile=/opt/voxcore/.env');
    expect(unit.stdout.trim().split('\n').slice(-5)).toEqual(['active', 'active', 'active', 'active', 'active']);
    const conf = await labExec('fleet1', 'nginx -T 2>/dev/null');
    expect(conf.stdout).toMatch(/zone voxcore_workers 64k;/);
    expect(conf.stdout).not.toMatch(/^\s*keepalive\s/m);
    expect(conf.stdout).not.toMatch(/worker_shutdown_timeout/);
    const res = await fetch(`http://${addr('ingress')}/health/fleet`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { capacity: number; healthy: number };
    expect(body).toMatchObject({ capacity: 4, healthy: 4 });
  });

  it('systemctl restart voxcore@2 gives a new uvicorn pid behind a new socket', async () => {
    const before = await workerIdentity('fleet1', 2);
    const other = await workerIdentity('fleet1', 3);
    const r = await labExec('fleet1', 'systemctl restart voxcore@2');
    expect(r.code, r.stderr).toBe(0);
    const after = await newWorkerIdentity('fleet1', 2, before);
    expect(after.pid).not.toBe(before.pid);
    expect(after.inode).not.toBe(before.inode);
    expect(await workerIdentity('fleet1', 3)).toEqual(other);
  });
});

describe('faults', () => {
  afterAll(async () => {
    // Leave the lab whole for whoever runs next, whatever failed above.
    await labFault({ kind: 'net-up', host: 'fleet2' }).catch(() => undefined);
    await labFault({ kind: 'git-start' }).catch(() => undefined);
    await labFault({ kind: 'free-disk', host: 'fleet2' }).catch(() => undefined);
    await labRefreshKnownHosts().catch(() => undefined);
  });

  it('kill-worker: SIGKILL of the uvicorn, Restart=always brings a new one', async () => {
    const before = await workerIdentity('fleet2', 1);
    const msg = await labFault({ kind: 'kill-worker', host: 'fleet2', worker: 1 });
    expect(msg).toContain(String(before.pid));
    const after = await newWorkerIdentity('fleet2', 1, before);
    expect(after.pid).not.toBe(before.pid);
  });

  it('net-down cuts a host off and net-up brings it back', async () => {
    await labFault({ kind: 'net-down', host: 'fleet2' });
    const down = await ssh(addr('fleet2'), 'true');
    expect(down.code).toBe(255);
    await labFault({ kind: 'net-up', host: 'fleet2' });
    await poll('fleet2 reachable again', async () => ((await ssh(addr('fleet2'), 'true')).code === 0 ? true : undefined), {
      timeoutMs: 20_000,
    });
  });

  it('git-stop refuses git over ssh, git-start restores it', async () => {
    await labFault({ kind: 'git-stop' });
    const stopped = await labExec('fleet1', 'git -C /opt/voxcore ls-remote origin');
    expect(stopped.code).not.toBe(0);
    await labFault({ kind: 'git-start' });
    const started = await poll(
      'git over ssh again',
      async () => {
        const r = await labExec('fleet1', 'git -C /opt/voxcore ls-remote origin');
        return r.code === 0 ? r : undefined;
      },
      { timeoutMs: 20_000 },
    );
    expect(started.stdout).toMatch(/v1\.4\.2/);
  });

  it('fill-disk fills only the host deploy filesystem; free-disk frees it', async () => {
    const realBefore = statSync(labPath('.'));
    await labFault({ kind: 'fill-disk', host: 'fleet2' });
    const full = await labExec(
      'fleet2',
      'df -B1M --output=avail / | tail -n 1; head -c 32M /dev/zero > /opt/voxcore/.fill-probe; echo rc=$?; rm -f /opt/voxcore/.fill-probe',
    );
    const [avail] = full.stdout.trim().split('\n');
    expect(Number(avail)).toBeLessThan(32);
    expect(full.stdout).not.toContain('rc=0');
    await labFault({ kind: 'free-disk', host: 'fleet2' });
    const freed = await labExec('fleet2', 'df -B1M --output=avail / | tail -n 1');
    expect(Number(freed.stdout.trim())).toBeGreaterThan(1000);
    expect(realBefore.isDirectory()).toBe(true);
  });

  it('rekey: the host presents a new key, strict checking refuses it until known_hosts is refreshed', async () => {
    await labFault({ kind: 'rekey', host: 'dialler' });
    const refused = await ssh(addr('dialler'), 'true');
    expect(refused.code).toBe(255);
    expect(refused.stderr).toMatch(/host key/i);
    await labRefreshKnownHosts();
    expect((await ssh(addr('dialler'), 'true')).code).toBe(0);
  });
});

describe('calls through nginx (test/lab/calls.ts)', () => {
  it('calls held through fleet nginx and the ingress all complete when nothing restarts', async () => {
    const stats = await runCalls({
      targets: [`ws://${addr('fleet1')}/ws/call`, `ws://${addr('ingress')}/ws/call`],
      durationSeconds: 2,
      rate: 2,
      holdSeconds: [1, 2],
    });
    expect(stats.started).toBeGreaterThan(0);
    expect(stats.completed).toBe(stats.started);
    expect(stats.dropped).toBe(0);
  });

  it('restarting the workers of a host that holds calls drops those calls', async () => {
    const calls = runCalls({ targets: [`ws://${addr('fleet2')}/ws/call`], durationSeconds: 1, rate: 3, holdSeconds: [6, 6] });
    await poll(
      'a call held on fleet2',
      async () => {
        const r = await fetch(`http://${addr('fleet2')}/health/fleet`);
        const b = (await r.json()) as { busy: number };
        return b.busy > 0 ? true : undefined;
      },
      { intervalMs: 100, timeoutMs: 10_000 },
    );
    const r = await labExec('fleet2', "systemctl restart 'voxcore@*'");
    expect(r.code, r.stderr).toBe(0);
    const stats = await calls;
    expect(stats.dropped).toBeGreaterThan(0);
  });
});
