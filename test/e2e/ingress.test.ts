import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import WebSocket from 'ws';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseShowStat, type ServerStat } from '../../src/commands/haproxy.js';
import { runCalls, type CallStats } from '../lab/calls.js';
import { labExec, readLab } from '../lab/lab.js';
import { haproxyConfig } from '../lab/provision.js';
import { makeTopology } from '../lab/topology.js';
import { inventoryFile, voxops } from './helpers.js';

// Only the ingress host is changed here; fleet hosts are read (health) and called through the ingress.
const lab = readLab();
const ingress = lab.hosts.find((h) => h.role === 'ingress')!;
const fleet2 = lab.hosts.find((h) => h.name === 'fleet2')!;
const fleet2Url = `http://${fleet2.address}:80`;
const target = `ws://${ingress.address}/ws/call`;
const CFG = '/etc/haproxy/haproxy.cfg';

const statScript = `python3 -c 'import socket,sys
s=socket.socket(socket.AF_UNIX);s.connect("/run/haproxy/admin.sock");s.sendall(b"show stat\\n");sys.stdout.write(s.makefile().read())'`;

async function stats(): Promise<ServerStat[]> {
  const r = await labExec('ingress', statScript);
  return parseShowStat(r.stdout).filter((s) => s.backend === 'fleet');
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const checkedUp = (s: ServerStat | undefined) => s?.status === 'UP' && s.checkStatus.startsWith('L7OK');

async function configFingerprint(): Promise<string> {
  const r = await labExec('ingress', ['sha256sum', CFG]);
  return r.stdout.split(' ')[0]!;
}

/** A few short calls through the ingress, then stop. */
function callsThroughIngress(seconds: number, signal?: AbortSignal, load = 0.5): Promise<CallStats> {
  return runCalls({ targets: [target], durationSeconds: seconds, load, capacity: 8, holdSeconds: [0.5, 2], ...(signal ? { signal } : {}) });
}

const describeCalls = (c: CallStats) =>
  `started ${c.started}, completed ${c.completed}, dropped ${c.dropped}, rejected ${c.rejected}, unavailable ${c.unavailable}, failed ${c.failed}`;

/** A call held open through the ingress: counts the server's frames and how it ended. */
interface HeldCall {
  ws: WebSocket;
  frames: () => number;
  closed: Promise<{ code: number; byUs: boolean }>;
  hangUp: () => void;
}

/** One call through the ingress, established (hello frame seen). A busy or restarting worker elsewhere in the shared lab gets another try. */
async function holdCall(): Promise<HeldCall> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      return await tryCall();
    } catch (error) {
      lastError = error;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  throw lastError;
}

async function tryCall(): Promise<HeldCall> {
  const ws = new WebSocket(target);
  let frames = 0;
  let byUs = false;
  const closed = new Promise<{ code: number; byUs: boolean }>((done) => ws.on('close', (code) => done({ code, byUs })));
  ws.on('message', () => (frames += 1));
  ws.on('error', () => undefined);
  const hangUp = () => {
    byUs = true;
    ws.close(1000);
  };
  const hello = new Promise<void>((ok, fail) => {
    ws.once('error', fail);
    ws.once('close', (code) => fail(new Error(`closed ${code} before the hello frame`)));
    ws.once('message', () => ok());
    setTimeout(() => fail(new Error('no hello frame within 5 s')), 5_000);
  });
  try {
    await hello;
  } catch (error) {
    ws.terminate();
    throw error;
  }
  return { ws, frames: () => frames, closed, hangUp };
}

/** Hold calls through the ingress until one sits on `server` (leastconn spreads them); hang up the others. */
async function holdCallOn(server: string): Promise<HeldCall> {
  // the fleet hosts are shared with other suites: a host being scaled or rolled is briefly DOWN or full
  await waitFor(`${server} UP`, async () => (checkedUp((await stats()).find((s) => s.server === server)) ? true : undefined), 60_000);
  const others: HeldCall[] = [];
  try {
    for (let attempt = 0; attempt < 6; attempt++) {
      const before = new Map((await stats()).map((s) => [s.server, s.sessions]));
      const call = await holdCall();
      const after = await stats();
      if ((after.find((s) => s.server === server)?.sessions ?? 0) > (before.get(server) ?? 0)) return call;
      others.push(call);
    }
    throw new Error(`no call landed on ${server}`);
  } finally {
    for (const o of others) o.hangUp();
  }
}

/** The lab's own hand-written haproxy.cfg, as lab:up wrote it. */
async function restoreHandWrittenConfig(): Promise<void> {
  const text = haproxyConfig(makeTopology(lab.fleets, lab.workers));
  const r = await labExec('ingress', `rm -f /var/lib/voxops/lock.json && cat > ${CFG} && systemctl reload haproxy`, { input: text });
  expect(r.code, r.stderr).toBe(0);
  await waitFor('both fleets UP', async () => {
    const s = await stats();
    return checkedUp(s.find((x) => x.server === 'fleet1')) && checkedUp(s.find((x) => x.server === 'fleet2')) ? true : undefined;
  });
}

describe('voxops deploy ingress / ingress add-fleet|remove-fleet (HAProxy, in the lab)', () => {
  let tmp: string;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'voxops-ingress-'));
    await restoreHandWrittenConfig();
  });

  afterAll(async () => {
    // leave the ingress serving both fleets from the rendered config, whatever happened above
    const r = await voxops(['deploy', 'ingress', '--inventory', inventoryFile, '--json']);
    expect(r.code, r.stderr).toBe(0);
    rmSync(tmp, { recursive: true, force: true });
  });

  it('renders haproxy.cfg from the fleet list while calls run through the ingress: 0 dropped, both backends UP; a second deploy changes nothing', async () => {
    const handWritten = await configFingerprint();
    const dry = await voxops(['deploy', 'ingress', '--dry-run', '--inventory', inventoryFile]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('+    option httpchk GET /health/fleet');
    expect(dry.stdout).toContain('+    server fleet2 10.231.0.12:80 maxconn 4');
    expect(dry.stdout).toContain('haproxy -c accepts the rendered config');
    expect(await configFingerprint()).toBe(handWritten);

    const controller = new AbortController();
    const load = callsThroughIngress(600, controller.signal);
    await new Promise((r) => setTimeout(r, 2_000));
    const run = await voxops(['deploy', 'ingress', '--inventory', inventoryFile, '--json']);
    await new Promise((r) => setTimeout(r, 2_000));
    controller.abort();
    const calls = await load;
    const summary = run.events.find((e) => e.type === 'summary')?.summary as { durationMs: number };
    console.log(
      `deploy ingress under load: exit ${run.code} in ${summary?.durationMs} ms; calls through the ingress: ${describeCalls(calls)}`,
    );
    expect(run.code, run.stderr).toBe(0);
    expect(calls.completed).toBeGreaterThan(0);
    expect(calls.dropped, calls.errors.join('\n')).toBe(0);
    expect(calls.rejected).toBe(0);

    const cfg = (await labExec('ingress', ['cat', CFG])).stdout;
    expect(cfg).toContain('    server fleet1 10.231.0.11:80 maxconn 4\n    server fleet2 10.231.0.12:80 maxconn 4\n');
    expect(cfg).toContain('timeout tunnel 3600s');
    const s = await stats();
    expect(s.map((x) => [x.server, x.status, x.checkStatus])).toEqual([
      ['fleet1', 'UP', 'L7OK'],
      ['fleet2', 'UP', 'L7OK'],
    ]);
    const history = JSON.parse((await labExec('ingress', ['tail', '-n', '1', '/var/lib/voxops/history.jsonl'])).stdout) as Record<
      string,
      unknown
    >;
    expect(history).toMatchObject({ role: 'ingress', host: 'ingress', outcome: 'success' });

    const rendered = await configFingerprint();
    const again = await voxops(['deploy', 'ingress', '--inventory', inventoryFile]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/unchanged; nothing to do/);
    expect(await configFingerprint()).toBe(rendered);

    const status = await voxops(['status', 'ingress', '--json', '--inventory', inventoryFile]);
    expect(status.code, status.stderr).toBe(0);
    const [ingress] = (
      JSON.parse(status.stdout) as {
        hosts: { health: string; backends: { name: string; address: string; status: string; maxconn: number }[] }[];
      }
    ).hosts;
    expect(ingress!.health).toBe('ok');
    expect(ingress!.backends.map((b) => [b.name, b.address, b.status, b.maxconn])).toEqual([
      ['fleet1', '10.231.0.11:80', 'UP', 4],
      ['fleet2', '10.231.0.12:80', 'UP', 4],
    ]);
  });

  it('remove-fleet drains fleet2: a call held on it through the ingress completes, then new calls reach only fleet1', async () => {
    const call = await holdCallOn('fleet2');
    const removal = voxops(['ingress', 'remove-fleet', fleet2Url, '--drain-timeout', '60', '--inventory', inventoryFile, '--json']);
    await waitFor('fleet2 drained', async () =>
      (await stats()).find((s) => s.server === 'fleet2')?.status === 'DRAIN' ? true : undefined,
    );
    const framesWhileDrained = call.frames();
    await new Promise((r) => setTimeout(r, 1_500));
    // still talking (the server ticks every 500 ms), and the config still lists fleet2 while the call lasts
    expect(call.frames()).toBeGreaterThan(framesWhileDrained);
    expect((await labExec('ingress', ['grep', '-c', 'server fleet2', CFG])).stdout.trim()).toBe('1');
    call.hangUp();
    expect(await call.closed).toEqual({ code: 1000, byUs: true });
    const run = await removal;
    expect(run.code, run.stderr).toBe(0);
    expect(run.events.some((e) => e.type === 'warning' && String(e.message).includes('environments.lab.hosts.fleet'))).toBe(true);

    const cfg = (await labExec('ingress', ['cat', CFG])).stdout;
    expect(cfg).toContain('    server fleet1 10.231.0.11:80 maxconn 4\n');
    expect(cfg).not.toContain('server fleet2');
    expect((await stats()).map((s) => s.server)).toEqual(['fleet1']);
    const fleet1Before = (await stats())[0]!;
    // a quarter of the lab's capacity: fleet1 alone must not be full (a full host leaves the rotation)
    const after = await callsThroughIngress(4, undefined, 0.25);
    expect(after.completed, describeCalls(after)).toBeGreaterThan(0);
    expect(after.dropped).toBe(0);
    // every one of them went through fleet1 (fleet2 is no longer a server of this haproxy)
    const fleet1After = (await stats())[0]!;
    console.log(
      `after remove-fleet: calls through the ingress: ${describeCalls(after)}; fleet1 sessions ${fleet1Before.totalSessions} -> ${fleet1After.totalSessions}`,
    );
    expect(fleet1After.totalSessions - fleet1Before.totalSessions).toBeGreaterThanOrEqual(after.completed);
  });

  it('add-fleet puts fleet2 back (UP again); an unreachable fleet is refused from the ingress host (exit 7) and nothing changes', async () => {
    const before = await configFingerprint();
    const ghost = await voxops(['ingress', 'add-fleet', 'http://ghost.invalid', '--inventory', inventoryFile]);
    expect(ghost.code, ghost.stderr).toBe(7);
    expect(ghost.stderr).toMatch(/Could not resolve host: ghost\.invalid/);
    expect(await configFingerprint()).toBe(before);
    const hostile = await voxops(['ingress', 'add-fleet', 'http://10.231.0.12;reboot', '--inventory', inventoryFile]);
    expect(hostile.code).toBe(2);

    const run = await voxops(['ingress', 'add-fleet', fleet2Url, '--inventory', inventoryFile, '--json']);
    expect(run.code, run.stderr).toBe(0);
    // the list matches the inventory again: no warning
    expect(run.events.filter((e) => e.type === 'warning')).toEqual([]);
    expect((await labExec('ingress', ['cat', CFG])).stdout).toContain(
      '    server fleet1 10.231.0.11:80 maxconn 4\n    server fleet2 10.231.0.12:80 maxconn 4\n',
    );
    const s = await stats();
    expect(checkedUp(s.find((x) => x.server === 'fleet2'))).toBe(true);
  });

  it('a remove-fleet that outlasts --drain-timeout exits 9 and leaves fleet2 drained but listed; deploy ingress puts it back', async () => {
    const call = await holdCallOn('fleet2');
    try {
      const run = await voxops(['ingress', 'remove-fleet', fleet2Url, '--drain-timeout', '1', '--inventory', inventoryFile]);
      expect(run.code, run.stderr).toBe(9);
      expect(run.stderr).toContain(`Next: when its calls have ended: voxops ingress remove-fleet ${fleet2Url}`);
      expect((await labExec('ingress', ['grep', '-c', 'server fleet2', CFG])).stdout.trim()).toBe('1');
      expect((await stats()).find((s) => s.server === 'fleet2')?.status).toBe('DRAIN');
      expect((await labExec('ingress', ['ls', `${CFG}.voxops-new`])).code).not.toBe(0);
    } finally {
      call.hangUp();
    }
    expect((await call.closed).byUs).toBe(true);
    const back = await voxops(['deploy', 'ingress', '--inventory', inventoryFile]);
    expect(back.code, back.stderr).toBe(0);
    expect(back.stdout).toContain('fleet2 was left drained');
    expect(checkedUp((await stats()).find((s) => s.server === 'fleet2'))).toBe(true);
  });

  it("a config haproxy -c rejects is never loaded: exit 11 with haproxy's reason, haproxy.cfg unchanged byte for byte, calls still served", async () => {
    // The inventory names a fleet host that does not resolve (a typo, or not yet in DNS). deploy
    // ingress renders it without probing it (fleet health is HAProxy's check's job), so haproxy -c
    // is what catches it. add-fleet with the same name stops earlier, at its reachability check
    // from the ingress host (exit 7, above), so it cannot reach haproxy -c with this case.
    const doc = parse(readFileSync(inventoryFile, 'utf8')) as {
      ssh: Record<string, string>;
      environments: { lab: { hosts: { fleet: object[] } } };
    };
    doc.ssh.identityFile = resolve('.lab', doc.ssh.identityFile!);
    doc.ssh.knownHosts = resolve('.lab', doc.ssh.knownHosts!);
    doc.environments.lab.hosts.fleet.push({ name: 'fleet3', address: 'fleet3.voxlab.invalid' });
    const broken = join(tmp, 'voxops.yaml');
    writeFileSync(broken, stringify(doc));

    const before = (await labExec('ingress', ['cat', CFG])).stdout;
    const fingerprint = await configFingerprint();
    const run = await voxops(['deploy', 'ingress', '--inventory', broken]);
    expect(run.code, run.stdout).toBe(11);
    expect(run.stderr).toMatch(/haproxy -c rejected the rendered config: .*could not resolve address 'fleet3\.voxlab\.invalid'/);
    expect(await configFingerprint()).toBe(fingerprint);
    expect((await labExec('ingress', ['cat', CFG])).stdout).toBe(before);
    expect((await labExec('ingress', ['ls', `${CFG}.voxops-new`])).code).not.toBe(0);
    const s = await stats();
    expect(s.map((x) => x.server)).toEqual(['fleet1', 'fleet2']);
    const calls = await callsThroughIngress(3);
    expect(calls.completed, describeCalls(calls)).toBeGreaterThan(0);
    // (unavailable is left out: another suite may be rolling a fleet host meanwhile; the ingress answering is the point)
    expect(calls.dropped + calls.failed, describeCalls(calls)).toBe(0);
  });
});
