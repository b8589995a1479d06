import { mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { setEnvVariable } from '../../src/commands/env-file.js';
import { nginxErrorLines, renderScaledUpstream, upstreamSockets } from '../../src/commands/nginx.js';
import { renderCommand } from '../../src/exec/render.js';
import { LocalExecutor } from '../../src/exec/local.js';
import { planScale, socketIndex } from '../../src/plan/scale.js';
import type { FleetRoleConfig } from '../../src/config/schema.js';

const retry = (tries: number) => `    location = /attach {
        proxy_pass http://voxcore_workers;
        proxy_next_upstream error timeout http_429 non_idempotent;
        proxy_next_upstream_tries ${tries};
        proxy_read_timeout 3600s;
    }
`;

const labConfig = (servers: number, tries: number, zone = '    zone voxcore_workers 64k;\n') => `# the lab's fleet config
map $http_upgrade $connection_upgrade {
    default upgrade;
    ""      "";
}

upstream voxcore_workers {
${zone}    least_conn;
${Array.from({ length: servers }, (_, k) => `    server unix:/tmp/voxcore_${k + 1}.sock max_conns=1 fail_timeout=10;`).join('\n')}
}

server {
    listen 80 default_server;
${retry(tries)}
    location / {
        proxy_pass http://voxcore_workers;
    }
}
`;

const sockets = (n: number, pattern = '/tmp/voxcore_{i}.sock') =>
  Array.from({ length: n }, (_, k) => pattern.replace('{i}', String(k + 1)));

describe('renderScaledUpstream', () => {
  it('grows 4 -> 6: six server lines with the first line parameters, tries 6, every other line as it was', () => {
    const result = renderScaledUpstream(labConfig(4, 4), { upstream: 'voxcore_workers', sockets: sockets(6), tries: 6 });
    expect(result).toEqual({ ok: true, text: labConfig(6, 6) });
  });

  it('shrinks 6 -> 3', () => {
    expect(renderScaledUpstream(labConfig(6, 6), { upstream: 'voxcore_workers', sockets: sockets(3), tries: 3 })).toEqual({
      ok: true,
      text: labConfig(3, 3),
    });
  });

  it('adds a zone when the upstream has none, and enforces max_conns=1 while keeping the other parameters', () => {
    const before = `upstream voxcore_workers {
  least_conn;
  server unix:/tmp/voxcore_1.sock fail_timeout=10 max_fails=0; # worker 1
  server unix:/tmp/voxcore_2.sock;
}
location = /livekit/dialout { proxy_next_upstream_tries 2;  # two workers
}
`;
    const after = `upstream voxcore_workers {
  zone voxcore_workers 64k;
  least_conn;
  server unix:/tmp/cxb_1.sock max_conns=1 fail_timeout=10 max_fails=0;
  server unix:/tmp/cxb_2.sock max_conns=1 fail_timeout=10 max_fails=0;
  server unix:/tmp/cxb_3.sock max_conns=1 fail_timeout=10 max_fails=0;
}
location = /livekit/dialout { proxy_next_upstream_tries 2;  # two workers
}
`;
    // tries are only rewritten where the directive starts its line; this one shares a line with "{"
    expect(renderScaledUpstream(before, { upstream: 'voxcore_workers', sockets: sockets(3, '/tmp/cxb_{i}.sock'), tries: 3 })).toEqual({
      ok: true,
      text: after,
    });
  });

  it('replaces max_conns=N with max_conns=1 and leaves commented lines and other upstreams alone', () => {
    const before = `upstream other {
    server unix:/tmp/other.sock max_conns=5;
}
upstream voxcore_workers {
    zone voxcore_workers 64k;
    # server unix:/tmp/old.sock;
    server unix:/tmp/voxcore_1.sock max_conns=2;
}
    # proxy_next_upstream_tries 9;
    proxy_next_upstream_tries 1;`;
    const after = `upstream other {
    server unix:/tmp/other.sock max_conns=5;
}
upstream voxcore_workers {
    zone voxcore_workers 64k;
    # server unix:/tmp/old.sock;
    server unix:/tmp/voxcore_1.sock max_conns=1;
    server unix:/tmp/voxcore_2.sock max_conns=1;
}
    # proxy_next_upstream_tries 9;
    proxy_next_upstream_tries 2;`;
    expect(renderScaledUpstream(before, { upstream: 'voxcore_workers', sockets: sockets(2), tries: 2 })).toEqual({ ok: true, text: after });
  });

  it('refuses what it cannot rewrite safely', () => {
    const r = (config: string, socketList = sockets(2)) =>
      renderScaledUpstream(config, { upstream: 'voxcore_workers', sockets: socketList, tries: 2 });
    expect(r('server { }')).toEqual({ ok: false, problem: 'the file has no "upstream voxcore_workers {" line' });
    expect(r('upstream voxcore_workers { server unix:/tmp/a.sock; }')).toMatchObject({
      ok: false,
      problem: expect.stringMatching(/one directive per line/),
    });
    expect(r('upstream voxcore_workers {\n  server 127.0.0.1:8001;\n}\n')).toMatchObject({
      ok: false,
      problem: expect.stringMatching(/not a "server unix:/),
    });
    expect(r('upstream voxcore_workers {\n  least_conn;\n}\n')).toMatchObject({
      ok: false,
      problem: expect.stringMatching(/no "server unix:" line/),
    });
    expect(r(labConfig(2, 2), ['/tmp/a b.sock'])).toMatchObject({
      ok: false,
      problem: expect.stringMatching(/cannot go into an nginx server line/),
    });
    expect(r(labConfig(2, 2), ['/tmp/x.sock;\n}'])).toMatchObject({ ok: false });
  });

  it('reads the sockets back in order', () => {
    expect(upstreamSockets(labConfig(3, 3), 'voxcore_workers')).toEqual(sockets(3));
  });
});

describe('nginxErrorLines', () => {
  it("keeps nginx's own error line", () => {
    const stderr =
      'nginx: [emerg] unknown directive "this_is_broken" in /etc/nginx/conf.d/zz-broken.conf:1\nnginx: configuration file /etc/nginx/nginx.conf test failed\n';
    expect(nginxErrorLines(stderr)).toBe('nginx: [emerg] unknown directive "this_is_broken" in /etc/nginx/conf.d/zz-broken.conf:1');
  });
});

const role = {
  workers: {
    count: 4,
    unit: 'voxcore@{i}',
    socket: '/tmp/voxcore_{i}.sock',
    envFile: '/opt/voxcore/.env',
    countVariable: 'VOXCORE_WORKERS',
  },
} as unknown as FleetRoleConfig;

describe('planScale', () => {
  it('grows: adds the new workers, restarts the old ones', () => {
    const plan = planScale(role, '/opt/voxcore/.env', { host: 'fleet2', from: 4, to: 6 });
    expect(plan).toMatchObject({ direction: 'grow', added: [5, 6], removed: [], restarted: [1, 2, 3, 4], sockets: sockets(6) });
    expect(renderCommand(plan.setCount.command)).toMatch(/ voxops-set-env \/opt\/voxcore\/\.env VOXCORE_WORKERS 6$/);
    expect(renderCommand(plan.restoreCount.command)).toMatch(/ VOXCORE_WORKERS 4$/);
  });

  it('shrinks: removes the top workers, restarts the rest; a resumed shrink removes only what is still enabled', () => {
    expect(planScale(role, '/e', { host: 'h', from: 6, to: 3 })).toMatchObject({
      direction: 'shrink',
      added: [],
      removed: [4, 5, 6],
      restarted: [1, 2, 3],
    });
    expect(planScale(role, '/e', { host: 'h', from: 6, to: 3, stillEnabled: [1, 2, 3, 5] })).toMatchObject({ removed: [5] });
  });

  it('maps socket paths back to worker indices by the pattern', () => {
    expect(socketIndex('/tmp/voxcore_{i}.sock', '/tmp/voxcore_12.sock')).toBe(12);
    expect(socketIndex('/tmp/voxcore_{i}.sock', '/tmp/voxcore_x.sock')).toBeUndefined();
    expect(socketIndex('/tmp/voxcore_{i}.sock', '/tmp/cxbcore_1.sock')).toBeUndefined();
  });
});

const local = await new LocalExecutor().connect({ name: 'local', address: '127.0.0.1', port: 22, role: 'fleet' });

describe('setEnvVariable', () => {
  const secretLines = 'MAX_CONCURRENT_CALLS=1\nVOXCORE_API_SECRET=lab-secret-do-not-print\n# comment = with $(id) and `x`\n';

  function envFile(text: string, mode = 0o600): string {
    const dir = mkdtempSync(join(tmpdir(), 'voxops-env-'));
    const file = join(dir, '.env');
    writeFileSync(file, text);
    chmodSync(file, mode);
    return file;
  }

  it('changes only the one line, keeps the mode and prints nothing', async () => {
    const file = envFile(`VOXCORE_WORKERS=4\n${secretLines}`, 0o640);
    const result = await local.run(setEnvVariable(file, 'VOXCORE_WORKERS', '6'));
    expect(result).toMatchObject({ exitCode: 0, stdout: '', stderr: '' });
    expect(readFileSync(file, 'utf8')).toBe(`VOXCORE_WORKERS=6\n${secretLines}`);
    expect(statSync(file).mode & 0o777).toBe(0o640);
  });

  it('appends the line when it is absent, and sets every line that assigns it', async () => {
    const absent = envFile(secretLines);
    await local.run(setEnvVariable(absent, 'VOXCORE_WORKERS', '3'));
    expect(readFileSync(absent, 'utf8')).toBe(`${secretLines}VOXCORE_WORKERS=3\n`);
    const twice = envFile(`VOXCORE_WORKERS=4\nVOXCORE_WORKERS_EXTRA=1\n${secretLines}VOXCORE_WORKERS=5\n`);
    await local.run(setEnvVariable(twice, 'VOXCORE_WORKERS', '2'));
    expect(readFileSync(twice, 'utf8')).toBe(`VOXCORE_WORKERS=2\nVOXCORE_WORKERS_EXTRA=1\n${secretLines}VOXCORE_WORKERS=2\n`);
  });

  it('writes through a symlink to its target', async () => {
    const file = envFile(`VOXCORE_WORKERS=4\n${secretLines}`);
    const link = `${file}.link`;
    symlinkSync(file, link);
    await local.run(setEnvVariable(link, 'VOXCORE_WORKERS', '5'));
    expect(readFileSync(file, 'utf8')).toBe(`VOXCORE_WORKERS=5\n${secretLines}`);
  });

  it('stores a hostile value literally: nothing in it is run by the shell or read by awk', async () => {
    const file = envFile(`VOXCORE_WORKERS=4\n${secretLines}`);
    const hostile = `$(touch ${file}.pwned) \`id\` '"; rm -rf x; \\n \\\\ & | > é ${'${HOME}'}`;
    const result = await local.run(setEnvVariable(file, 'VOXCORE_WORKERS', hostile));
    expect(result.exitCode).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe(`VOXCORE_WORKERS=${hostile}\n${secretLines}`);
    expect(() => statSync(`${file}.pwned`)).toThrow();
  });

  it('refuses a multi-line value and a name that is not a variable', () => {
    expect(() => setEnvVariable('/e', 'VOXCORE_WORKERS', '4\nVOXCORE_API_SECRET=x')).toThrow(/one line/);
    expect(() => setEnvVariable('/e', 'A=B', '4')).toThrow(/not an environment variable name/);
  });
});
