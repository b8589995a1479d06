// `npm run bench`: how close voxops' rolling restart comes to the physical floor, measured in the
// same run on the same lab (no absolute thresholds: this machine is shared and noisy).
//
// floor:   one ssh per host; a shell loop on the host restarts each worker and polls its socket
//          every 20 ms until a new pid answers (no drain, no lock, no checks: the LAB-NOTES floor)
// naive:   the same steps driven from here with one OpenSSH connection per command
// voxops:  `voxops restart fleet`: preflight, lock, drain, wait idle, restart, gate, history
//
// nginx's fail_timeout pacing would dominate voxops' time (10 s a worker, by design), so the bench
// sets max_fails=0 on the fleet upstreams for its duration and restores the config afterwards.
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { labExec, labUp, readLab } from '../test/lab/lab.js';

const runs = Number(process.env.BENCH_RUNS ?? 3);
const inventory = resolve('.lab/voxops.yaml');
const nginxConf = '/etc/nginx/sites-enabled/voxcore-fleet.conf';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function must(host: string, script: string): Promise<string> {
  const r = await labExec(host, script, { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`${host}: ${script.split('\n')[0]}: exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

const pidOf = (i: number | string) =>
  `curl -s --max-time 1 --unix-socket /tmp/voxcore_${i}.sock http://localhost/health | sed -n 's/.*"pid": *\\([0-9]*\\).*/\\1/p'`;

function floorScript(workers: number): string {
  return `set -e
for i in $(seq 1 ${workers}); do
  old=$(${pidOf('$i')})
  systemctl restart voxcore@$i
  for n in $(seq 1 1000); do
    new=$(${pidOf('$i')} || true)
    [ -n "$new" ] && [ "$new" != "$old" ] && break
    sleep 0.02
  done
done`;
}

async function timeIt(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

function voxops(args: string[]): Promise<void> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [resolve('bin/voxops'), ...args, '-i', inventory], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, CI: 'true' },
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => (code === 0 ? done() : fail(new Error(`voxops ${args.join(' ')}: exit ${code}: ${err}`))));
  });
}

async function naive(host: string, workers: number): Promise<void> {
  for (let i = 1; i <= workers; i++) {
    const old = (await labExec(host, pidOf(i))).stdout.trim();
    await must(host, `systemctl restart voxcore@${i}`);
    for (let n = 0; n < 1000; n++) {
      const now = (await labExec(host, pidOf(i))).stdout.trim();
      if (now && now !== old) break;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

async function main(): Promise<void> {
  await labUp({ log: (l) => process.stderr.write(`[lab] ${l}\n`) });
  const fleets = readLab().hosts.filter((h) => h.role === 'fleet');
  const backups = new Map<string, string>();
  for (const h of fleets) backups.set(h.name, await must(h.name, `cat ${nginxConf}`));
  try {
    for (const h of fleets) {
      await must(
        h.name,
        `sed -i 's/max_conns=1 fail_timeout=10;/max_conns=1 max_fails=0 fail_timeout=10;/' ${nginxConf} && nginx -t -q && systemctl reload nginx`,
      );
    }
    await new Promise((r) => setTimeout(r, 11_000)); // let earlier fail marks expire
    const results: Record<string, number[]> = { floor: [], naive: [], voxops: [] };
    for (let run = 0; run < runs; run++) {
      results.floor!.push(
        await timeIt(async () => {
          for (const h of fleets) await must(h.name, floorScript(h.workers ?? 4));
        }),
      );
      results.naive!.push(
        await timeIt(async () => {
          for (const h of fleets) await naive(h.name, h.workers ?? 4);
        }),
      );
      results.voxops!.push(await timeIt(() => voxops(['restart', 'fleet'])));
    }
    const workers = fleets.reduce((n, h) => n + (h.workers ?? 4), 0);
    const floor = median(results.floor!);
    console.log(
      `rolling restart of ${fleets.length} hosts x ${workers / fleets.length} workers, hosts one at a time, no load, median of ${runs} runs`,
    );
    console.log('method   median    per worker  ratio to floor');
    for (const [name, xs] of Object.entries(results)) {
      const m = median(xs);
      console.log(
        `${name.padEnd(8)} ${(m / 1000).toFixed(2).padStart(6)} s  ${(m / workers).toFixed(0).padStart(6)} ms   ${(m / floor).toFixed(2)}x`,
      );
    }
  } finally {
    for (const h of fleets) {
      await labExec(h.name, `cat > ${nginxConf} && nginx -t -q && systemctl reload nginx`, { input: backups.get(h.name)! });
    }
  }
}

main().catch((error: unknown) => {
  console.error(`bench: ${(error as Error).message}`);
  process.exit(1);
});
