import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Step } from '../../src/exec/command.js';
import {
  checkoutTag,
  currentTag,
  fetchTags,
  headAndTagCommits,
  install,
  remoteTagExists,
  writeReleaseMarker,
} from '../../src/commands/git.js';
import { acquireLock, appendHistory, parseFreeDiskMb, parseHistory, releaseOwnLock } from '../../src/commands/state.js';
import { isValidUnit, journalTail, resetAndRestartUnit, restartUnit, unitStates } from '../../src/commands/systemd.js';
import { compareTags, deployedTagProblem, isValidTag, validateTag } from '../../src/commands/tag.js';
import {
  drainedSocket,
  drainWorker,
  parseHealthProbe,
  probeHealth,
  readEnvVariable,
  undrainWorker,
  workerSocket,
  workerUnit,
} from '../../src/commands/worker.js';
import { LocalExecutor } from '../../src/exec/local.js';
import { renderCommand } from '../../src/exec/render.js';

const r = (step: Step) => renderCommand(step.command);

describe('tags', () => {
  it('accepts release tags and refuses everything else before it reaches a shell', () => {
    for (const tag of ['v1.4.2', 'v1.5.0', 'v0.0.1', 'v10.20.30', 'v1.5.1-badhealth', 'v2.0.0-rc.1']) expect(isValidTag(tag)).toBe(true);
    for (const tag of [
      '1.5.0',
      'v1.5',
      'v01.5.0',
      'v1.5.0;rm -rf /',
      'v1.5.0 ',
      '--upload-pack=x',
      'v1.5.0\n',
      'v1.5.0-',
      'main',
      'v1.5.0+build',
      '$(id)',
    ]) {
      expect(isValidTag(tag), tag).toBe(false);
    }
    expect(() => validateTag('v1.5.0;id')).toThrow(/not a release tag/);
    expect(compareTags('v1.4.2', 'v1.5.0')).toBe(-1);
    expect(compareTags('v1.5.1-badhealth', 'v1.5.1')).toBe(-1);
  });

  it('compares anything a host reports without throwing: a non-tag sorts before every release tag', () => {
    const reported = ['main', 'v1.5', '', 'v1.5.0\u001b[2J', 'v01.5.0', 'v1.5.0', 'v1.4.2', 'latest'];
    expect([...reported].sort(compareTags)).toEqual(['', 'latest', 'main', 'v01.5.0', 'v1.5', 'v1.5.0\u001b[2J', 'v1.4.2', 'v1.5.0']);
    expect(compareTags('v1.5.0', 'main')).toBe(1);
    expect(compareTags('main', 'v1.5.0')).toBe(-1);
    expect(compareTags('main', 'main')).toBe(0);
  });

  it('says, in words an operator can act on, when the deployed release is not a release tag', () => {
    expect(deployedTagProblem('fleet1', '/opt/voxcore', 'v1.5.0')).toBeUndefined();
    expect(deployedTagProblem('fleet1', '/opt/voxcore', null)).toBe(
      'fleet1: /opt/voxcore is not at a release tag, so there would be nothing to go back to',
    );
    expect(deployedTagProblem('fleet1', '/opt/voxcore', 'main\u001b]0;pwned\u0007')).toBe(
      'fleet1: /opt/voxcore is at "main\\u001b]0;pwned\\u0007", which is not a release tag (vMAJOR.MINOR.PATCH), so there would be nothing to go back to',
    );
    expect(deployedTagProblem('fleet1', '/opt/voxcore', 'v1.5.0\u202e')).toMatch(/is at "v1\.5\.0\\u202e", which/);
  });
});

describe('builders', () => {
  it('git', () => {
    expect(r(fetchTags('/opt/voxcore'))).toBe('git -C /opt/voxcore fetch --quiet --tags --force origin');
    expect(r(checkoutTag('/opt/voxcore', 'v1.5.0'))).toBe(
      'git -C /opt/voxcore checkout --quiet --force --detach refs/tags/v1.5.0 && rm -f -- /opt/voxcore/.voxops-release',
    );
    expect(r(headAndTagCommits('/opt/voxcore', 'v1.5.0'))).toBe("git -C /opt/voxcore rev-parse HEAD 'refs/tags/v1.5.0^{commit}'");
    expect(r(currentTag('/opt/voxcore'))).toBe(
      "awk 'NR == 1 && NF >= 1 { print $1; found = 1 } END { exit !found }' /opt/voxcore/.voxops-release || git -C /opt/voxcore describe --tags --exact-match HEAD",
    );
    const marker = writeReleaseMarker('/opt/voxcore', 'v1.5.0', 'abc123');
    expect(r(marker)).toBe('sh -c \'cat > "$1.tmp" && mv -f -- "$1.tmp" "$1"\' write-marker /opt/voxcore/.voxops-release');
    expect(marker.stdin).toBe('v1.5.0 abc123 rsync\n');
    expect(remoteTagExists('/opt/voxcore', 'v1.5.0').okExitCodes).toEqual([2]);
    expect(r(install('/opt/vox core', [['uv', 'sync', '--frozen']]))).toBe("cd '/opt/vox core' && uv sync --frozen");
    expect(
      r(
        install('/opt/console', [
          ['npm', 'ci'],
          ['npm', 'run', 'build'],
        ]),
      ),
    ).toBe('cd /opt/console && { npm ci && npm run build; }');
  });

  it('systemd', () => {
    expect(r(restartUnit('voxcore@2'))).toBe('systemctl restart -- voxcore@2');
    expect(r(resetAndRestartUnit('voxbridge.service'))).toBe(
      '{ systemctl reset-failed -- voxbridge.service || true; } && systemctl restart -- voxbridge.service',
    );
    expect(r(unitStates(['voxcore@1', 'voxcore@2']))).toBe('systemctl is-active -- voxcore@1 voxcore@2');
    expect(r(journalTail('voxcore@3', 30))).toBe('journalctl --no-pager --output=short-iso -n 30 -u voxcore@3');
    expect(isValidUnit('cxbcore@12')).toBe(true);
    expect(isValidUnit('-voxcore')).toBe(false);
    expect(isValidUnit('vox core')).toBe(false);
  });

  it('workers come from inventory patterns', () => {
    expect(workerUnit('cxbcore@{i}', 7)).toBe('cxbcore@7');
    expect(workerSocket('/tmp/cxbcore_{i}.sock', 7)).toBe('/tmp/cxbcore_7.sock');
    expect(r(probeHealth('/tmp/voxcore_1.sock', '/health'))).toBe(
      "curl -sS --max-time 2 -w '\\n%{http_code}' --unix-socket /tmp/voxcore_1.sock http://localhost/health",
    );
    expect(r(drainWorker('/tmp/voxcore_1.sock'))).toBe(
      "{ test -S /tmp/voxcore_1.sock && test '!' -L /tmp/voxcore_1.sock && mv -T -- /tmp/voxcore_1.sock /tmp/voxcore_1.sock.draining && dd if=/dev/null of=/tmp/voxcore_1.sock conv=excl status=none && chown -h --reference=/tmp/voxcore_1.sock.draining -- /tmp/voxcore_1.sock; } || test -S /tmp/voxcore_1.sock.draining",
    );
    expect(r(undrainWorker('/tmp/voxcore_1.sock'))).toBe(
      "{ test -S /tmp/voxcore_1.sock && test '!' -L /tmp/voxcore_1.sock && rm -f -- /tmp/voxcore_1.sock.draining; } || mv -T -- /tmp/voxcore_1.sock.draining /tmp/voxcore_1.sock",
    );
    expect(r(readEnvVariable('/opt/voxcore/.env', 'VOXCORE_WORKERS'))).toBe("grep -E -m 1 '^VOXCORE_WORKERS=' -- /opt/voxcore/.env");
  });

  it('lock and history', () => {
    const holder = {
      id: 'abc123',
      user: 'ci',
      machine: 'jenkins',
      pid: 42,
      startedAt: '2026-01-01T00:00:00Z',
      action: 'deploy',
      tag: 'v1.5.0',
    };
    const lock = acquireLock(holder);
    expect(r(lock)).toBe(
      'mkdir -p /var/lib/voxops && dd of=/var/lib/voxops/lock.abc123.tmp status=none && { { ln -- /var/lib/voxops/lock.abc123.tmp /var/lib/voxops/lock.json && rm -f -- /var/lib/voxops/lock.abc123.tmp; } || { rm -f -- /var/lib/voxops/lock.abc123.tmp && false; }; }',
    );
    expect(JSON.parse(lock.stdin!)).toEqual(holder);
    expect(r(releaseOwnLock('abc123'))).toBe(`grep -qF '"id":"abc123"' -- /var/lib/voxops/lock.json && rm -f -- /var/lib/voxops/lock.json`);
    const entry = {
      at: 'now',
      host: 'f1',
      role: 'fleet',
      action: 'deploy' as const,
      from: 'v1.4.2',
      to: 'v1.5.0',
      outcome: 'success' as const,
      durationMs: 5,
      user: 'ci',
    };
    expect(parseHistory(`${appendHistory(entry).stdin}{torn\n${appendHistory(entry).stdin}`)).toEqual([entry, entry]);
  });
});

describe('parsers', () => {
  it('health probe output', () => {
    expect(parseHealthProbe('{"status":"ok","version":"v1.5.0","active_calls":0,"pid":12}\n200')).toEqual({
      httpStatus: 200,
      body: { status: 'ok', version: 'v1.5.0', active_calls: 0, pid: 12 },
    });
    expect(parseHealthProbe('Internal Server Error\n500')).toMatchObject({ httpStatus: 500, error: expect.stringMatching(/not JSON/) });
    expect(parseHealthProbe('\n000', 'curl: (7) Failed to connect')).toEqual({ httpStatus: 0, error: 'curl: (7) Failed to connect' });
  });

  it('df output', () => {
    expect(parseFreeDiskMb('Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/vda 263174212 23000000 83886080 22% /\n')).toBe(
      81920,
    );
    expect(parseFreeDiskMb('garbage')).toBeUndefined();
  });
});

const local = await new LocalExecutor().connect({ name: 'local', address: '127.0.0.1', port: 22, role: 'fleet' });
const realMv = execFileSync('sh', ['-c', 'command -v mv'], { encoding: 'utf8' }).trim();
const root = mkdtempSync(join(tmpdir(), 'voxops-drain-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The drain, run by a real sh in a directory of its own; its exit code. */
async function drain(socket: string): Promise<number | null> {
  return (await local.run(drainWorker(socket))).exitCode;
}

function listen(path: string): Promise<Server> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(path, () => resolve(server));
  });
}

describe('drainWorker, run by sh', () => {
  let dir: string;
  let socket: string;
  let server: Server | undefined;
  beforeEach(() => {
    dir = mkdtempSync(join(root, 'case-'));
    socket = join(dir, 'voxcore_1.sock');
  });
  afterEach(() => server?.close());

  it('moves the socket aside and leaves an empty placeholder file owned like it (exit 0); a second drain finds it drained', async () => {
    server = await listen(socket);
    expect(await drain(socket)).toBe(0);
    expect(lstatSync(drainedSocket(socket)).isSocket()).toBe(true);
    const placeholder = lstatSync(socket);
    expect(placeholder.isFile() && placeholder.size === 0).toBe(true);
    expect([placeholder.uid, placeholder.gid]).toEqual([lstatSync(drainedSocket(socket)).uid, lstatSync(drainedSocket(socket)).gid]);
    expect(await drain(socket)).toBe(0);
  });

  it('exit 1 when there is no socket, or only a symlink to one (it is not ours to move)', async () => {
    expect(await drain(socket)).toBe(1);
    const elsewhere = join(dir, 'elsewhere.sock');
    server = await listen(elsewhere);
    symlinkSync(elsewhere, socket);
    expect(await drain(socket)).toBe(1);
    expect(lstatSync(socket).isSymbolicLink()).toBe(true);
    expect(existsSync(drainedSocket(socket))).toBe(false);
  });

  it('does not follow a symlink planted at the socket path right after the move (touch and chown would act on its target)', async () => {
    server = await listen(socket);
    const victim = join(dir, 'victim');
    // the attacker wins the race: mv is followed at once by a symlink at the old path
    const bin = join(dir, 'bin');
    execFileSync('mkdir', [bin]);
    writeFileSync(join(bin, 'mv'), `#!/bin/sh\n${realMv} "$@" || exit\nln -s ${victim} ${socket}\n`);
    chmodSync(join(bin, 'mv'), 0o755);
    const path = process.env.PATH;
    process.env.PATH = `${bin}:${path}`;
    try {
      // drained all the same: the socket is aside, and nothing was written through the link
      expect(await drain(socket)).toBe(0);
    } finally {
      process.env.PATH = path;
    }
    expect(existsSync(victim)).toBe(false);
    expect(lstatSync(socket).isSymbolicLink()).toBe(true);
    expect(lstatSync(drainedSocket(socket)).isSocket()).toBe(true);
  });
});
