import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { all, any, argv, inDir, type Command } from '../../../src/exec/command.js';
import { parseShowStat, setServerState, showStat } from '../../../src/commands/haproxy.js';
import { parseRound, probeRound } from '../../../src/commands/probe.js';
import { acquireLock, lockFile, releaseOwnLock } from '../../../src/commands/state.js';
import type { Host } from '../../../src/config/inventory.js';
import { RemoteCommandError, type LockHolder } from '../../../src/errors.js';
import { runLocal } from '../../../src/exec/local.js';
import { renderCommand } from '../../../src/exec/render.js';
import { VirtualClock } from './clock.js';
import { SimExecutor } from './executor.js';
import { SimulatorGap } from './shell.js';
import { NGINX_ERROR_LOG } from './host.js';
import { INGRESS, Sim } from './sim.js';

const fleetHost = (sim: Sim, name = 'fleet1'): Host => ({ name, address: sim.host(name).address, port: 22, role: 'fleet', workers: 4 });

async function session(sim: Sim, name = 'fleet1') {
  return new SimExecutor(sim).connect(fleetHost(sim, name));
}

/** true, false, and cd into a directory that exists or not: every tree sh can run without side effects */
const tree: fc.Arbitrary<Command> = fc.letrec<{ node: Command }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom(argv('true'), argv('false')),
    fc.array(tie('node'), { minLength: 1, maxLength: 3 }).map((cs) => all(...cs)),
    fc.array(tie('node'), { minLength: 1, maxLength: 3 }).map((cs) => any(...cs)),
    fc.tuple(fc.constantFrom('/tmp', '/nonexistent-voxops-sim'), tie('node')).map(([dir, c]) => inDir(dir, c)),
  ),
})).node;

describe('the simulator', () => {
  it('evaluates all/any/in trees with the exit status sh gives the rendered string', async () => {
    const sim = new Sim();
    sim.addFleetHost('fleet1');
    const s = await session(sim);
    await fc.assert(
      fc.asyncProperty(tree, async (command) => {
        const local = await runLocal(renderCommand(command), undefined, 5_000);
        const simulated = await s.run({ name: 'tree', command, okExitCodes: 'any' });
        expect(simulated.exitCode, renderCommand(command)).toBe(local.exitCode);
      }),
      { numRuns: 60 },
    );
  });

  it('runs only the commands sh would: && stops at a failure, || at a success', async () => {
    const sim = new Sim();
    const host = sim.addFleetHost('fleet1');
    const s = await session(sim);
    await s.run({
      name: 'chain',
      command: all(
        argv('true'),
        any(argv('false'), argv('touch', '--', '/tmp/a'), argv('touch', '--', '/tmp/b')),
        argv('false'),
        argv('touch', '--', '/tmp/c'),
      ),
      okExitCodes: [1],
    });
    expect(host.log.at(-1)!.ran).toEqual(['true', 'false', 'touch -- /tmp/a', 'false']);
    expect(host.fs.exists('/tmp/a') && !host.fs.exists('/tmp/b') && !host.fs.exists('/tmp/c')).toBe(true);
  });

  it('throws on a command it has no model for, naming the command, and keeps it as a gap', async () => {
    const sim = new Sim();
    sim.addFleetHost('fleet1');
    const s = await session(sim);
    await expect(s.run({ name: 'mystery', command: all(argv('true'), argv('frobnicate', '--now')) })).rejects.toThrow(
      /no handler for this command: frobnicate --now\n {2}in: true && frobnicate --now/,
    );
    await expect(s.run({ name: 'push', command: argv('git', '-C', '/opt/voxcore', 'push', 'origin') })).rejects.toThrow(SimulatorGap);
    await expect(s.run({ name: 'rm -x', command: argv('rm', '-x', '--', '/tmp/a') })).rejects.toThrow(
      /unknown option -x: rm -x -- \/tmp\/a/,
    );
    await expect(s.run({ name: 'script', command: argv('sh', '-c', 'echo hi', 'x', 'y') })).rejects.toThrow(/unknown sh -c script/);
    expect(sim.gaps).toHaveLength(4);
  });

  it('takes the lock atomically: of two racing runs exactly one wins, and only its own release removes it', async () => {
    const sim = new Sim();
    const host = sim.addFleetHost('fleet1');
    const [a, b] = await Promise.all([session(sim), session(sim)]);
    const holder = (id: string): LockHolder => ({
      id,
      user: id,
      machine: 'm',
      pid: 1,
      startedAt: '2025-06-02T09:00:00.000Z',
      action: 'deploy',
    });
    const results = await Promise.all([a.run(acquireLock(holder('aaaa'))), b.run(acquireLock(holder('bbbb')))]);
    expect(results.map((r) => r.exitCode).sort()).toEqual([0, 1]);
    const winner = results[0]!.exitCode === 0 ? 'aaaa' : 'bbbb';
    const loser = winner === 'aaaa' ? 'bbbb' : 'aaaa';
    expect(JSON.parse(host.fs.read(lockFile)).id).toBe(winner);
    expect(host.fs.paths().filter((p) => p.includes('lock.') && p.endsWith('.tmp'))).toEqual([]);
    expect((await a.run(releaseOwnLock(loser))).exitCode).toBe(1);
    expect(host.fs.exists(lockFile)).toBe(true);
    expect((await a.run(releaseOwnLock(winner))).exitCode).toBe(0);
    expect(host.fs.exists(lockFile)).toBe(false);
  });

  it('keeps a drained worker answering on the moved socket until its call ends, and a restart binds a new pid', async () => {
    const sim = new Sim();
    const host = sim.addFleetHost('fleet1');
    const s = await session(sim);
    const old = host.startCall(2, 2);
    await s.run({
      name: 'drain',
      command: all(
        argv('mv', '-T', '--', '/tmp/voxcore_2.sock', '/tmp/voxcore_2.sock.draining'),
        argv('touch', '--', '/tmp/voxcore_2.sock'),
      ),
    });
    const probe = async (path: string) =>
      (
        await s.run({
          name: 'probe',
          command: argv('curl', '-sS', '--max-time', '2', '-w', '\\n%{http_code}', '--unix-socket', path, 'http://localhost/health'),
          okExitCodes: 'any',
        })
      ).stdout;
    expect(await probe('/tmp/voxcore_2.sock')).toBe('\n000');
    expect(JSON.parse((await probe('/tmp/voxcore_2.sock.draining')).split('\n')[0]!)).toMatchObject({ pid: old.pid, active_calls: 1 });
    await probe('/tmp/voxcore_2.sock.draining');
    expect(JSON.parse((await probe('/tmp/voxcore_2.sock.draining')).split('\n')[0]!)).toMatchObject({ active_calls: 0 });
    await s.run({ name: 'restart', command: argv('systemctl', 'restart', '--', 'voxcore@2') });
    expect(host.worker(2)!.pid).not.toBe(old.pid);
    expect(host.workers()[1]).toMatchObject({ status: 200, version: 'v1.4.2' });
    expect(await probe('/tmp/voxcore_2.sock.draining')).toBe('\n000');
    expect(host.dropped).toEqual([]);
  });

  it('runs each release the way its tag says: badhealth answers 500, nosocket never listens, slowboot listens late', async () => {
    const sim = new Sim();
    const host = sim.addFleetHost('fleet1');
    const s = await session(sim);
    const clone = host.cloneAt('/opt/voxcore')!;
    const expected: Record<string, (number | string)[]> = {
      'v1.5.1-badhealth': [500, 500, 500, 500],
      'v1.5.1-nosocket': ['refused', 'refused', 'refused', 'refused'],
      'v1.5.1-slowboot': ['refused', 'refused', 200, 200],
    };
    for (const [tag, answers] of Object.entries(expected)) {
      clone.tags.set(tag, sim.origins.fleet.commit(tag));
      clone.head = sim.origins.fleet.commit(tag);
      await s.run({ name: 'restart', command: argv('systemctl', 'restart', '--', 'voxcore@1') });
      const seen = [];
      for (const _ of answers) {
        const r = await s.run({
          name: 'probe',
          command: argv(
            'curl',
            '-sS',
            '--max-time',
            '2',
            '-w',
            '\\n%{http_code}',
            '--unix-socket',
            '/tmp/voxcore_1.sock',
            'http://localhost/health',
          ),
          okExitCodes: 'any',
        });
        seen.push(r.exitCode === 7 ? 'refused' : Number(r.stdout.split('\n').pop()));
      }
      expect(seen, tag).toEqual(answers);
      expect(host.worker(1)!.version).toBe(tag);
    }
  });

  it('fails a failed command the way SSH does: RemoteCommandError with the exit code and stderr', async () => {
    const sim = new Sim();
    sim.addFleetHost('fleet1');
    const s = await session(sim);
    await expect(s.run({ name: 'cat', command: argv('cat', '--', '/nope') })).rejects.toThrow(RemoteCommandError);
    await expect(s.run({ name: 'cat', command: argv('cat', '--', '/nope') })).rejects.toThrow(
      'fleet1: cat failed (exit 1): cat: /nope: No such file or directory',
    );
  });

  it('loses the connection after N commands like a dropped SSH session', async () => {
    const sim = new Sim();
    const host = sim.addFleetHost('fleet1');
    host.link.lostAfterCommands = 1;
    const s = await session(sim);
    await s.run({ name: 'one', command: argv('true') });
    await expect(s.run({ name: 'two', command: argv('true') })).rejects.toThrow(
      'fleet1: SSH connection lost during a command (read ECONNRESET)',
    );
    await expect(session(sim)).rejects.toThrow(/fleet1 \(10\.0\.0\.11:22\) is unreachable/);
  });
});

describe('the simulator, for call-aware rolls and the ingress', () => {
  const curl = (path: string) =>
    argv('curl', '-sS', '--max-time', '2', '-w', '\\n%{http_code}', '--unix-socket', path, 'http://localhost/health');
  const body = (stdout: string) => JSON.parse(stdout.split('\n')[0]!) as { active_calls: number; call_started_at?: number };

  it('ends a call that counts every probe on the live socket too, and reports when it began if told', async () => {
    const sim = new Sim();
    const host = sim.addFleetHost('fleet1');
    const s = await session(sim);
    host.startCall(1, 2, { anyPath: true, startedAt: Date.parse('2025-06-02T08:00:00.000Z') });
    host.startCall(2, 2);
    expect(() => host.startCall(2, 1)).toThrow(/already holds a call/);
    const seen = [];
    for (let i = 0; i < 3; i++) seen.push(body((await s.run({ name: 'probe', command: all(curl('/tmp/voxcore_1.sock')) })).stdout));
    expect(seen.map((b) => b.active_calls)).toEqual([1, 1, 0]);
    expect(seen[0]!.call_started_at).toBe(Date.parse('2025-06-02T08:00:00.000Z') / 1000);
    // a plain call ends only through the moved path
    for (let i = 0; i < 3; i++) await s.run({ name: 'probe', command: curl('/tmp/voxcore_2.sock') });
    expect(host.worker(2)!.call).toBeDefined();
  });

  it('hands a slipped-in call over as the socket moves, and offers calls only to workers nginx can reach', async () => {
    const sim = new Sim();
    const host = sim.addFleetHost('fleet1');
    const s = await session(sim);
    const slipped = host.slipIn(1, 5);
    expect(slipped.call).toBeUndefined();
    await s.run({ name: 'drain', command: argv('mv', '-T', '--', '/tmp/voxcore_1.sock', '/tmp/voxcore_1.sock.draining') });
    expect(slipped.call).toEqual({ remaining: 5 });
    expect(host.offerCall(1, 3)).toBe(false);
    expect(host.offerCall(2, 3)).toBe(true);
    expect(host.offerCall(2, 3)).toBe(false);
  });

  it("reads nginx's failed connects from the error log from an offset, as the probe round does", async () => {
    const sim = new Sim();
    const host = sim.addFleetHost('fleet1', { workers: 2 });
    const s = await session(sim);
    host.nginxFailedConnect('/tmp/voxcore_1.sock');
    const first = parseRound(
      (await s.run(probeRound(['/tmp/voxcore_1.sock', '/tmp/voxcore_2.sock'], '/health', NGINX_ERROR_LOG, 0))).stdout,
      2,
    );
    expect(first.failedConnects).toEqual(['/tmp/voxcore_1.sock']);
    host.nginxFailedConnect('/tmp/voxcore_2.sock');
    const next = parseRound((await s.run(probeRound(['/tmp/voxcore_1.sock'], '/health', NGINX_ERROR_LOG, first.logSize))).stdout, 1);
    expect(next.failedConnects).toEqual(['/tmp/voxcore_2.sock']);
    expect(next.probes[0]).toMatchObject({ httpStatus: 200, exitCode: 0 });
  });

  it('checks each HAProxy server against its fleet host: DOWN without a free worker; held sessions outlast a drain', async () => {
    const sim = new Sim();
    const fleet1 = sim.addFleetHost('fleet1', { workers: 1 });
    const ingress = sim.addIngressHost('ingress1');
    const s = await session(sim, 'ingress1');
    const stat = async () =>
      parseShowStat((await s.run(showStat(INGRESS.adminSocket))).stdout).filter((r) => r.backend === INGRESS.backend);
    expect(await stat()).toMatchObject([{ server: 'fleet1', status: 'UP', checkStatus: 'L7OK' }]);
    fleet1.startCall(1, Infinity);
    expect(await stat()).toMatchObject([{ server: 'fleet1', status: 'DOWN', checkStatus: 'L7STS', lastCheck: '502' }]);
    ingress.haproxy!.sessions.set('fleet1', 2);
    ingress.haproxy!.holding.add('fleet1');
    await s.run({ ...setServerState(INGRESS.adminSocket, INGRESS.backend, 'fleet1', 'drain') });
    await stat();
    expect(await stat()).toMatchObject([{ status: 'DRAIN', sessions: 2 }]);
  });
});

describe('VirtualClock', () => {
  it('advances by what is slept, on the next macrotask, and returns at once when aborted', async () => {
    const clock = new VirtualClock(1_000);
    let settled = false;
    const sleeping = clock.sleep(3_600_000).then(() => (settled = true));
    await Promise.resolve();
    expect(settled).toBe(false);
    await sleeping;
    expect(clock.now()).toBe(1_000 + 3_600_000);
    const controller = new AbortController();
    controller.abort();
    await clock.sleep(5_000, controller.signal);
    expect(clock.now()).toBe(1_000 + 3_600_000);
  });
});
