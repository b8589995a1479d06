// lab:down leaves nothing behind; lab:up brings the same hosts (same state) back.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { labDown, labExec, labUp, readLab } from './lab.js';
import { BRIDGE, CGROUP_NAME, RUN_DIR, labPath } from './paths.js';
import { labCheckouts } from './topology.js';
import { run } from './sh.js';

afterAll(async () => {
  await labUp({ log: () => undefined });
});

describe('lab:down', () => {
  it('removes every namespace, veth, bridge, mount, cgroup, pid file and process it made', async () => {
    await labUp({ log: () => undefined });
    const marker = `teardown-${Date.now()}`;
    await labExec('fleet1', `echo ${marker} > /var/lib/voxlab-persist-probe`);
    const pids = readdirSync(`${RUN_DIR}/pids`).map((f) => Number(readFileSync(`${RUN_DIR}/pids/${f}`, 'utf8')));
    expect(pids.length).toBe(readLab().hosts.length);

    await labDown({ log: () => undefined });

    expect((await run('ip', ['netns', 'list'])).stdout).not.toMatch(/voxlab-/);
    expect((await run('ip', ['-o', 'link', 'show'])).stdout).not.toMatch(new RegExp(`${BRIDGE}|vl-`));
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain('voxops-lab');
    expect((await run('losetup', ['-a'])).stdout).not.toContain('.lab/disks');
    for (const root of ['/sys/fs/cgroup', '/sys/fs/cgroup/unified', '/sys/fs/cgroup/systemd']) {
      expect(existsSync(`${root}/${CGROUP_NAME}`), root).toBe(false);
    }
    expect(existsSync(RUN_DIR)).toBe(false);
    for (const pid of pids) {
      const state = existsSync(`/proc/${pid}/status`)
        ? /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
        : undefined;
      expect(state === undefined || state === 'Z', `pid ${pid}`).toBe(true);
    }
    const ps = await run('ps', ['-eo', 'comm']);
    expect(ps.stdout).not.toMatch(/systemd-nspawn/);

    // Host state persists across down/up (only --purge resets it).
    await labUp({ log: () => undefined });
    const back = await labExec('fleet1', 'cat /var/lib/voxlab-persist-probe && rm /var/lib/voxlab-persist-probe');
    expect(back.stdout.trim()).toBe(marker);
  });

  it('--purge resets host state: the next up starts every host at v1.4.2 again', async () => {
    await labExec('fleet1', 'echo x > /var/lib/voxlab-purge-probe');
    await labDown({ purge: true, log: () => undefined });
    expect(existsSync(labPath('disks'))).toBe(false);
    await labUp({ log: () => undefined });
    expect((await labExec('fleet1', 'test -e /var/lib/voxlab-purge-probe')).code).toBe(1);
    for (const [host, path] of labCheckouts()) {
      const r = await labExec(host, ['sh', '-c', 'cd "$1" && git describe --tags --exact-match && cat VERSION', 'sh', path]);
      expect(r.stdout.trim().split('\n'), `${host}:${path}`).toEqual(['v1.4.2', 'v1.4.2']);
    }
    const installed = await labExec('fleet1', 'cat /opt/voxcore/.venv/installed-version');
    expect(installed.stdout.trim()).toBe('v1.4.2');
  });
});
