import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { labCapacity, labTargets, parseCli, runCalls, UsageError, type LabFile } from './calls.js';

// One local server; the path picks the behaviour of the "worker" behind it.
let server: Server;
let wss: WebSocketServer;
let base: string;

function holdCall(ws: WebSocket): void {
  const tick = setInterval(() => ws.send('tick'), 100);
  ws.on('message', (data) => ws.send(data));
  ws.on('close', () => clearInterval(tick));
}

beforeAll(async () => {
  wss = new WebSocketServer({ noServer: true });
  server = createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', (req, socket, head) => {
    const path = req.url ?? '/';
    const refuse = (status: string): void => {
      socket.end(`HTTP/1.1 ${status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    };
    if (path === '/busy') return refuse('429 Too Many Requests');
    if (path === '/gateway') return refuse('502 Bad Gateway');
    if (path === '/missing') return refuse('404 Not Found');
    wss.handleUpgrade(req, socket, head, (ws) => {
      if (path === '/call') holdCall(ws);
      else if (path === '/full') ws.close(1008, 'at capacity');
      else if (path === '/cut') {
        holdCall(ws);
        setTimeout(() => ws.terminate(), 150);
      } else if (path === '/restart') {
        holdCall(ws);
        setTimeout(() => ws.close(1012, 'restart'), 150);
      } else if (path === '/silent') {
        ws.on('message', () => undefined);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const ws of wss.clients) ws.terminate();
  wss.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const quick = { durationSeconds: 0.25, rate: 4, holdSeconds: [0.2, 0.3] as [number, number] };

describe('runCalls outcomes', () => {
  it('completes a call that is held and hung up normally', async () => {
    const stats = await runCalls({ ...quick, targets: [`${base}/call`] });
    expect(stats).toMatchObject({ started: 1, completed: 1, rejected: 0, dropped: 0, unavailable: 0, failed: 0 });
    const call = stats.calls[0]!;
    expect(call.outcome).toBe('completed');
    expect(call.code).toBe(1000);
    expect(call.frames).toBeGreaterThanOrEqual(1);
    expect(call.endMs! - call.openMs!).toBeGreaterThanOrEqual(call.holdMs);
    expect(stats.errors).toEqual([]);
  });

  it('counts a 1008 close after accept as rejected', async () => {
    const stats = await runCalls({ ...quick, targets: [`${base}/full`] });
    expect(stats).toMatchObject({ started: 1, rejected: 1, completed: 0, dropped: 0 });
    expect(stats.calls[0]!.code).toBe(1008);
  });

  it('counts a handshake answered 429 as rejected, 502 as unavailable, 404 as failed', async () => {
    const stats = await runCalls({
      durationSeconds: 0.5,
      rate: 6,
      holdSeconds: [0.1, 0.1],
      targets: [`${base}/busy`, `${base}/gateway`, `${base}/missing`],
    });
    expect(stats).toMatchObject({ started: 3, rejected: 1, unavailable: 1, failed: 1 });
    expect(stats.perTarget[`${base}/busy`]).toMatchObject({ started: 1, rejected: 1 });
    expect(stats.perTarget[`${base}/gateway`]).toMatchObject({ started: 1, unavailable: 1 });
    expect(stats.calls.map((c) => c.httpStatus)).toEqual([429, 502, 404]);
  });

  it('counts a server-side terminate (1006) as dropped', async () => {
    const stats = await runCalls({ ...quick, holdSeconds: [1, 1], targets: [`${base}/cut`] });
    expect(stats).toMatchObject({ started: 1, dropped: 1, completed: 0 });
    expect(stats.calls[0]!.code).toBe(1006);
    expect(stats.calls[0]!.endMs!).toBeLessThan(900);
  });

  it('counts a server close with 1012 as dropped', async () => {
    const stats = await runCalls({ ...quick, holdSeconds: [1, 1], targets: [`${base}/restart`] });
    expect(stats).toMatchObject({ dropped: 1 });
    expect(stats.calls[0]!.code).toBe(1012);
  });

  it('counts a call whose server falls silent as dropped', async () => {
    const stats = await runCalls({ ...quick, holdSeconds: [2, 2], silenceTimeoutMs: 200, targets: [`${base}/silent`] });
    expect(stats).toMatchObject({ dropped: 1 });
    expect(stats.calls[0]!.reason).toMatch(/no frame/);
    expect(stats.elapsedMs).toBeLessThan(1500);
  });

  it('counts a refused connection as failed', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const stats = await runCalls({ ...quick, targets: [`ws://127.0.0.1:${port}/ws/call`] });
    expect(stats).toMatchObject({ started: 1, failed: 1 });
  });
});

describe('runCalls scheduling', () => {
  it('keeps load x capacity calls up, no more', async () => {
    const stats = await runCalls({
      targets: [`${base}/call`],
      durationSeconds: 0.7,
      load: 0.75,
      capacity: 4,
      holdSeconds: [0.15, 0.25],
    });
    expect(stats.targetConcurrency).toBe(3);
    expect(stats.peakConcurrent).toBe(3);
    expect(stats.started).toBeGreaterThanOrEqual(6);
    expect(stats.completed).toBe(stats.started);
  });

  it('refills a load slot at once after a short completed call, and after a pause after a refusal', async () => {
    const fast = await runCalls({ targets: [`${base}/call`], durationSeconds: 0.5, load: 1, capacity: 1, holdSeconds: [0, 0] });
    expect(fast.started).toBeGreaterThan(10);
    expect(fast.completed).toBe(fast.started);
    const refused = await runCalls({ targets: [`${base}/busy`], durationSeconds: 0.5, load: 1, capacity: 1, holdSeconds: [0, 0] });
    expect(refused.started).toBeLessThanOrEqual(3);
    expect(refused.rejected).toBe(refused.started);
  });

  it('starts rate x duration calls round-robin over the targets', async () => {
    const a = `${base}/call`;
    const b = `${base}/call?b`;
    const stats = await runCalls({ targets: [a, b], durationSeconds: 0.5, rate: 8, holdSeconds: [0.05, 0.1] });
    expect(stats.started).toBe(4);
    expect(stats.perTarget[a]!.started).toBe(2);
    expect(stats.perTarget[b]!.started).toBe(2);
    expect(stats.completed).toBe(4);
  });

  it('stops on abort, hangs up running calls normally and still returns stats', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const stats = await runCalls({
      targets: [`${base}/call`],
      durationSeconds: 30,
      load: 1,
      capacity: 2,
      holdSeconds: [20, 20],
      signal: controller.signal,
    });
    expect(stats.aborted).toBe(true);
    expect(stats.elapsedMs).toBeLessThan(2000);
    expect(stats).toMatchObject({ started: 2, completed: 2, dropped: 0 });
    expect(stats.calls.every((c) => c.reason === 'aborted')).toBe(true);
  });

  it('honours maxCalls', async () => {
    const stats = await runCalls({ targets: [`${base}/full`], durationSeconds: 1, rate: 50, maxCalls: 5, holdSeconds: [0, 0] });
    expect(stats.started).toBe(5);
    expect(stats.rejected).toBe(5);
  });

  it('rejects contradictory or unbounded options', async () => {
    const targets = [`${base}/call`];
    await expect(runCalls({ targets, durationSeconds: 1, rate: 1, load: 1, capacity: 1, holdSeconds: [1, 1] })).rejects.toThrow(
      /one, not both/,
    );
    await expect(runCalls({ targets, durationSeconds: Infinity, holdSeconds: [1, 1] })).rejects.toThrow(/durationSeconds/);
    await expect(runCalls({ targets: ['http://x'], durationSeconds: 1, holdSeconds: [2, 1] })).rejects.toThrow(/targets.*holdSeconds/);
  });
});

describe('lab targets and CLI options', () => {
  const lab: LabFile = {
    hosts: [
      { name: 'git', role: 'git', address: '10.231.0.10' },
      { name: 'fleet1', role: 'fleet', address: '10.231.0.11', workers: 4 },
      { name: 'fleet2', role: 'fleet', address: '10.231.0.12', workers: 2 },
      { name: 'ingress', role: 'ingress', address: '10.231.0.40' },
    ],
  };

  it('derives targets and capacity from lab.json', () => {
    expect(labTargets(lab, 'fleet')).toEqual(['ws://10.231.0.11/ws/call', 'ws://10.231.0.12/ws/call']);
    expect(labTargets(lab, 'ingress')).toEqual(['ws://10.231.0.40/ws/call']);
    expect(labTargets(lab, 'all')).toHaveLength(3);
    expect(labCapacity(lab)).toBe(6);
  });

  it('parses the CLI', () => {
    const cli = parseCli(['--duration', '30', '--load', '0.75', '--targets', 'ingress', '--hold', '2-5', '--json'], () => lab);
    expect(cli).toEqual({
      json: true,
      run: { targets: ['ws://10.231.0.40/ws/call'], durationSeconds: 30, load: 0.75, capacity: 6, holdSeconds: [2, 5] },
    });
    const explicit = parseCli(['--duration', '5', '--rate', '2', '--targets', 'ws://a/ws/call,ws://b/ws/call', '--hold', '3'], () => {
      throw new Error('lab.json must not be read');
    });
    expect(explicit.run).toEqual({ targets: ['ws://a/ws/call', 'ws://b/ws/call'], durationSeconds: 5, rate: 2, holdSeconds: [3, 3] });
    expect(() => parseCli(['--rate', '1'], () => lab)).toThrow(UsageError);
    expect(() => parseCli(['--duration', '1', '--hold', 'x'], () => lab)).toThrow(/--hold/);
    expect(() => parseCli(['--duration', '1', '--bogus'], () => lab)).toThrow(UsageError);
  });
});
