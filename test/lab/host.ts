// One lab host = a private network namespace on the bridge + an overlay root whose upper layer
// lives on a per-host, size-bounded ext4 image + a systemd-nspawn boot in a cgroup of its own.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BRIDGE,
  BRIDGE_ADDRESS,
  CGROUP_NAME,
  NS_PREFIX,
  PREFIX,
  RUN_DIR,
  hostDiskMount,
  hostImage,
  hostRoot,
  hostRunDir,
  logFile,
  netnsName,
  pidFile,
  vethName,
} from './paths.js';
import { isMountPoint, listMounts, mountsUnder, unmountUnder } from './mounts.js';
import { run, sleep } from './sh.js';

/** Size of each host's deploy filesystem (sparse file: costs only what is written). */
export const DISK_MB = Number(process.env.VOXLAB_DISK_MB ?? 2048);

// ---------------------------------------------------------------- network

export async function ensureBridge(): Promise<void> {
  const have = await run('ip', ['link', 'show', BRIDGE], { allowFail: true });
  if (have.code !== 0) await run('ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
  // Bridged lab traffic must not be judged by this machine's iptables (e.g. Docker's FORWARD DROP).
  await run('ip', ['link', 'set', BRIDGE, 'type', 'bridge', 'nf_call_iptables', '0', 'nf_call_ip6tables', '0'], { allowFail: true });
  await run('ip', ['addr', 'replace', `${BRIDGE_ADDRESS}/${PREFIX}`, 'dev', BRIDGE]);
  await run('ip', ['link', 'set', BRIDGE, 'up']);
}

export async function setupHostNetwork(name: string, address: string): Promise<void> {
  const ns = netnsName(name);
  const veth = vethName(name);
  await removeHostNetwork(name);
  await run('ip', ['netns', 'add', ns]);
  await run('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
  await run('ip', ['link', 'set', veth, 'master', BRIDGE, 'up']);
  await run('ip', ['-n', ns, 'addr', 'add', `${address}/${PREFIX}`, 'dev', 'eth0']);
  await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  await run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
  // No default route: the subnet route is all a host has, so nothing outside the lab is reachable.
}

export async function removeHostNetwork(name: string): Promise<void> {
  const ns = netnsName(name);
  if (existsSync(`/run/netns/${ns}`)) await run('ip', ['netns', 'delete', ns], { allowFail: true });
  // Deleting the namespace destroys the pair; a root-side leftover (half-made pair) goes here.
  const veth = vethName(name);
  if ((await run('ip', ['link', 'show', veth], { allowFail: true })).code === 0) {
    await run('ip', ['link', 'delete', veth], { allowFail: true });
  }
}

export async function setLink(name: string, up: boolean): Promise<void> {
  await run('ip', ['link', 'set', vethName(name), up ? 'up' : 'down']);
}

// ---------------------------------------------------------------- storage

/** RUN_DIR/hosts is a private bind mount: the overlay and disk mounts made under it never
 * propagate to other mount namespaces, and nspawn's own mounts never propagate back. */
async function ensurePrivateHostsDir(): Promise<void> {
  const dir = join(RUN_DIR, 'hosts');
  mkdirSync(dir, { recursive: true });
  if (!isMountPoint(dir)) await run('mount', ['--bind', dir, dir]);
  await run('mount', ['--make-rprivate', dir]);
}

/** `topoKey` names the topology the host was provisioned for; a host made for another topology
 * (other --fleets/--workers) starts over, like after --purge. */
export async function mountHostRoot(name: string, baseDir: string, baseKey: string, topoKey: string): Promise<{ fresh: boolean }> {
  await ensurePrivateHostsDir();
  const img = hostImage(name);
  const disk = hostDiskMount(name);
  const root = hostRoot(name);
  mkdirSync(join(img, '..'), { recursive: true });
  if (!existsSync(img)) {
    const fd = openSync(img, 'w');
    closeSync(fd);
    await run('truncate', ['-s', `${DISK_MB}M`, img]);
    await run('mkfs.ext4', ['-q', '-F', '-m', '0', '-L', `voxlab-${name}`.slice(0, 16), img], { timeoutMs: 120_000 });
  }
  mkdirSync(disk, { recursive: true });
  mkdirSync(root, { recursive: true });
  if (!isMountPoint(disk)) await run('mount', ['-o', 'loop,noatime', img, disk]);
  // An upper layer only makes sense on top of the lower it was made with.
  const stamp = join(disk, '.voxlab-base');
  const init = join(disk, '.voxlab-init');
  const baseChanged = existsSync(stamp) && readFileSync(stamp, 'utf8').trim() !== baseKey;
  const topoChanged = existsSync(init) && readFileSync(init, 'utf8').trim() !== topoKey;
  if (baseChanged || topoChanged) {
    console.warn(`[lab] ${name}: ${baseChanged ? 'base rootfs' : 'topology'} changed, resetting host state`);
    rmSync(join(disk, 'upper'), { recursive: true, force: true });
    rmSync(join(disk, 'work'), { recursive: true, force: true });
    rmSync(join(disk, '.voxlab-init'), { force: true });
  }
  const fresh = !existsSync(join(disk, '.voxlab-init'));
  mkdirSync(join(disk, 'upper'), { recursive: true });
  mkdirSync(join(disk, 'work'), { recursive: true });
  writeFileSync(stamp, `${baseKey}\n`);
  if (!isMountPoint(root)) {
    await run('mount', [
      '-t',
      'overlay',
      'overlay',
      '-o',
      `lowerdir=${baseDir},upperdir=${join(disk, 'upper')},workdir=${join(disk, 'work')}`,
      root,
    ]);
  }
  return { fresh };
}

export function markInitialised(name: string, topoKey: string): void {
  writeFileSync(join(hostDiskMount(name), '.voxlab-init'), `${topoKey}\n`);
}

export async function unmountHost(name: string): Promise<void> {
  const img = hostImage(name);
  await unmountUnder(hostRunDir(name));
  // `mount -o loop` auto-clears its device; detach any device still bound to the image anyway.
  if (existsSync(img)) {
    const r = await run('losetup', ['-j', img], { allowFail: true });
    for (const line of r.stdout.split('\n')) {
      const dev = line.split(':')[0];
      if (dev?.startsWith('/dev/loop')) await run('losetup', ['-d', dev], { allowFail: true });
    }
  }
  rmSync(hostRunDir(name), { recursive: true, force: true });
}

// ---------------------------------------------------------------- cgroups

/** The cgroup directories one host's nspawn lives in: v1 `name=systemd` + unified v2 on a hybrid
 * machine, or the single v2 tree elsewhere. */
export function cgroupDirs(name?: string): string[] {
  const fsType = (p: string) => listMounts().find((m) => m.target === p)?.fstype;
  const roots: string[] = [];
  if (fsType('/sys/fs/cgroup') === 'cgroup2') roots.push('/sys/fs/cgroup');
  else {
    if (fsType('/sys/fs/cgroup/unified') === 'cgroup2') roots.push('/sys/fs/cgroup/unified');
    if (fsType('/sys/fs/cgroup/systemd') === 'cgroup') roots.push('/sys/fs/cgroup/systemd');
  }
  if (roots.length === 0) throw new Error('no usable cgroup hierarchy under /sys/fs/cgroup');
  return roots.map((r) => (name ? join(r, CGROUP_NAME, name) : join(r, CGROUP_NAME)));
}

function cgroupProcs(dir: string): number[] {
  const out: number[] = [];
  const walk = (d: string, depth: number) => {
    if (depth > 12 || !existsSync(d)) return;
    try {
      for (const p of readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n')) if (p) out.push(Number(p));
    } catch {
      /* vanished */
    }
    for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name), depth + 1);
  };
  walk(dir, 0);
  return [...new Set(out)];
}

function rmCgroupTree(dir: string, depth = 0): void {
  if (depth > 12 || !existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) rmCgroupTree(join(dir, e.name), depth + 1);
  try {
    rmdirSync(dir);
  } catch {
    /* still busy: reported by the caller's leftover check */
  }
}

/** All processes in the lab cgroups of one host (or of every host). These are the lab's own:
 * only the launcher we started was ever moved there, and everything else descends from it. */
export function labProcesses(name?: string): number[] {
  return [...new Set(cgroupDirs(name).flatMap((d) => cgroupProcs(d)))];
}

// ---------------------------------------------------------------- boot / stop

export function readPid(name: string): number | undefined {
  try {
    const pid = Number(readFileSync(pidFile(name), 'utf8').trim());
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** The recorded PID is alive AND is our nspawn in our cgroup (guards against PID reuse). */
export function isRunning(name: string): boolean {
  const pid = readPid(name);
  if (!pid) return false;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const cg = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
    // A killed nspawn can linger as a zombie when PID 1 is slow to reap: that is not running.
    const state = /^State:\s+(\S)/m.exec(status)?.[1];
    return (
      /^Name:\s+systemd-nspawn$/m.test(status) &&
      state !== 'Z' &&
      state !== 'X' &&
      cg.includes(`/${CGROUP_NAME}/${name}`) &&
      labProcesses(name).length > 1
    );
  } catch {
    return false;
  }
}

export async function bootHost(name: string): Promise<number> {
  const dirs = cgroupDirs(name);
  for (const d of dirs) mkdirSync(d, { recursive: true });
  mkdirSync(join(RUN_DIR, 'pids'), { recursive: true });
  mkdirSync(join(RUN_DIR, 'logs'), { recursive: true });
  const log = openSync(logFile(name), 'a');
  const nspawnArgs = [
    '--quiet',
    '--boot',
    '--register=no',
    '--keep-unit',
    `--machine=${name}`,
    '-D',
    hostRoot(name),
    `--network-namespace-path=/run/netns/${netnsName(name)}`,
    '--console=read-only',
    '--link-journal=no',
  ];
  // The launcher moves itself into the host's cgroups, then execs nspawn (same PID).
  const script = `${dirs.map((d, i) => `echo $$ > "$${i + 1}/cgroup.procs"`).join(' && ')} && shift ${dirs.length} && exec systemd-nspawn "$@"`;
  const child = spawn('/bin/sh', ['-c', script, 'voxlab-launch', ...dirs, ...nspawnArgs], {
    detached: true, // setsid: the host outlives this process
    stdio: ['ignore', log, log],
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' },
  });
  closeSync(log);
  if (!child.pid) throw new Error(`${name}: failed to start systemd-nspawn`);
  child.unref();
  writeFileSync(pidFile(name), `${child.pid}\n`);
  return child.pid;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Orderly poweroff (SIGTERM to nspawn = SIGRTMIN+3 to the host's systemd), bounded; then SIGKILL
 * whatever is left in the host's own cgroups. */
export async function stopHost(name: string, { graceMs = 8000 } = {}): Promise<void> {
  if (isRunning(name)) {
    const pid = readPid(name)!;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* gone */
    }
    const deadline = Date.now() + graceMs;
    for (let i = 0; i < 400 && Date.now() < deadline && alive(pid); i++) await sleep(25);
  }
  for (let round = 0; round < 20; round++) {
    const procs = labProcesses(name);
    if (procs.length === 0) break;
    for (const p of procs) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await sleep(50);
  }
  for (const d of cgroupDirs(name)) rmCgroupTree(d);
  rmSync(pidFile(name), { force: true });
  rmSync(`/run/systemd/nspawn/propagate/${name}`, { recursive: true, force: true });
}

/** nspawn creates these on first use; remove them again when they are empty. */
export function removeNspawnRunDirs(): void {
  for (const d of ['/run/systemd/nspawn/propagate', '/run/systemd/nspawn/locks', '/run/systemd/nspawn']) {
    try {
      rmdirSync(d);
    } catch {
      /* absent or not empty: not ours to touch */
    }
  }
}

// ---------------------------------------------------------------- discovery (for teardown)

/** Every host name the lab left anything behind for: pid files, cgroups, netns, veths, mounts. */
export async function discoverHostNames(): Promise<string[]> {
  const names = new Set<string>();
  const pids = join(RUN_DIR, 'pids');
  if (existsSync(pids)) for (const f of readdirSync(pids)) if (f.endsWith('.pid')) names.add(f.slice(0, -4));
  for (const d of cgroupDirs()) {
    if (existsSync(d)) for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) names.add(e.name);
  }
  if (existsSync('/run/netns'))
    for (const f of readdirSync('/run/netns')) if (f.startsWith(NS_PREFIX)) names.add(f.slice(NS_PREFIX.length));
  const hostsDir = join(RUN_DIR, 'hosts');
  if (existsSync(hostsDir)) {
    for (const e of readdirSync(hostsDir, { withFileTypes: true })) if (e.isDirectory()) names.add(e.name);
  }
  for (const m of mountsUnder(hostsDir)) {
    const rest = m.target.slice(hostsDir.length + 1).split('/')[0];
    if (rest) names.add(rest);
  }
  return [...names].filter((n) => /^[a-z][a-z0-9-]*$/.test(n)).sort();
}

export async function removeLabWide(): Promise<void> {
  // Root-side veths whose namespace vanished without them.
  const links = await run('ip', ['-o', 'link', 'show', 'type', 'veth'], { allowFail: true });
  for (const m of links.stdout.matchAll(/^\d+:\s+(vl-[^@:\s]+)/gm)) await run('ip', ['link', 'delete', m[1]!], { allowFail: true });
  if ((await run('ip', ['link', 'show', BRIDGE], { allowFail: true })).code === 0) await run('ip', ['link', 'delete', BRIDGE]);
  await unmountUnder(join(RUN_DIR, 'hosts'));
  for (const d of cgroupDirs()) rmCgroupTree(d);
  removeNspawnRunDirs();
  rmSync(RUN_DIR, { recursive: true, force: true });
}

export function diskUsage(name: string): { usedMb: number; sizeMb: number } | undefined {
  try {
    return { usedMb: Math.round((statSync(hostImage(name)).blocks * 512) / 1048576), sizeMb: DISK_MB };
  } catch {
    return undefined;
  }
}
