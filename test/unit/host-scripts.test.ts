import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync, linkSync, symlinkSync, utimesSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import type { Command } from '../../src/exec/command.js';
import { movedAsideSockets, parseMovedAside, parseRound, probeRound } from '../../src/commands/probe.js';
import { parseLock, readLock, takeOverLock } from '../../src/commands/state.js';
import { drainWorker, undrainWorker } from '../../src/commands/worker.js';
import { renderCommand } from '../../src/exec/render.js';
import type { LockHolder } from '../../src/errors.js';

// The unit tier's scripted host reimplements these scripts; here the scripts themselves run in a real
// `sh` against a temp dir, so a quoting slip in a builder cannot hide behind the simulator.

/** The builder's `sh -c` script and its positional arguments. */
function shOf(command: Command): { script: string; args: string[] } {
  if (command.kind !== 'argv' || command.argv[0] !== 'sh' || command.argv[1] !== '-c') throw new Error('not an sh -c command');
  return { script: command.argv[2]!, args: command.argv.slice(4) };
}

function runSh(script: string, args: string[], stdin = '') {
  const result = spawnSync('sh', ['-c', script, 'test', ...args], { input: stdin, encoding: 'utf8' });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** For scripts that talk to a server in this process: a synchronous spawn would block it from answering. */
function runShAsync(script: string, args: string[]): Promise<string> {
  return new Promise((resolve) => execFile('sh', ['-c', script, 'test', ...args], (_, stdout) => resolve(stdout)));
}

const dir = mkdtempSync(join(tmpdir(), 'voxops-scripts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const holder = (id: string): LockHolder => ({
  id,
  user: 'u',
  machine: 'm',
  pid: 1,
  startedAt: 's',
  action: 'deploy fleet',
  leaseSeconds: 60,
});

describe('taking over an expired lock, in a real sh', () => {
  const lock = join(dir, 'lock.json');
  const token = join(dir, 'lock.takeover.old');
  const temp = join(dir, 'lock.new.tmp');
  const hourAgo = new Date(Date.now() - 3_600_000);

  /** The takeover script with the host's fixed paths swapped for the temp dir's. */
  function takeOver(expiredId: string, lease: number) {
    const { script, args } = shOf(takeOverLock(holder('new'), expiredId, lease).command);
    return runSh(script, [lock, token, temp, ...args.slice(3)], `${JSON.stringify(holder('new'))}\n`);
  }

  beforeEach(() => {
    for (const f of [lock, token, temp]) rmSync(f, { force: true });
    writeFileSync(lock, `${JSON.stringify(holder('old'))}\n`);
  });

  it('replaces the lock of a holder idle past the lease, and cleans up after itself', () => {
    utimesSync(lock, hourAgo, hourAgo);
    expect(takeOver('old', 60).code).toBe(0);
    expect(JSON.parse(readFileSync(lock, 'utf8')).id).toBe('new');
    expect(existsSync(token) || existsSync(temp)).toBe(false);
  });

  it('leaves a lock that was renewed within the lease', () => {
    expect(takeOver('old', 60).code).toBe(1);
    expect(JSON.parse(readFileSync(lock, 'utf8')).id).toBe('old');
    expect(existsSync(token)).toBe(false);
  });

  it('leaves a lock that is not the expired holder’s (another run took it over first)', () => {
    utimesSync(lock, hourAgo, hourAgo);
    expect(takeOver('someone-else', 60).code).toBe(1);
    expect(JSON.parse(readFileSync(lock, 'utf8')).id).toBe('old');
  });

  it('does not match an id that only starts with the holder’s', () => {
    writeFileSync(lock, `${JSON.stringify(holder('old-and-more'))}\n`);
    utimesSync(lock, hourAgo, hourAgo);
    expect(takeOver('old', 60).code).toBe(1);
  });

  it('loses to a takeover in progress, even with a lease of 0 (our own dead run on --resume), but not to one long dead', async () => {
    utimesSync(lock, hourAgo, hourAgo);
    linkSync(lock, token);
    expect(takeOver('old', 60).code).toBe(1);
    expect(takeOver('old', 0).code).toBe(1);
    // the same script, told that tokens go stale after 1 s: one made over a second ago is cleared
    await new Promise((r) => setTimeout(r, 1100));
    const { script, args } = shOf(takeOverLock(holder('new'), 'old', 0).command);
    expect(runSh(script, [lock, token, temp, args[3]!, args[4]!, '1'], `${JSON.stringify(holder('new'))}\n`).code).toBe(0);
    expect(JSON.parse(readFileSync(lock, 'utf8')).id).toBe('new');
  });

  it('reads back what it wrote, with how long ago it was renewed', () => {
    utimesSync(lock, hourAgo, hourAgo);
    const { script } = shOf(readLock().command);
    const read = parseLock(runSh(script, [lock]).stdout);
    expect(read?.id).toBe('old');
    expect(read?.idleSeconds).toBeGreaterThanOrEqual(3599);
    expect(read?.expired).toBe(true);
  });
});

describe('one probe round over real sockets, in a real sh', () => {
  const servers: Server[] = [];
  afterAll(() => servers.forEach((s) => s.close()));

  async function worker(socket: string, body: string) {
    const server = createServer((_, res) => res.end(body));
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(socket, resolve));
  }

  it('answers each socket in order, then the failed connects nginx logged after the offset, then the log size', async () => {
    const live = join(dir, 'w1.sock');
    const missing = join(dir, 'w2.sock');
    await worker(live, JSON.stringify({ status: 'ok', version: 'v1.2.3', pid: 42, active_calls: 1 }));
    const log = join(dir, 'error.log');
    const old = `connect() to unix:${join(dir, 'old.sock')} failed (2: No such file or directory)\n`;
    const fresh = `2026/12/03 [crit] 7#7: *1 connect() to unix:${missing} failed (2: No such file or directory)\nan unrelated line\n`;
    writeFileSync(log, old + fresh);
    const { script, args } = shOf(probeRound([live, missing], '/health', log, old.length).command);
    const round = parseRound(await runShAsync(script, args), 2);
    expect(round.probes[0]).toMatchObject({ exitCode: 0, httpStatus: 200, body: { version: 'v1.2.3', pid: 42, active_calls: 1 } });
    expect(round.probes[1]!.exitCode).toBe(7);
    expect(round.failedConnects).toEqual([missing]);
    expect(round.logSize).toBe((old + fresh).length);
  });

  it('tells a socket still moved aside from garbage a new process left behind, and finds a symlinked socket', async () => {
    const moved = join(dir, 'm1.sock');
    const stale = join(dir, 'm2.sock');
    writeFileSync(`${moved}.draining`, '');
    writeFileSync(moved, '');
    writeFileSync(`${stale}.draining`, '');
    await worker(stale, '{}');
    const linked = join(dir, 'm3.sock');
    symlinkSync(stale, linked);
    const { script, args } = shOf(movedAsideSockets([moved, stale, join(dir, 'none.sock'), linked]).command);
    expect(parseMovedAside(await runShAsync(script, args))).toEqual({ moved: [moved], stale: [stale], symlinks: [linked] });
  });

  it('a drain moves the socket aside and leaves a placeholder; an undrain puts it back, but never over a live socket', async () => {
    const socket = join(dir, 'u1.sock');
    await worker(socket, '{}');
    const drain = renderCommand(drainWorker(socket).command);
    const undrain = renderCommand(undrainWorker(socket).command);
    expect((await runShAsync(`${drain}; echo "exit $?"`, [])).trim()).toBe('exit 0');
    expect(statSync(`${socket}.draining`).isSocket()).toBe(true);
    expect(statSync(socket).isFile()).toBe(true);
    await runShAsync(undrain, []);
    expect(statSync(socket).isSocket()).toBe(true);
    expect(existsSync(`${socket}.draining`)).toBe(false);

    // moved aside again, then a new process binds the real path: the old socket file is dropped
    await runShAsync(drain, []);
    rmSync(socket);
    await worker(socket, '{}');
    const live = statSync(socket).ino;
    await runShAsync(undrain, []);
    expect(statSync(socket).ino).toBe(live);
    expect(existsSync(`${socket}.draining`)).toBe(false);
  });
});
