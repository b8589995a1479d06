import { describe, expect, it } from 'vitest';
import { checkNginxConfig, upstreamFailTimeoutSeconds } from '../../src/commands/nginx.js';

const sockets = [1, 2, 3, 4].map((i) => `/tmp/voxcore_${i}.sock`);
const upstream = (extra: string) => `# configuration file /etc/nginx/sites-enabled/voxcore-fleet.conf:
map $http_upgrade $connection_upgrade { default upgrade; "" ""; }
upstream voxcore_workers {
    least_conn;
    ${extra}
${sockets.map((s) => `    server unix:${s} max_conns=1 fail_timeout=10;`).join('\n')}
}
server { listen 80; location / { proxy_pass http://voxcore_workers; } }
`;

describe('checkNginxConfig', () => {
  it('passes the lab/production config with a zone', () => {
    expect(checkNginxConfig(upstream('zone voxcore_workers 64k;'), 'voxcore_workers', sockets, 3600)).toEqual([]);
  });

  it('refuses upstream keepalive and warns about a missing zone', () => {
    expect(checkNginxConfig(upstream('keepalive 32;'), 'voxcore_workers', sockets, 3600)).toEqual([
      { level: 'error', message: expect.stringMatching(/keepalive/) },
      { level: 'warning', message: expect.stringMatching(/no zone/) },
    ]);
  });

  it('ignores commented-out directives', () => {
    expect(checkNginxConfig(upstream('zone z 64k; # keepalive 32;'), 'voxcore_workers', sockets, 3600)).toEqual([]);
  });

  it('refuses a worker_shutdown_timeout shorter than a call, accepts a longer one', () => {
    const short = `worker_shutdown_timeout 5s;\n${upstream('zone z 64k;')}`;
    expect(checkNginxConfig(short, 'voxcore_workers', sockets, 3600)).toEqual([
      { level: 'error', message: expect.stringMatching(/worker_shutdown_timeout 5s is shorter than a call/) },
    ]);
    expect(checkNginxConfig(`worker_shutdown_timeout 2h;\n${upstream('zone z 64k;')}`, 'voxcore_workers', sockets, 3600)).toEqual([]);
  });

  it('reports missing and extra sockets and a missing upstream', () => {
    const findings = checkNginxConfig(upstream('zone z 64k;'), 'voxcore_workers', [...sockets.slice(1), '/tmp/voxcore_5.sock'], 3600);
    expect(findings.map((f) => f.message)).toEqual([
      'upstream voxcore_workers does not list /tmp/voxcore_5.sock',
      'upstream voxcore_workers lists sockets beyond the configured workers: /tmp/voxcore_1.sock',
    ]);
    expect(checkNginxConfig(upstream(''), 'cxbcore_workers', sockets, 3600)).toEqual([
      { level: 'error', message: 'nginx has no upstream "cxbcore_workers"' },
    ]);
  });
});

describe('upstreamFailTimeoutSeconds', () => {
  const conf = (params: string) =>
    `upstream voxcore_workers { zone z 64k; server unix:/tmp/a.sock max_conns=1 ${params}; server unix:/tmp/b.sock max_conns=1; }`;
  it('is nginx default 10s, the configured fail_timeout, or 0 with max_fails=0 everywhere', () => {
    expect(upstreamFailTimeoutSeconds(conf(''), 'voxcore_workers')).toBe(10);
    expect(
      upstreamFailTimeoutSeconds(conf('fail_timeout=30s').replace('max_conns=1;', 'max_conns=1 fail_timeout=2;'), 'voxcore_workers'),
    ).toBe(30);
    expect(upstreamFailTimeoutSeconds(conf('max_fails=0').replace('max_conns=1;', 'max_conns=1 max_fails=0;'), 'voxcore_workers')).toBe(0);
  });
});
