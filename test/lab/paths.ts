// Where the lab keeps things. Generated files live in `.lab/` at the repo root (contract);
// the base rootfs is cached outside the checkout; mount points and pid files live under /run.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'voxops') return dir;
      } catch {
        /* keep walking */
      }
    }
    dir = dirname(dir);
  }
  return process.cwd();
}

export const REPO_ROOT = process.env.VOXLAB_REPO_ROOT ?? findRepoRoot();
export const LAB_DIR = resolve(process.env.VOXLAB_DIR ?? join(REPO_ROOT, '.lab'));
export const CACHE_DIR = '/var/cache/voxops-lab';
/** Mount points (private propagation), pid files, nspawn logs. Never inside the checkout, so no
 * file walker (vitest, tsc, editors) wanders into a mounted Debian tree. */
export const RUN_DIR = '/run/voxops-lab';
export const RELEASES_SCRIPT = join(REPO_ROOT, 'test/lab/releases/build-repos.sh');

export const BRIDGE = 'voxlab0';
export const SUBNET = '10.231.0.0/24';
export const BRIDGE_ADDRESS = '10.231.0.1';
export const PREFIX = 24;
/** Netns names, cgroup names and veth names carry this prefix, so teardown only ever touches
 * objects the lab made. */
export const NS_PREFIX = 'voxlab-';
export const CGROUP_NAME = 'voxops-lab';

export const labPath = (...p: string[]) => join(LAB_DIR, ...p);
export const hostRunDir = (name: string) => join(RUN_DIR, 'hosts', name);
export const hostRoot = (name: string) => join(hostRunDir(name), 'root');
export const hostDiskMount = (name: string) => join(hostRunDir(name), 'disk');
export const hostImage = (name: string) => labPath('disks', `${name}.img`);
export const pidFile = (name: string) => join(RUN_DIR, 'pids', `${name}.pid`);
export const logFile = (name: string) => join(RUN_DIR, 'logs', `${name}.log`);
export const netnsName = (name: string) => `${NS_PREFIX}${name}`;
/** Root-side veth name; interface names are limited to 15 bytes. */
export const vethName = (name: string) => `vl-${name}`.slice(0, 15);
