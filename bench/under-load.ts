// One deploy under call load in the lab, measured: how long each host took, against the longest
// call it had to wait for, and what happened to every call placed meanwhile.
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { labCapacity, labTargets, readLabFile, runCalls, type CallStats, type TargetSet } from '../test/lab/calls.js';

export interface UnderLoad {
  exitCode: number | null;
  seconds: number;
  /** per host: how long its change took */
  hosts: { host: string; seconds: number }[];
  calls: CallStats;
  /** the longest call that was up when the deploy started, in seconds */
  longestCallSeconds: number;
  /** most calls any worker held at once (from the deploy's own summary: not known; see maxSeen) */
  stderr: string;
  /** every JSON event voxops printed */
  events: Record<string, unknown>[];
}

export function voxops(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [resolve('bin/voxops'), ...args, '-i', resolve('.lab/voxops.yaml')], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CI: 'true', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

/**
 * Keep `load` of the lab's capacity busy with calls held `hold` seconds (placed through `via`),
 * wait `warmSeconds` so workers hold calls, run `voxops <args> --json`, then stop placing calls and
 * let the running ones end. Bounded: the load stops when voxops exits, or after `maxSeconds`.
 */
export async function deployUnderLoad(args: string[], options: { via: TargetSet; hold: [number, number]; load?: number; warmSeconds?: number; maxSeconds?: number }): Promise<UnderLoad> {
  const lab = readLabFile();
  const controller = new AbortController();
  const started = Date.now();
  const load = runCalls({
    targets: labTargets(lab, options.via),
    load: options.load ?? 0.75,
    capacity: labCapacity(lab),
    durationSeconds: options.maxSeconds ?? 1800,
    holdSeconds: options.hold,
    signal: controller.signal,
  });
  await new Promise((r) => setTimeout(r, (options.warmSeconds ?? 20) * 1000));
  const deployAt = Date.now() - started;
  const t0 = performance.now();
  const run = await voxops([...args, '--json']);
  const seconds = (performance.now() - t0) / 1000;
  controller.abort();
  const calls = await load;
  const up = calls.calls.filter((c) => c.openMs !== undefined && c.openMs <= deployAt && (c.endMs ?? Infinity) > deployAt);
  const longestCallSeconds = Math.max(0, ...up.map((c) => ((c.endMs ?? deployAt) - deployAt) / 1000));
  const summary = run.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { type: string; summary?: { hosts: { host: string; durationMs: number }[] } })
    .filter((e) => e.type === 'summary')
    .at(-1)?.summary;
  return {
    exitCode: run.code,
    seconds,
    hosts: (summary?.hosts ?? []).map((h) => ({ host: h.host, seconds: h.durationMs / 1000 })),
    calls,
    longestCallSeconds,
    stderr: run.stderr,
    events: run.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}
