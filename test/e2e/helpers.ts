import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { expect } from 'vitest';
import { errorLine, type ErrorFacts } from '../../src/cli/failure.js';
import { labExec, readLab } from '../lab/lab.js';

export const inventoryFile = resolve('.lab/voxops.yaml');

export interface VoxopsRun {
  code: number | null;
  /** the signal that ended it, when one did (SIGKILL from a test) */
  signal: NodeJS.Signals | null;
  stdout: string;
  /** as a person would read it: with --json the error object is rendered as the text line would be */
  stderr: string;
  /** what voxops wrote to stderr, byte for byte */
  rawStderr: string;
  /** the error object of a --json run, parsed */
  error?: ErrorFacts;
  events: Record<string, unknown>[];
}

/** With --json the error is one JSON object on stderr; the assertions read it as the text line. */
function readable(stderr: string): { text: string; error?: ErrorFacts } {
  const lines = stderr.split('\n');
  const at = lines.findIndex((l) => l.startsWith('{"exitCode"'));
  if (at < 0) return { text: stderr };
  const error = JSON.parse(lines[at]!) as ErrorFacts;
  const details = [
    errorLine(error),
    ...error.problems.map((p) => `  - ${p}`),
    ...(error.journal
      ? [
          `  journal of ${error.journal.worker !== undefined ? `${error.journal.host} worker ${error.journal.worker}` : error.journal.host}:`,
          error.journal.text,
        ]
      : []),
  ];
  return { text: [...lines.slice(0, at), ...details, ...lines.slice(at + 1)].join('\n'), error };
}

/** Run the real CLI binary, as Jenkins would: a separate process, no TTY. */
export function voxops(
  args: string[],
  options: {
    env?: NodeJS.ProcessEnv;
    signalAfterMs?: { signal: NodeJS.Signals; ms: number };
    /** each JSON event as it is printed (--json), with the process: a test can fault it mid-run */
    onEvent?: (event: Record<string, unknown>, child: ChildProcess) => void;
  } = {},
): Promise<VoxopsRun> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [resolve('bin/voxops'), ...args], {
      env: { ...process.env, CI: 'true', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let pending = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (!options.onEvent) return;
      pending += d.toString();
      for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (line.startsWith('{')) options.onEvent(JSON.parse(line) as Record<string, unknown>, child);
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), 15 * 60_000);
    if (options.signalAfterMs) setTimeout(() => child.kill(options.signalAfterMs!.signal), options.signalAfterMs.ms);
    child.on('error', fail);
    child.on('close', (code, signal) => {
      clearTimeout(killer);
      // --json event streams are one object per line; other output (status --json) is not
      const events: Record<string, unknown>[] = [];
      for (const line of stdout.split('\n')) {
        try {
          if (line.startsWith('{')) events.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          // not an event line
        }
      }
      const said = readable(stderr);
      done({ code, signal, stdout, stderr: said.text, rawStderr: stderr, ...(said.error ? { error: said.error } : {}), events });
    });
  });
}

export function fleetHosts(): string[] {
  return readLab()
    .hosts.filter((h) => h.role === 'fleet')
    .map((h) => h.name);
}

export function workerCount(host: string): number {
  return readLab().hosts.find((h) => h.name === host)?.workers ?? 4;
}

export interface WorkerHealth {
  index: number;
  status?: string;
  version?: string;
  pid?: number;
  active_calls?: number;
  max_seen_calls?: number;
  httpStatus: number;
}

/** /health of every worker of a host, straight over its socket (not through voxops). */
export async function workerHealth(host: string): Promise<WorkerHealth[]> {
  const n = workerCount(host);
  const script = Array.from(
    { length: n },
    (_, k) =>
      `printf '%s\\n' "$(curl -s --max-time 2 -w ' %{http_code}' --unix-socket /tmp/voxcore_${k + 1}.sock http://localhost/health)"`,
  ).join('\n');
  const result = await labExec(host, script);
  return result.stdout
    .trim()
    .split('\n')
    .map((line, k) => {
      const cut = line.lastIndexOf(' ');
      const httpStatus = Number(line.slice(cut + 1)) || 0;
      try {
        return { index: k + 1, httpStatus, ...(JSON.parse(line.slice(0, cut)) as object) };
      } catch {
        return { index: k + 1, httpStatus };
      }
    });
}

/**
 * Put a fleet host back on a release without voxops (plain git + systemctl, no load running):
 * each test starts from the same known state, whatever the previous one left.
 */
export async function resetFleetHost(host: string, tag = 'v1.4.2'): Promise<void> {
  const n = workerCount(host);
  const units = Array.from({ length: n }, (_, k) => `voxcore@${k + 1}`).join(' ');
  const script = `set -e
rm -f /var/lib/voxops/lock.json /var/lib/voxops/lock.*.tmp /tmp/voxcore_*.sock.draining
cd /opt/voxcore
git checkout -q --force --detach refs/tags/${tag}
rm -f .voxops-release
sh scripts/install.sh >/dev/null 2>&1
systemctl restart ${units}
for attempt in $(seq 1 200); do
  ok=1
  for i in $(seq 1 ${n}); do
    curl -s --max-time 1 --unix-socket /tmp/voxcore_$i.sock http://localhost/health | grep -q '"version": *"${tag}"' || ok=0
  done
  [ "$ok" = 1 ] && exit 0
  sleep 0.1
done
echo "workers not healthy on ${tag}" >&2
exit 1`;
  const result = await labExec(host, script, { timeoutMs: 120_000 });
  expect(result.code, `${host}: reset to ${tag}: ${result.stderr}`).toBe(0);
}

export async function currentTagOf(host: string): Promise<string> {
  const r = await labExec(host, ['git', '-C', '/opt/voxcore', 'describe', '--tags', '--exact-match', 'HEAD']);
  return r.stdout.trim();
}

export async function lastHistory(host: string): Promise<Record<string, unknown> | undefined> {
  const r = await labExec(host, ['tail', '-n', '1', '/var/lib/voxops/history.jsonl']);
  return r.stdout.trim() ? (JSON.parse(r.stdout) as Record<string, unknown>) : undefined;
}
