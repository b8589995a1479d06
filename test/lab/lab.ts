// The lab's programmatic API: up / down / status / faults, and what tests use (readLab, labExec).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { stringify } from 'yaml';
import { baseKey, ensureBase } from './base.js';
import {
  bootHost,
  discoverHostNames,
  ensureBridge,
  isRunning,
  labProcesses,
  markInitialised,
  mountHostRoot,
  readPid,
  removeHostNetwork,
  removeLabWide,
  setLink,
  setupHostNetwork,
  stopHost,
  unmountHost,
  diskUsage,
} from './host.js';
import { BRIDGE, LAB_DIR, RELEASES_SCRIPT, REPO_ROOT, SUBNET, labPath } from './paths.js';
import { createIdentity, healthScript, hostPublicKeys, provisionScript, writeAccess, writeGitRepos, writeRole } from './provision.js';
import { poll, run, tail, type RunResult } from './sh.js';
import { sshRun } from './ssh.js';
import { makeTopology, repoUrl, REPOS, type LabHost, type Topology } from './topology.js';

export interface LabInfo {
  hosts: { name: string; role: string; address: string; roles: string[]; workers?: number }[];
  subnet: string;
  bridge: string;
  fleets: number;
  workers: number;
  labDir: string;
}

export function readLab(): LabInfo {
  const f = labPath('lab.json');
  if (!existsSync(f)) throw new Error(`${f} not found: run \`npm run lab:up\` first`);
  return JSON.parse(readFileSync(f, 'utf8')) as LabInfo;
}

function findHost(lab: LabInfo, name: string) {
  const h = lab.hosts.find((x) => x.name === name || x.address === name);
  if (!h) throw new Error(`no lab host ${name} (have: ${lab.hosts.map((x) => x.name).join(', ')})`);
  return h;
}

/** Run a command on a host over ssh as root. argv is quoted per word; a string is a shell script. */
export async function labExec(
  host: string,
  argv: string[] | string,
  opts: { timeoutMs?: number; input?: string } = {},
): Promise<RunResult> {
  return sshRun(findHost(readLab(), host).address, argv, opts);
}

/** Run a command inside a host WITHOUT ssh (nsenter into its namespaces): for faults that take
 * ssh away (git-start). Only ever targets the PID 1 of one of our own nspawn hosts. */
async function hostNsenter(name: string, argv: string[]): Promise<RunResult> {
  if (!isRunning(name)) throw new Error(`${name} is not running`);
  const init = labProcesses(name).find((p) => {
    try {
      const ns = /^NSpid:\s+(.*)$/m
        .exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1]
        ?.trim()
        .split(/\s+/);
      return ns !== undefined && ns.length > 1 && ns[ns.length - 1] === '1';
    } catch {
      return false;
    }
  });
  if (!init) throw new Error(`${name}: cannot find the host's init process`);
  return run('nsenter', ['--target', String(init), '--mount', '--uts', '--ipc', '--net', '--pid', '--', ...argv], {
    allowFail: true,
    timeoutMs: 60_000,
  });
}

// ---------------------------------------------------------------- up

function releasesStamp(): string {
  const dir = join(REPO_ROOT, 'test/lab/releases');
  const h = createHash('sha256');
  const walk = (d: string, depth: number) => {
    if (depth > 10) return;
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (['node_modules', '__pycache__', '.venv', 'dist'].includes(e.name)) continue;
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p, depth + 1);
      else if (e.isFile())
        h.update(relative(dir, p))
          .update('\0')
          .update(readFileSync(p))
          .update(String(statSync(p).mode & 0o111));
    }
  };
  walk(dir, 0);
  return h.digest('hex').slice(0, 16);
}

async function ensureRepos(log: (s: string) => void): Promise<string> {
  if (!existsSync(RELEASES_SCRIPT)) throw new Error(`${RELEASES_SCRIPT} is missing: the release repos cannot be built`);
  const stamp = releasesStamp();
  const stampFile = labPath('repos', '.stamp');
  const ok = REPOS.every((r) => existsSync(labPath('repos', `${r}.git`, 'HEAD')));
  if (ok && existsSync(stampFile) && readFileSync(stampFile, 'utf8').trim() === stamp) return stamp;
  log('[lab] building release repos');
  await run('bash', [RELEASES_SCRIPT, labPath('repos')], { timeoutMs: 300_000 });
  writeFileSync(stampFile, `${stamp}\n`);
  return stamp;
}

async function ensureDeployKey(): Promise<{ pub: string; key: string }> {
  const key = labPath('id_ed25519');
  if (!existsSync(key) || !existsSync(`${key}.pub`)) {
    rmSync(key, { force: true });
    rmSync(`${key}.pub`, { force: true });
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'voxops-lab-deploy', '-f', key]);
  }
  return { pub: readFileSync(`${key}.pub`, 'utf8').trim(), key: readFileSync(key, 'utf8') };
}

function inventory(topo: Topology): string {
  const byRole = (role: string) => topo.hosts.filter((h) => h.roles.includes(role)).map((h) => ({ name: h.name, address: h.address }));
  const doc = {
    defaultEnvironment: 'lab',
    ssh: {
      user: 'root',
      port: 22,
      identityFile: 'id_ed25519',
      knownHosts: 'known_hosts',
      sudo: false,
      connectTimeoutSeconds: 5,
      commandTimeoutSeconds: 300,
      keepaliveSeconds: 5,
    },
    roles: {
      fleet: {
        repo: repoUrl('fleet'),
        path: '/opt/voxcore',
        install: [['sh', 'scripts/install.sh']],
        workers: {
          count: topo.workers,
          unit: 'voxcore@{i}',
          socket: '/tmp/voxcore_{i}.sock',
          envFile: '/opt/voxcore/.env',
          countVariable: 'VOXCORE_WORKERS',
        },
        health: { path: '/health', gateTimeoutSeconds: 30 },
        drain: { timeoutSeconds: 120, onTimeout: 'wait' },
        nginx: { config: '/etc/nginx/sites-enabled/voxcore-fleet.conf', upstream: 'voxcore_workers' },
        build: { outputs: ['.venv'], keep: 3 },
        // the rsync fallback builds releases from the lab's own copies of the repos
        localRepo: 'repos/fleet.git',
        // Lab disks are 2 GiB; `lab:fault fill-disk` leaves a few MB, well under this.
        minFreeDiskMb: 256,
      },
      api: {
        repo: repoUrl('api'),
        path: '/opt/voxbridge',
        install: [['sh', 'scripts/install.sh']],
        unit: 'voxbridge.service',
        health: { url: 'http://127.0.0.1:8080/health', gateTimeoutSeconds: 30 },
        localRepo: 'repos/api.git',
      },
      dialler: {
        repo: repoUrl('dialler'),
        path: '/opt/voxdialler',
        install: [['sh', 'scripts/install.sh']],
        unit: 'voxdialler.service',
        health: { url: 'http://127.0.0.1:8090/health', gateTimeoutSeconds: 30 },
        idle: { field: 'leased_calls', timeoutSeconds: 60 },
        localRepo: 'repos/dialler.git',
      },
      console: {
        repo: repoUrl('console'),
        path: '/opt/voxconsole',
        install: [['sh', 'scripts/build.sh']],
        current: '/opt/voxconsole/current',
        verifyUrl: 'http://127.0.0.1/',
        localRepo: 'repos/console.git',
      },
    },
    environments: {
      lab: {
        hosts: {
          fleet: byRole('fleet'),
          api: byRole('api'),
          console: byRole('console'),
          dialler: byRole('dialler'),
          ingress: byRole('ingress'),
        },
      },
    },
  };
  return `# Generated by \`npm run lab:up\` (test/lab/lab.ts). Relative paths are relative to this file.\n${stringify(doc)}`;
}

function labInfo(topo: Topology): LabInfo {
  return {
    hosts: topo.hosts.map((h) => ({
      name: h.name,
      role: h.role,
      address: h.address,
      roles: h.roles,
      ...(h.workers ? { workers: h.workers } : {}),
    })),
    subnet: SUBNET,
    bridge: BRIDGE,
    fleets: topo.fleets,
    workers: topo.workers,
    labDir: LAB_DIR,
  };
}

async function waitForSsh(host: LabHost): Promise<void> {
  await poll(
    `ssh on ${host.name}`,
    async () => {
      const r = await sshRun(host.address, 'true', { timeoutMs: 5000, connectTimeoutS: 2 });
      return r.code === 0 ? true : undefined;
    },
    { intervalMs: 150, timeoutMs: 60_000 },
  );
}

async function provisionAndWait(host: LabHost, topo: Topology): Promise<void> {
  const p = await sshRun(host.address, 'bash -s', { input: provisionScript(host, topo), timeoutMs: 300_000 });
  if (p.code !== 0) throw new Error(`${host.name}: provisioning failed (exit ${p.code})\n${tail(p.stderr + p.stdout)}`);
  const h = await sshRun(host.address, 'bash -s', { input: healthScript(host, topo), timeoutMs: 90_000 });
  if (h.code !== 0) throw new Error(`${host.name}: services not healthy\n${tail(h.stderr + h.stdout)}`);
}

export interface UpOptions {
  fleets?: number;
  workers?: number;
  log?: (s: string) => void;
}

export interface UpResult {
  lab: LabInfo;
  seconds: number;
  bootSeconds: number;
  reused: boolean;
}

export async function labUp(opts: UpOptions = {}): Promise<UpResult> {
  const log = opts.log ?? ((s: string) => console.error(s));
  if (process.getuid?.() !== 0) throw new Error('the lab needs root (namespaces, mounts, cgroups)');
  const t0 = Date.now();
  const topo = makeTopology(opts.fleets ?? 2, opts.workers ?? 4);
  mkdirSync(LAB_DIR, { recursive: true });
  const { dir: base } = await ensureBase(log);
  const stamp = await ensureRepos(log);
  const deploy = await ensureDeployKey();

  // Already up with this topology? Then only re-check health.
  let prev: LabInfo | undefined;
  try {
    prev = readLab();
  } catch {
    prev = undefined;
  }
  const sameTopo = prev && prev.fleets === topo.fleets && prev.workers === topo.workers;
  if (sameTopo && topo.hosts.every((h) => isRunning(h.name))) {
    try {
      // A running lab whose services a test (or an engineer) changed is reused as it is, with a
      // warning: restarting it here would pull the hosts out from under anything using them.
      // Only a host that no longer answers SSH makes lab:up start over.
      const unhealthy: string[] = [];
      await Promise.all(
        topo.hosts.map(async (h) => {
          const r = await sshRun(h.address, 'bash -s', { input: healthScript(h, topo), timeoutMs: 90_000 });
          if (r.code === 255) throw new Error(`${h.name}: ssh: ${tail(r.stderr)}`);
          if (r.code !== 0) unhealthy.push(`${h.name}: ${tail(r.stderr).split('\n')[0]}`);
        }),
      );
      if (unhealthy.length > 0) log(`[lab] reusing the running lab, but: ${unhealthy.join('; ')} (lab:down, then lab:up, starts afresh)`);
      // the inventory follows the lab code, even for a lab that was already up
      writeFileSync(labPath('voxops.yaml'), inventory(topo));
      return { lab: prev!, seconds: (Date.now() - t0) / 1000, bootSeconds: 0, reused: true };
    } catch (err) {
      log(`[lab] running lab is not healthy (${(err as Error).message.split('\n')[0]}); restarting it`);
    }
  }
  // Anything left from an earlier run (crashed, killed, half torn down) goes first.
  await labDown({ log: () => undefined });

  const tBoot = Date.now();
  await ensureBridge();
  const fresh = new Map<string, boolean>();
  const topoKey = `fleets=${topo.fleets} workers=${topo.workers}`;
  await Promise.all(
    topo.hosts.map(async (h) => {
      await setupHostNetwork(h.name, h.address);
      const m = await mountHostRoot(h.name, base, baseKey(), topoKey);
      fresh.set(h.name, m.fresh);
      if (m.fresh) {
        await createIdentity(h);
        await writeRole(h, topo);
        markInitialised(h.name, topoKey);
      }
    }),
  );
  writeGitRepos(stamp);
  for (const h of topo.hosts) writeAccess(h, topo, deploy.pub, deploy.key);
  writeKnownHosts(topo);
  // The ingress boots with its link down and joins once the fleets are healthy: its health checks
  // would otherwise hit fleet nginx while the workers are still binding, and with max_fails=1 +
  // fail_timeout=10 (production settings) nginx would then refuse every worker for 10 s.
  const late = topo.hosts.filter((h) => h.role === 'ingress');
  const early = topo.hosts.filter((h) => h.role !== 'ingress');
  for (const h of late) await setLink(h.name, false);
  for (const h of topo.hosts) await bootHost(h.name);
  await Promise.all(early.map((h) => waitForSsh(h)));
  const sshSeconds = (Date.now() - tBoot) / 1000;
  await Promise.all(early.map((h) => provisionAndWait(h, topo)));
  for (const h of late) await setLink(h.name, true);
  await Promise.all(
    late.map(async (h) => {
      await waitForSsh(h);
      await provisionAndWait(h, topo);
    }),
  );
  const bootSeconds = (Date.now() - tBoot) / 1000;
  log(
    `[lab] ssh on all hosts after ${sshSeconds.toFixed(1)} s; all services healthy after ${bootSeconds.toFixed(1)} s` +
      (topo.hosts.some((h) => fresh.get(h.name)) ? ' (first boot: provisioned)' : ''),
  );

  const lab = labInfo(topo);
  writeFileSync(labPath('voxops.yaml'), inventory(topo));
  writeFileSync(labPath('lab.json'), `${JSON.stringify(lab, null, 2)}\n`);
  return { lab, seconds: (Date.now() - t0) / 1000, bootSeconds, reused: false };
}

function writeKnownHosts(topo: Topology): void {
  writeFileSync(
    labPath('known_hosts'),
    topo.hosts.flatMap((h) => hostPublicKeys(h.name).map((k) => `${h.address} ${k}`)).join('\n') + '\n',
  );
}

/** After `rekey`: trust the hosts' current keys again (.lab/known_hosts and, for the git host,
 * every host's /root/.ssh/known_hosts). Reads the keys from the mounted roots, not over the network. */
export async function labRefreshKnownHosts(): Promise<void> {
  const lab = readLab();
  const topo = makeTopology(lab.fleets, lab.workers);
  writeKnownHosts(topo);
  const deploy = await ensureDeployKey();
  for (const h of topo.hosts) writeAccess(h, topo, deploy.pub, deploy.key);
}

// ---------------------------------------------------------------- down

export async function labDown(opts: { purge?: boolean; log?: (s: string) => void } = {}): Promise<{ seconds: number; hosts: string[] }> {
  const log = opts.log ?? ((s: string) => console.error(s));
  const t0 = Date.now();
  const names = await discoverHostNames();
  await Promise.all(
    names.map(async (n) => {
      await stopHost(n);
      await unmountHost(n);
      await removeHostNetwork(n);
    }),
  );
  await removeLabWide();
  if (opts.purge) {
    rmSync(labPath('disks'), { recursive: true, force: true });
    rmSync(labPath('known_hosts'), { force: true });
    rmSync(labPath('lab.json'), { force: true });
    rmSync(labPath('voxops.yaml'), { force: true });
  }
  const seconds = (Date.now() - t0) / 1000;
  log(
    `[lab] down: ${names.length ? names.join(', ') : 'nothing was running'} in ${seconds.toFixed(2)} s${opts.purge ? ' (host state purged)' : ''}`,
  );
  return { seconds, hosts: names };
}

// ---------------------------------------------------------------- status

export interface HostStatus {
  name: string;
  role: string;
  address: string;
  running: boolean;
  pid?: number;
  ssh: boolean;
  healthy: boolean;
  diskUsedMb?: number;
}

export async function labStatus(): Promise<HostStatus[]> {
  let lab: LabInfo;
  try {
    lab = readLab();
  } catch {
    return [];
  }
  const topo = makeTopology(lab.fleets, lab.workers);
  return Promise.all(
    topo.hosts.map(async (h) => {
      const running = isRunning(h.name);
      let ssh = false;
      let healthy = false;
      if (running) {
        const once = healthScript(h, topo).replace('seq 1 300', 'seq 1 1');
        const r = await sshRun(h.address, 'bash -s', { input: once, timeoutMs: 20_000, connectTimeoutS: 3 });
        ssh = r.code !== 255;
        healthy = r.code === 0;
      }
      return {
        name: h.name,
        role: h.role,
        address: h.address,
        running,
        pid: running ? readPid(h.name) : undefined,
        ssh,
        healthy,
        diskUsedMb: diskUsage(h.name)?.usedMb,
      };
    }),
  );
}

export function formatHosts(lab: LabInfo, status?: HostStatus[]): string {
  const rows = lab.hosts.map((h) => {
    const s = status?.find((x) => x.name === h.name);
    const cols = [h.name, h.role === 'api' ? 'api+console' : h.role, h.address, h.workers ? `${h.workers} workers` : ''];
    if (s) cols.push(s.running ? `pid ${s.pid}` : 'stopped', s.ssh ? 'ssh ok' : 'ssh -', s.healthy ? 'healthy' : 'UNHEALTHY');
    return cols;
  });
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

// ---------------------------------------------------------------- faults

export type Fault =
  | { kind: 'net-down' | 'net-up' | 'free-disk' | 'rekey'; host: string }
  /** leaveMb: what is left free (default 8 MB) */
  | { kind: 'fill-disk'; host: string; leaveMb?: number }
  | { kind: 'git-stop' | 'git-start' }
  | { kind: 'kill-worker'; host: string; worker: number };

async function must(r: RunResult, what: string): Promise<string> {
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}): ${tail(r.stderr || r.stdout)}`);
  return r.stdout.trim();
}

export async function labFault(f: Fault): Promise<string> {
  const lab = readLab();
  switch (f.kind) {
    case 'net-down':
    case 'net-up':
      findHost(lab, f.host);
      await setLink(f.host, f.kind === 'net-up');
      return `${f.host}: link ${f.kind === 'net-up' ? 'up' : 'down'}`;
    case 'git-stop':
      // KillMode=process: open sessions survive, new connections are refused.
      await must(await labExec('git', ['systemctl', 'stop', 'ssh.service']), 'stop sshd on git');
      return 'git: sshd stopped (connections refused)';
    case 'git-start':
      await must(await hostNsenter('git', ['systemctl', 'start', 'ssh.service']), 'start sshd on git');
      return 'git: sshd started';
    case 'kill-worker': {
      const unit = `voxcore@${f.worker}`;
      const out = await must(
        await labExec(f.host, `pid=$(systemctl show -p MainPID --value ${unit}); [ "$pid" -gt 0 ] && kill -KILL "$pid" && echo "$pid"`),
        `kill ${unit}`,
      );
      return `${f.host}: SIGKILL to ${unit} uvicorn pid ${out}`;
    }
    case 'fill-disk': {
      const out = await must(
        await labExec(
          f.host,
          `set -e
rm -f /var/lib/voxlab-fill /var/lib/voxlab-fill-rest
avail=$(df -B1 --output=avail / | tail -n 1)
leave=${Math.max(0, Math.floor(f.leaveMb ?? 8))}
# fallocate of every last byte fails (the file's own metadata): to leave nothing, leave 1 MB, then write into it
fill=$((avail - (leave > 0 ? leave : 1) * 1024 * 1024))
[ "$fill" -gt 0 ] && fallocate -l "$fill" /var/lib/voxlab-fill
[ "$leave" -gt 0 ] || dd if=/dev/zero of=/var/lib/voxlab-fill-rest bs=4096 status=none 2>/dev/null || true
df -h --output=avail / | tail -n 1`,
        ),
        'fill-disk',
      );
      return `${f.host}: deploy filesystem filled, ${out.trim()} left`;
    }
    case 'free-disk': {
      const out = await must(
        await labExec(f.host, 'rm -f /var/lib/voxlab-fill /var/lib/voxlab-fill-rest && df -h --output=avail / | tail -n 1'),
        'free-disk',
      );
      return `${f.host}: fill file removed, ${out.trim()} available`;
    }
    case 'rekey':
      await must(await labExec(f.host, 'rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && systemctl restart ssh.service'), 'rekey');
      return `${f.host}: new SSH host keys (.lab/known_hosts NOT updated)`;
  }
}
