// `npm run bench`: voxops against its baselines, measured in the same run on the same lab, alternated,
// medians printed with ratios. Nothing here asserts: this machine is shared and noisy. Sections:
//   BENCH=quiet   rolling restart of a quiet fleet: the floor, ssh per worker, Ansible serial 1, voxops
//   BENCH=calls   a deploy under 75% load of long calls: one-at-a-time against call-aware, direct and via the ingress
//   BENCH=scale   call-aware --parallel auto restart from 1 to N fleet hosts, and with 50 ms of netem delay
// BENCH_RUNS (default 3) runs per method; BENCH_HOLD=20-90 the call holds in seconds; BENCH_FLEETS=4 the largest fleet.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { $ } from 'zx';
import { labExec, labUp, readLab } from '../test/lab/lab.js';
import { deployUnderLoad } from './under-load.js';

const runs = Number(process.env.BENCH_RUNS ?? 3);
const sections = (process.env.BENCH ?? 'quiet,calls,scale').split(',');
const [holdMin, holdMax] = (process.env.BENCH_HOLD ?? '20-90').split('-').map(Number) as [number, number];
const maxFleets = Number(process.env.BENCH_FLEETS ?? 4);
const inventory = resolve('.lab/voxops.yaml');
const nginxConf = '/etc/nginx/sites-enabled/voxcore-fleet.conf';
$.verbose = false;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const log = (line: string) => process.stdout.write(`${line}\n`);
const fleets = () => readLab().hosts.filter((h) => h.role === 'fleet');

async function must(host: string, script: string): Promise<string> {
  const r = await labExec(host, script, { timeoutMs: 300_000 });
  if (r.code !== 0) throw new Error(`${host}: ${script.split('\n')[0]}: exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

async function voxops(...args: string[]): Promise<void> {
  const r = await $({ nothrow: true, env: { ...process.env, CI: 'true' } })`node bin/voxops ${args} -i ${inventory}`;
  if (r.exitCode !== 0) throw new Error(`voxops ${args.join(' ')}: exit ${r.exitCode}: ${r.stderr.trim().split('\n').pop()}`);
}

const pidOf = (i: number | string) =>
  `curl -s --max-time 1 --unix-socket /tmp/voxcore_${i}.sock http://localhost/health | sed -n 's/.*"pid": *\\([0-9]*\\).*/\\1/p'`;

/** The practical floor: one ssh per host, a loop on the host, each worker restarted until a new pid answers (20 ms polls). */
const floorScript = (workers: number) => `set -e
for i in $(seq 1 ${workers}); do
  old=$(${pidOf('$i')})
  systemctl restart voxcore@$i
  for n in $(seq 1 1000); do new=$(${pidOf('$i')} || true); [ -n "$new" ] && [ "$new" != "$old" ] && break; sleep 0.02; done
done`;

/** The same from here, one ssh per command: what a naive tool does. */
async function sshPerCommand(host: string, workers: number): Promise<void> {
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

/** Debian's Ansible with serial: 1: systemd restart, wait_for the socket, uri over it (what a careful playbook does). */
function ansiblePlaybook(): { dir: string; args: string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'voxops-bench-ansible-'));
  const hosts = fleets()
    .map((h) => `${h.name} ansible_host=${h.address} workers=${h.workers ?? 4}`)
    .join('\n');
  writeFileSync(
    join(dir, 'hosts.ini'),
    `[fleet]\n${hosts}\n\n[fleet:vars]\nansible_user=root\nansible_ssh_private_key_file=${resolve('.lab/id_ed25519')}\nansible_ssh_common_args=-o UserKnownHostsFile=${resolve('.lab/known_hosts')} -o ControlMaster=auto -o ControlPersist=60s\nansible_python_interpreter=/usr/bin/python3\n`,
  );
  writeFileSync(
    join(dir, 'restart.yml'),
    `- hosts: fleet
  serial: 1
  gather_facts: false
  tasks:
    - name: restart each worker, wait for its socket, check its health
      include_tasks: worker.yml
      loop: "{{ range(1, (workers | int) + 1) | list }}"
      loop_control: { loop_var: worker }
`,
  );
  writeFileSync(
    join(dir, 'worker.yml'),
    `- ansible.builtin.systemd: { name: "voxcore@{{ worker }}", state: restarted }
- ansible.builtin.wait_for: { path: "/tmp/voxcore_{{ worker }}.sock", timeout: 30 }
- ansible.builtin.uri: { unix_socket: "/tmp/voxcore_{{ worker }}.sock", url: "http://localhost/health" }
  register: health
  until: health.status == 200
  retries: 100
  delay: 0
`,
  );
  return { dir, args: ['-i', join(dir, 'hosts.ini'), join(dir, 'restart.yml')] };
}

async function ansible(playbook: { args: string[] }): Promise<void> {
  const r = await $({
    nothrow: true,
    env: { ...process.env, ANSIBLE_HOST_KEY_CHECKING: 'True', ANSIBLE_PIPELINING: 'False' },
  })`ansible-playbook ${playbook.args}`;
  if (r.exitCode !== 0) throw new Error(`ansible-playbook: exit ${r.exitCode}: ${r.stdout.split('\n').slice(-6).join(' ')}`);
}

/** Run every method `runs` times, alternated, and print medians with the ratio to the first. */
async function compare(title: string, methods: Record<string, () => Promise<unknown>>, perWorker: number): Promise<Record<string, number>> {
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(methods).map((m) => [m, []]));
  for (let run = 0; run < runs; run++) for (const [name, fn] of Object.entries(methods)) times[name]!.push(await timed(fn));
  const base = median(Object.values(times)[0]!);
  log(`\n${title} (median of ${runs}, alternated)`);
  log('| method | median | per worker | vs the floor |');
  log('|---|---|---|---|');
  const medians: Record<string, number> = {};
  for (const [name, xs] of Object.entries(times)) {
    medians[name] = median(xs);
    log(
      `| ${name} | ${medians[name]!.toFixed(2)} s | ${((medians[name]! / perWorker) * 1000).toFixed(0)} ms | ${(medians[name]! / base).toFixed(2)}x |`,
    );
  }
  return medians;
}

async function withNginx(setting: 'max_fails=0' | 'default', work: () => Promise<void>): Promise<void> {
  const backups = new Map<string, string>();
  for (const h of fleets()) backups.set(h.name, await must(h.name, `cat ${nginxConf}`));
  try {
    if (setting === 'max_fails=0') {
      for (const h of fleets())
        await must(
          h.name,
          `sed -i 's/max_conns=1 fail_timeout=10;/max_conns=1 max_fails=0 fail_timeout=10;/' ${nginxConf} && nginx -t -q && systemctl reload nginx`,
        );
    }
    await new Promise((r) => setTimeout(r, 11_000)); // earlier fail marks expire
    await work();
  } finally {
    for (const h of fleets())
      await labExec(h.name, `cat > ${nginxConf} && nginx -t -q && systemctl reload nginx`, { input: backups.get(h.name)! });
  }
}

async function quiet(): Promise<void> {
  await labUp({ log: (l) => process.stderr.write(`[lab] ${l}\n`) });
  const hosts = fleets();
  const workers = hosts.reduce((n, h) => n + (h.workers ?? 4), 0);
  const playbook = ansiblePlaybook();
  const methods = {
    'floor (one ssh per host, loop on the host)': async () => {
      for (const h of hosts) await must(h.name, floorScript(h.workers ?? 4));
    },
    'ssh per command': async () => {
      for (const h of hosts) await sshPerCommand(h.name, h.workers ?? 4);
    },
    'Ansible 2.14, serial: 1': () => ansible(playbook),
    'voxops restart fleet (one-at-a-time)': () => voxops('restart', 'fleet', '--schedule', 'one-at-a-time'),
    'voxops restart fleet (call-aware)': () => voxops('restart', 'fleet'),
  };
  await withNginx('max_fails=0', async () => {
    await compare(
      `Quiet rolling restart, ${hosts.length} hosts x ${workers / hosts.length} workers, hosts one after another, nginx max_fails=0`,
      methods,
      workers,
    );
  });
  await withNginx('default', async () => {
    await compare(
      `The same with the lab's nginx as shipped (max_fails=1, fail_timeout=10)`,
      {
        'floor (one ssh per host, loop on the host)': methods['floor (one ssh per host, loop on the host)'],
        'voxops restart fleet (call-aware)': methods['voxops restart fleet (call-aware)'],
      },
      workers,
    );
  });
}

async function calls(): Promise<void> {
  await labUp({ log: (l) => process.stderr.write(`[lab] ${l}\n`) });
  const tags = ['v1.5.0', 'v1.6.0'];
  let next = 0;
  log(
    `\nA deploy under 75% load of ${holdMin}-${holdMax} s calls, ${fleets().length} hosts x ${fleets()[0]?.workers ?? 4} workers (${runs} runs each, alternated)`,
  );
  log(
    '| schedule | via | deploy | slowest host | longest remaining call | slowest host / (1.5 x longest + 15 s) | completed | dropped | rejected (1008) | unavailable (502) |',
  );
  log('|---|---|---|---|---|---|---|---|---|---|');
  for (let run = 0; run < runs; run++) {
    for (const via of ['fleet', 'ingress'] as const) {
      for (const schedule of ['one-at-a-time', 'call-aware']) {
        const tag = tags[next++ % tags.length]!;
        const r = await deployUnderLoad(['deploy', 'fleet', '--tag', tag, '--schedule', schedule, '--parallel', 'auto'], {
          via,
          hold: [holdMin, holdMax],
          warmSeconds: Math.min(30, holdMin),
        });
        const slowest = Math.max(...r.hosts.map((h) => h.seconds));
        const budget = 1.5 * r.longestCallSeconds + 15;
        const c = r.calls;
        log(
          `| ${schedule} | ${via} | ${r.exitCode === 0 ? `${r.seconds.toFixed(1)} s` : `exit ${r.exitCode}`} | ${slowest.toFixed(1)} s | ${r.longestCallSeconds.toFixed(1)} s | ${(slowest / budget).toFixed(2)} | ${c.completed} | ${c.dropped} | ${c.rejected} | ${c.unavailable} |`,
        );
      }
    }
  }
}

/** Whether this kernel can add delay with netem (some sandboxes' kernels have no sch_netem). */
async function netemWorks(bridge: string): Promise<boolean> {
  const added = await $({ nothrow: true })`tc qdisc replace dev ${bridge} root netem delay 1ms`;
  if (added.exitCode !== 0) return false;
  await $({ nothrow: true })`tc qdisc del dev ${bridge} root`;
  return true;
}

async function scale(): Promise<void> {
  log(`\ncall-aware restart of a quiet fleet with --parallel auto, 1 to ${maxFleets} hosts x 4 workers (median of ${runs})`);
  log('| fleet hosts | restart | with 50 ms netem delay on the lab bridge |');
  log('|---|---|---|');
  for (let n = 1; n <= maxFleets; n++) {
    const { lab } = await labUp({ fleets: n, workers: 4, log: (l) => process.stderr.write(`[lab] ${l}\n`) });
    await new Promise((r) => setTimeout(r, 11_000));
    const netem = await netemWorks(lab.bridge);
    const plain: number[] = [];
    const delayed: number[] = [];
    for (let run = 0; run < runs; run++) {
      plain.push(await timed(() => voxops('restart', 'fleet', '--parallel', 'auto')));
      if (!netem) continue;
      await $`tc qdisc replace dev ${lab.bridge} root netem delay 50ms`;
      try {
        delayed.push(await timed(() => voxops('restart', 'fleet', '--parallel', 'auto')));
      } finally {
        await $({ nothrow: true })`tc qdisc del dev ${lab.bridge} root`;
      }
    }
    const withDelay = netem ? `${median(delayed).toFixed(2)} s` : 'not measured: this kernel has no netem qdisc';
    log(`| ${n} | ${median(plain).toFixed(2)} s | ${withDelay} |`);
  }
  await labUp({ log: (l) => process.stderr.write(`[lab] ${l}\n`) });
}

async function main(): Promise<void> {
  log(`voxops bench, ${new Date().toISOString()}, ${runs} run(s) per method`);
  if (sections.includes('quiet')) await quiet();
  if (sections.includes('calls')) await calls();
  if (sections.includes('scale')) await scale();
}

main().catch((error: unknown) => {
  console.error(`bench: ${(error as Error).message}`);
  process.exit(1);
});
