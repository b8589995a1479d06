// What makes a booted base into a git / api / fleet / dialler / ingress host. Files are written
// into the mounted root before boot; install + enable run inside the host over SSH (offline).
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { hostRoot, labPath } from './paths.js';
import { run } from './sh.js';
import { BASE_TAG, CHECKOUTS, GIT_ADDRESS, REPOS, repoUrl, type LabHost, type Topology } from './topology.js';

export const FAKE_SECRET = 'lab-secret-do-not-print';
const PROVISIONED_MARK = '/var/lib/voxlab/provisioned';

function put(root: string, path: string, content: string, mode = 0o644): void {
  const f = join(root, path);
  mkdirSync(dirname(f), { recursive: true });
  writeFileSync(f, content, { mode });
  chmodSync(f, mode);
}

function passwdIds(root: string, user: string): { uid: number; gid: number } {
  const line = readFileSync(join(root, 'etc/passwd'), 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${user}:`));
  if (!line) throw new Error(`no user ${user} in ${root}/etc/passwd`);
  const f = line.split(':');
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

function chownTree(path: string, uid: number, gid: number, depth = 0): void {
  if (depth > 40) return;
  chownSync(path, uid, gid);
  for (const e of readdirSync(path, { withFileTypes: true })) {
    const p = join(path, e.name);
    if (e.isDirectory()) chownTree(p, uid, gid, depth + 1);
    else chownSync(p, uid, gid);
  }
}

/** First boot only: this host's own identity. */
export async function createIdentity(host: LabHost): Promise<void> {
  const root = hostRoot(host.name);
  put(root, 'etc/machine-id', `${randomBytes(16).toString('hex')}\n`, 0o444);
  for (const f of readdirSync(join(root, 'etc/ssh'))) if (f.startsWith('ssh_host_')) rmSync(join(root, 'etc/ssh', f));
  await run('ssh-keygen', ['-A', '-f', root]);
}

export function hostPublicKeys(name: string): string[] {
  const dir = join(hostRoot(name), 'etc/ssh');
  return readdirSync(dir)
    .filter((f) => /^ssh_host_.*_key\.pub$/.test(f))
    .sort()
    .map((f) => readFileSync(join(dir, f), 'utf8').trim().split(/\s+/).slice(0, 2).join(' '));
}

/** Every boot: names, the deploy key, and who trusts whom. Cheap and keeps the lab coherent
 * even when `.lab/` was regenerated. */
export function writeAccess(host: LabHost, topo: Topology, deployPub: string, deployKey: string): void {
  const root = hostRoot(host.name);
  put(root, 'etc/hostname', `${host.name}\n`);
  put(
    root,
    'etc/hosts',
    ['127.0.0.1 localhost', `127.0.1.1 ${host.name}`, ...topo.hosts.map((h) => `${h.address} ${h.name}`), ''].join('\n'),
  );
  put(root, 'root/.ssh/authorized_keys', `${deployPub}\n`, 0o600);
  chmodSync(join(root, 'root/.ssh'), 0o700);
  // OpenSSH's own default channels per connection, as on a production host: sshd takes the first
  // value it reads, and this file sorts before the base's voxlab.conf (MaxSessions 100)
  put(root, 'etc/ssh/sshd_config.d/00-voxlab-sessions.conf', 'MaxSessions 10\n');
  if (host.role === 'git') {
    const { uid, gid } = passwdIds(root, 'git');
    put(root, 'srv/git/.ssh/authorized_keys', `${deployPub}\n`, 0o600);
    chownSync(join(root, 'srv/git/.ssh'), uid, gid);
    chownSync(join(root, 'srv/git/.ssh/authorized_keys'), uid, gid);
    chmodSync(join(root, 'srv/git/.ssh'), 0o700);
  } else {
    put(root, 'root/.ssh/id_ed25519', deployKey, 0o600);
    put(root, 'root/.ssh/id_ed25519.pub', `${deployPub}\n`, 0o644);
    const gitKeys = hostPublicKeys('git').map((k) => `${GIT_ADDRESS},git ${k}`);
    put(root, 'root/.ssh/known_hosts', `${gitKeys.join('\n')}\n`, 0o644);
  }
}

/** The git host's bare repos, refreshed whenever `.lab/repos` was rebuilt. */
export function writeGitRepos(stamp: string): void {
  const root = hostRoot('git');
  const mark = join(root, 'srv/git/.voxlab-repos');
  if (existsSync(mark) && readFileSync(mark, 'utf8').trim() === stamp) return;
  const { uid, gid } = passwdIds(root, 'git');
  for (const repo of REPOS) {
    const dst = join(root, 'srv/git', `${repo}.git`);
    rmSync(dst, { recursive: true, force: true });
    cpSync(labPath('repos', `${repo}.git`), dst, { recursive: true });
    chownTree(dst, uid, gid);
  }
  writeFileSync(mark, `${stamp}\n`);
}

function unit(description: string, body: string[]): string {
  return [
    '[Unit]',
    `Description=${description}`,
    'After=network.target',
    '',
    '[Service]',
    ...body,
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

export function fleetNginxConfig(workers: number): string {
  const servers = Array.from({ length: workers }, (_, k) => `    server unix:/tmp/voxcore_${k + 1}.sock max_conns=1 fail_timeout=10;`);
  const retry = (path: string) => `
    location = ${path} {
        proxy_pass http://voxcore_workers;
        proxy_http_version 1.1;
        proxy_set_header Host $host;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_next_upstream error timeout http_429 non_idempotent;
        proxy_next_upstream_tries ${workers};
        proxy_connect_timeout 5s;
        proxy_read_timeout 3600s;
        proxy_send_timeout 3600s;
    }
`;
  return `# voxops lab: the production fleet config (platform doc 02) plus a shared \`zone\`,
# so that max_conns=1 is counted across nginx worker processes.
map $http_upgrade $connection_upgrade {
    default upgrade;
    ""      "";
}

upstream voxcore_workers {
    zone voxcore_workers 64k;
    least_conn;
${servers.join('\n')}
}

server {
    listen 80 default_server;
    server_name _;
${retry('/attach')}${retry('/livekit/dialout')}${retry('/livekit/widget')}
    location / {
        proxy_pass http://voxcore_workers;
        proxy_http_version 1.1;
        proxy_set_header Host $host;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
        proxy_read_timeout 3600s;
        proxy_send_timeout 3600s;
    }
}
`;
}

export function haproxyConfig(topo: Topology): string {
  const fleets = topo.hosts.filter((h) => h.role === 'fleet');
  return `# voxops lab ingress: HAProxy in front of every fleet host's nginx.
global
    log /dev/log local0
    maxconn 4096
    stats socket /run/haproxy/admin.sock mode 660 level admin
    user haproxy
    group haproxy
    daemon

defaults
    mode http
    log global
    option httplog
    timeout connect 5s
    timeout client 3600s
    timeout server 3600s
    timeout tunnel 3600s

frontend calls
    bind :80
    default_backend fleet

backend fleet
    balance leastconn
    option httpchk GET /health
    http-check expect status 200
${fleets.map((h) => `    server ${h.name} ${h.address}:80 check inter 1s fall 2 rise 1`).join('\n')}

listen stats
    bind 127.0.0.1:8404
    stats enable
    stats uri /stats
`;
}

async function checkout(root: string, repo: string, path: string): Promise<void> {
  const dst = join(root, path.replace(/^\//, ''));
  if (existsSync(join(dst, '.git'))) return; // persisted state: leave whatever release is there
  rmSync(dst, { recursive: true, force: true });
  mkdirSync(dirname(dst), { recursive: true });
  const git = (args: string[]) => run('git', ['-c', 'advice.detachedHead=false', ...args], { timeoutMs: 60_000 });
  await git(['clone', '--quiet', '--no-checkout', '--no-hardlinks', labPath('repos', `${repo}.git`), dst]);
  await git(['-C', dst, 'checkout', '--quiet', '--detach', BASE_TAG]);
  await git(['-C', dst, 'remote', 'set-url', 'origin', repoUrl(repo)]);
}

/** First boot only: the role's units, configs and checkouts (later releases are voxops' job). */
export async function writeRole(host: LabHost, topo: Topology): Promise<void> {
  const root = hostRoot(host.name);
  for (const c of CHECKOUTS[host.role]) await checkout(root, c.repo, c.path);
  switch (host.role) {
    case 'fleet': {
      const n = host.workers ?? topo.workers;
      put(
        root,
        'etc/systemd/system/voxcore@.service',
        unit('VoxCore Worker %i', [
          'Type=simple',
          'Environment=VOXCORE_SOCKET=/tmp/voxcore_%i.sock',
          'EnvironmentFile=/opt/voxcore/.env',
          'ExecStart=/opt/voxcore/scripts/run_worker.sh',
          'WorkingDirectory=/opt/voxcore',
          'Restart=always',
          'RestartSec=1',
          'PrivateTmp=no',
        ]),
      );
      put(root, 'opt/voxcore/.env', `VOXCORE_WORKERS=${n}\nMAX_CONCURRENT_CALLS=1\nVOXCORE_API_SECRET=${FAKE_SECRET}\n`, 0o600);
      rmSync(join(root, 'etc/nginx/sites-enabled/default'), { force: true });
      put(root, 'etc/nginx/sites-enabled/voxcore-fleet.conf', fleetNginxConfig(n));
      break;
    }
    case 'api': {
      put(
        root,
        'etc/systemd/system/voxbridge.service',
        unit('VoxBridge backend API', [
          'Type=simple',
          'EnvironmentFile=/opt/voxbridge/.env',
          'ExecStart=/opt/voxbridge/scripts/run.sh',
          'WorkingDirectory=/opt/voxbridge',
          'Restart=always',
          'RestartSec=1',
        ]),
      );
      put(root, 'opt/voxbridge/.env', `VOXBRIDGE_API_SECRET=${FAKE_SECRET}\n`, 0o600);
      const current = join(root, 'opt/voxconsole/current');
      rmSync(current, { force: true });
      symlinkSync('/opt/voxconsole/dist', current);
      writeFileSync(join(root, 'opt/voxconsole/.git/info/exclude'), 'current\n', { flag: 'a' });
      rmSync(join(root, 'etc/nginx/sites-enabled/default'), { force: true });
      put(
        root,
        'etc/nginx/sites-enabled/voxconsole.conf',
        `server {
    listen 80 default_server;
    server_name _;
    root /opt/voxconsole/current;
    index index.html;
    location / {
        try_files $uri $uri/ /index.html;
    }
}
`,
      );
      break;
    }
    case 'dialler':
      put(
        root,
        'etc/systemd/system/voxdialler.service',
        unit('VoxDialler', [
          'Type=simple',
          'EnvironmentFile=/opt/voxdialler/.env',
          'ExecStart=/opt/voxdialler/scripts/run.sh',
          'WorkingDirectory=/opt/voxdialler',
          'Restart=always',
          'RestartSec=1',
        ]),
      );
      put(root, 'opt/voxdialler/.env', `VOXDIALLER_API_SECRET=${FAKE_SECRET}\n`, 0o600);
      break;
    case 'ingress':
      put(root, 'etc/haproxy/haproxy.cfg', haproxyConfig(topo));
      break;
    case 'git':
      break;
  }
}

/** Runs inside the host (bash -s) once: install and start what the role runs. Idempotent. */
export function provisionScript(host: LabHost, topo: Topology): string {
  const n = host.workers ?? topo.workers;
  const body: Record<LabHost['role'], string> = {
    git: '',
    fleet: `cd /opt/voxcore && sh scripts/install.sh
systemctl daemon-reload
systemctl enable --now ${Array.from({ length: n }, (_, k) => `voxcore@${k + 1}`).join(' ')}
systemctl enable nginx && systemctl restart nginx`,
    api: `cd /opt/voxbridge && sh scripts/install.sh
cd /opt/voxconsole && sh scripts/build.sh
systemctl daemon-reload
systemctl enable --now voxbridge.service
systemctl enable nginx && systemctl restart nginx`,
    dialler: `cd /opt/voxdialler && sh scripts/install.sh
systemctl daemon-reload
systemctl enable --now voxdialler.service`,
    ingress: `systemctl enable haproxy && systemctl restart haproxy`,
  };
  return `set -eu
[ -e ${PROVISIONED_MARK} ] && exit 0
${body[host.role]}
mkdir -p ${dirname(PROVISIONED_MARK)} && date -u +%FT%TZ > ${PROVISIONED_MARK}
`;
}

/** Runs inside the host: waits (bounded: 300 x 0.2 s) until the role's services answer. */
export function healthScript(host: LabHost, topo: Topology): string {
  const n = host.workers ?? topo.workers;
  const fleets = topo.hosts.filter((h) => h.role === 'fleet').map((h) => h.name);
  const checks: Record<LabHost['role'], string> = {
    git: 'systemctl is-active --quiet ssh',
    fleet: `for i in $(seq 1 ${n}); do curl -fsS -m 2 --unix-socket /tmp/voxcore_$i.sock http://w/health >/dev/null || exit 1; done
curl -fsS -m 3 http://127.0.0.1/health/fleet | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if d["healthy"]==${n} else 1)'`,
    api: `curl -fsS -m 2 http://127.0.0.1:8080/health >/dev/null && curl -fsS -m 2 http://127.0.0.1/ | grep -q v`,
    dialler: 'curl -fsS -m 2 http://127.0.0.1:8090/health >/dev/null',
    ingress: `s=$(curl -fsS -m 2 'http://127.0.0.1:8404/stats;csv') || exit 1
for f in ${fleets.join(' ')}; do echo "$s" | grep -q "^fleet,$f,.*,UP," || exit 1; done
curl -fsS -m 2 http://127.0.0.1/health >/dev/null`,
  };
  return `check() {
${checks[host.role]}
}
for k in $(seq 1 300); do
  if (check) >/dev/null 2>&1; then exit 0; fi
  sleep 0.2
done
echo "${host.name}: not healthy after 60 s" >&2
(check) >&2
exit 1
`;
}
