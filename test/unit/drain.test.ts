import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { drainedSocket, drainWorker } from '../../src/commands/worker.js';
import { LocalExecutor } from '../../src/exec/local.js';

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
