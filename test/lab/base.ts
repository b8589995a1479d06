// The Debian bookworm base rootfs shared (read-only, as overlay lower) by every lab host.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CACHE_DIR } from './paths.js';
import { run } from './sh.js';
import { unmountUnder } from './mounts.js';

export const SUITE = 'bookworm';
/** Installed with apt inside the minbase chroot (policy-rc.d denies every service start). */
export const BASE_PACKAGES = [
  'systemd',
  'systemd-sysv',
  'dbus',
  'openssh-server',
  'nginx-light',
  'haproxy',
  'python3',
  'python3-venv',
  'python3-fastapi',
  'python3-uvicorn',
  'python3-websockets',
  'git',
  'rsync',
  'curl',
  'sudo',
  'iproute2',
  'procps',
  'ca-certificates',
];
/** Bump when the recipe below changes; the cache key includes it. */
const RECIPE_VERSION = '3';

/** Units the base ships enabled that the lab hosts either enable per role or never need offline. */
const DISABLED_UNITS = [
  'nginx.service',
  'haproxy.service',
  'apt-daily.timer',
  'apt-daily-upgrade.timer',
  'dpkg-db-backup.timer',
  'e2scrub_all.timer',
  'fstrim.timer',
  'man-db.timer',
];

export function baseKey(): string {
  return createHash('sha256')
    .update([RECIPE_VERSION, SUITE, ...BASE_PACKAGES].join('\n'))
    .digest('hex')
    .slice(0, 12);
}

export function baseDir(): string {
  return join(CACHE_DIR, `base-${SUITE}-${baseKey()}`);
}

/**
 * The Debian mirror this machine already uses, read from its apt sources (deb822 `.sources`
 * and one-line `.list`). Prefers an entry carrying the plain suite (e.g. `bookworm`).
 * VOXLAB_MIRROR overrides it.
 */
export function findMirror(): string {
  if (process.env.VOXLAB_MIRROR) return process.env.VOXLAB_MIRROR;
  const files: string[] = [];
  if (existsSync('/etc/apt/sources.list')) files.push('/etc/apt/sources.list');
  if (existsSync('/etc/apt/sources.list.d')) {
    for (const f of readdirSync('/etc/apt/sources.list.d').sort()) {
      if (f.endsWith('.list') || f.endsWith('.sources')) files.push(join('/etc/apt/sources.list.d', f));
    }
  }
  const entries: { uri: string; suites: string[] }[] = [];
  for (const f of files) {
    const text = readFileSync(f, 'utf8');
    if (f.endsWith('.sources')) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const field = (k: string) =>
          stanza
            .split('\n')
            .find((l) => l.toLowerCase().startsWith(`${k.toLowerCase()}:`))
            ?.slice(k.length + 1)
            .trim();
        const types = field('Types')?.split(/\s+/) ?? [];
        const uris = field('URIs')?.split(/\s+/) ?? [];
        const suites = field('Suites')?.split(/\s+/) ?? [];
        if (field('Enabled') === 'no' || !types.includes('deb')) continue;
        for (const uri of uris) entries.push({ uri, suites });
      }
    } else {
      for (const raw of text.split('\n')) {
        const line = raw
          .replace(/#.*/, '')
          .replace(/\[[^\]]*\]/, '')
          .trim()
          .split(/\s+/);
        if (line[0] !== 'deb' || !line[1] || !line[2]) continue;
        entries.push({ uri: line[1], suites: [line[2]] });
      }
    }
  }
  const hit = entries.find((e) => e.suites.includes(SUITE)) ?? entries.find((e) => /\/debian\/?$/.test(e.uri));
  if (!hit) {
    throw new Error(`no Debian mirror for ${SUITE} in this machine's apt sources; set VOXLAB_MIRROR`);
  }
  return hit.uri;
}

async function chroot(dir: string, script: string, timeoutMs: number): Promise<void> {
  await run('chroot', [dir, '/bin/sh', '-euc', script], {
    timeoutMs,
    inherit: true,
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C', HOME: '/root' },
  });
}

/** Build the base once; later calls return the cached directory. */
export async function ensureBase(log: (s: string) => void = console.log): Promise<{ dir: string; builtSeconds?: number }> {
  const dir = baseDir();
  if (existsSync(join(dir, '.voxlab-base-complete'))) return { dir };
  mkdirSync(CACHE_DIR, { recursive: true });
  // Leftovers of an interrupted build: unmount anything inside them, then delete them.
  for (const f of readdirSync(CACHE_DIR)) {
    if (f.includes('.tmp-')) {
      const stale = join(CACHE_DIR, f);
      await unmountUnder(stale);
      rmSync(stale, { recursive: true, force: true });
    }
  }
  const t0 = Date.now();
  const tmp = `${dir}.tmp-${process.pid}`;
  const mirror = findMirror();
  log(`[lab] building base rootfs ${dir} from ${mirror} (first time only, ~2 min)`);
  await run('debootstrap', ['--variant=minbase', SUITE, tmp, mirror], { timeoutMs: 15 * 60_000, inherit: true });

  writeFileSync(join(tmp, 'usr/sbin/policy-rc.d'), '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  mkdirSync(join(tmp, 'proc'), { recursive: true });
  await run('mount', ['--make-private', '-t', 'proc', 'proc', join(tmp, 'proc')]);
  try {
    await chroot(
      tmp,
      `apt-get update -q
       apt-get install -y -q --no-install-recommends ${BASE_PACKAGES.join(' ')}
       apt-get clean
       for u in ${DISABLED_UNITS.join(' ')}; do systemctl disable "$u" 2>/dev/null || true; done
       useradd --create-home --home-dir /srv/git --shell /usr/bin/git-shell git`,
      15 * 60_000,
    );
  } finally {
    await run('umount', [join(tmp, 'proc')], { allowFail: true });
  }
  // Per-host identity is created per host: no host keys and no machine-id in the base.
  for (const f of readdirSync(join(tmp, 'etc/ssh'))) {
    if (f.startsWith('ssh_host_')) rmSync(join(tmp, 'etc/ssh', f));
  }
  writeFileSync(join(tmp, 'etc/machine-id'), '');
  rmSync(join(tmp, 'var/lib/dbus/machine-id'), { force: true });
  rmSync(join(tmp, 'usr/sbin/policy-rc.d'));
  rmSync(join(tmp, 'var/lib/apt/lists'), { recursive: true, force: true });
  mkdirSync(join(tmp, 'var/lib/apt/lists/partial'), { recursive: true });
  writeFileSync(
    join(tmp, 'etc/ssh/sshd_config.d/voxlab.conf'),
    // Deploy tools open many connections at once; the default MaxStartups 10:30:100 drops some.
    'PasswordAuthentication no\nPermitRootLogin prohibit-password\nUseDNS no\nMaxStartups 200\nMaxSessions 100\n',
  );
  mkdirSync(join(tmp, 'etc/systemd/journald.conf.d'), { recursive: true });
  writeFileSync(join(tmp, 'etc/systemd/journald.conf.d/voxlab.conf'), '[Journal]\nSystemMaxUse=32M\nRuntimeMaxUse=16M\n');
  // pam_loginuid cannot always write the audit login uid inside a container.
  const pamSshd = join(tmp, 'etc/pam.d/sshd');
  writeFileSync(
    pamSshd,
    readFileSync(pamSshd, 'utf8').replace(/session\s+required\s+pam_loginuid\.so/, 'session optional pam_loginuid.so'),
  );
  writeFileSync(join(tmp, '.voxlab-base-complete'), `${new Date().toISOString()} ${mirror}\n`);
  renameSync(tmp, dir);
  const builtSeconds = (Date.now() - t0) / 1000;
  log(`[lab] base built in ${builtSeconds.toFixed(1)} s`);
  return { dir, builtSeconds };
}
