import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { main } from '../../src/cli/main.js';
import type { Wiring } from '../../src/cli/wiring.js';
import { Sim } from './support/sim.js';
import { printFailure } from '../../src/cli/failure.js';
import { noColour } from '../../src/cli/colour.js';
import { HealthGateError, LockHeldError } from '../../src/errors.js';

/*
 * main() as Jenkins and a terminal meet it: the version, errors as JSON, the SSH credentials check
 * before any connection, colour only for a person. The SSH tests use the real wiring (no executor
 * is injected): every host is 127.0.0.1 port 1, so a check that failed to stop the run would be
 * refused at once, never reach another machine.
 */

const dir = mkdtempSync(join(tmpdir(), 'voxops-main-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function inventoryFile(name: string, ssh: Record<string, unknown> = {}): string {
  const sim = new Sim();
  sim.addFleetHost('fleet1');
  sim.addFleetHost('fleet2');
  sim.addServiceHost('api', 'api1');
  const doc = sim.inventory() as {
    ssh: Record<string, unknown>;
    environments: { test: { hosts: Record<string, { address: string; port?: number }[]> } };
  };
  for (const hosts of Object.values(doc.environments.test.hosts))
    for (const host of hosts) Object.assign(host, { address: '127.0.0.1', port: 1 });
  doc.ssh = { ...doc.ssh, connectTimeoutSeconds: 1, ...ssh };
  const file = join(dir, name);
  writeFileSync(file, stringify(doc));
  return file;
}

interface Ran {
  exitCode: number;
  stdout: string;
  stderr: string;
}

async function run(args: string[], env: NodeJS.ProcessEnv = {}, wiring: Partial<Wiring> = {}): Promise<Ran> {
  let stdout = '';
  let stderr = '';
  const exitCode = await main(
    args,
    { USER: 'tester', ...env },
    {
      stdout: (t) => (stdout += t),
      stderr: (t) => (stderr += t),
      terminal: { stdout: false, stderr: false },
      ...wiring,
    },
  );
  return { exitCode, stdout, stderr };
}

describe('--version and --help', () => {
  it("prints package.json's version", async () => {
    const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    expect(await run(['--version'])).toEqual({ exitCode: 0, stdout: `${version}\n`, stderr: '' });
  });

  it('-h is --help, with the exit codes and examples under it', async () => {
    const long = await run(['--help']);
    expect(await run(['-h'])).toEqual(long);
    expect(long.exitCode).toBe(0);
    expect(long.stdout).toMatch(/^Exit codes:\n {2}0 {4}done\n/m);
    expect(long.stdout).toMatch(/^ {2}130 {2}interrupted/m);
    expect(long.stdout).toContain('voxops deploy fleet --tag v1.5.0 --dry-run');
  });
});

describe('with --json, the error is JSON too', () => {
  const inventory = inventoryFile('json.yaml', { identityFile: '/dev/null' });

  it('a usage error: one object on stderr, nothing on stdout (exit 2)', async () => {
    const r = await run(['rollback', 'fleet', '--to', '', '--json']);
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(JSON.parse(r.stderr)).toEqual({
      exitCode: 2,
      message: expect.stringMatching(/^--to is empty/),
      next: expect.any(String),
      problems: [],
    });
  });

  it('an inventory error keeps its problem list', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'defaultEnvironment: test\nroles: {}\nenvironments: {test: {hosts: {}}}\ncolour: red\n');
    const r = await run(['status', '--json', '-i', bad]);
    expect(r.exitCode).toBe(2);
    const error = JSON.parse(r.stderr) as { problems: string[] };
    expect(error.problems.some((p) => p.includes('colour'))).toBe(true);
  });

  it('an internal error says so (exit 1)', async () => {
    const r = await run(
      ['status', '--json', '-i', inventory],
      {},
      {
        executor: () => {
          throw new Error('boom');
        },
      },
    );
    expect(r.exitCode).toBe(1);
    expect(JSON.parse(r.stderr)).toEqual({
      exitCode: 1,
      message: 'internal error: boom',
      next: 're-run with --verbose and report it',
      problems: [],
    });
  });

  it('asked for before the arguments failed to parse', async () => {
    const r = await run(['deplyo', '--tag', 'v1.5.0', '--json']);
    expect(JSON.parse(r.stderr)).toMatchObject({
      exitCode: 2,
      message: 'unknown command deplyo: did you mean deploy?',
      next: 'voxops deploy --help',
    });
  });
});

describe('SSH credentials, checked once before connecting', () => {
  const noKey = inventoryFile('no-key.yaml');

  it('no identityFile and no agent: exit 2, every host named once, for read-only commands too', async () => {
    for (const [args, hosts] of [
      [['status'], 'api1, fleet1, fleet2'],
      [['deploy', 'fleet', '--tag', 'v1.5.0'], 'fleet1, fleet2'],
      [['lock', 'status'], 'api1, fleet1, fleet2'],
    ] as const) {
      const r = await run([...args, '-i', noKey]);
      expect(r.exitCode, r.stderr).toBe(2);
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(
        /^voxops: no SSH credentials for .*: ssh\.identityFile is not set \(environment test\) and SSH_AUTH_SOCK is empty\. Next: set ssh\.identityFile in /,
      );
      expect(lines[0]).toContain(`for ${hosts}:`);
      expect(lines[0]!.match(/fleet1/g)).toHaveLength(1);
    }
  });

  it('names only the hosts the command would connect to', async () => {
    const r = await run(['status', 'fleet', '--hosts', 'fleet2', '-i', noKey]);
    expect(r.stderr).toMatch(/^voxops: no SSH credentials for fleet2:/);
  });

  it('an agent socket that is gone, or a key file that cannot be read, is the same kind of problem', async () => {
    expect((await run(['status', '-i', noKey], { SSH_AUTH_SOCK: join(dir, 'no-agent.sock') })).stderr).toMatch(/no-agent\.sock is gone/);
    const missingKey = inventoryFile('missing-key.yaml', { identityFile: join(dir, 'no_such_key') });
    const r = await run(['status', '-i', missingKey]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/^voxops: cannot read the SSH key for .*no_such_key: ENOENT/);
  });

  it('config check connects to nothing and needs no credentials', async () => {
    expect((await run(['config', 'check', '-i', noKey])).exitCode).toBe(0);
  });

  it('a refused deploy still writes the report Jenkins reads', async () => {
    const reports = join(dir, 'reports');
    const r = await run(['deploy', 'fleet', '--tag', 'v1.5.0', '--report', reports, '-i', noKey]);
    expect(r.exitCode).toBe(2);
    expect(existsSync(join(reports, 'voxops-junit.xml'))).toBe(true);
    expect(readFileSync(join(reports, 'voxops-junit.xml'), 'utf8')).toContain('no SSH credentials');
  });
});

describe('colour', () => {
  const inventory = inventoryFile('colour.yaml');
  const red = '\u001b[31m';

  it('paints the error red for a person at a terminal', async () => {
    const r = await run(['status', '-i', inventory], {}, { terminal: { stdout: true, stderr: true } });
    expect(r.stderr.startsWith(`${red}voxops: no SSH credentials`)).toBe(true);
  });

  it('never in Jenkins, with NO_COLOR, with --json or into a pipe', async () => {
    const tty = { terminal: { stdout: true, stderr: true } };
    for (const [env, args, wiring] of [
      [{ JENKINS_URL: 'https://ci' }, [], tty],
      [{ CI: 'true' }, [], tty],
      [{ NO_COLOR: '1' }, [], tty],
      [{ TERM: 'dumb' }, [], tty],
      [{}, ['--json'], tty],
      [{}, [], {}],
    ] as const) {
      const r = await run(['status', '-i', inventory, ...args], env, wiring);
      expect(r.exitCode).toBe(2);
      expect(r.stderr, JSON.stringify(env)).not.toContain('\u001b[');
    }
  });
});

describe('every error ends with a next step', () => {
  it.each([
    [new LockHeldError('fleet1', undefined), 'Next: voxops lock status shows who holds it and when it frees itself'],
    [new HealthGateError('fleet1: worker 2 failed its gate', { host: 'fleet1' }), 'Next: voxops status, then voxops logs ROLE --host H'],
    [new LockHeldError('x', undefined, { next: 'its own' }), 'Next: its own'],
    [new Error('a bug'), 'Next: re-run with --verbose and report it'],
  ])('%s', (error, next) => {
    let text = '';
    printFailure((t) => (text += t), error, { verbose: false, json: false, paint: noColour });
    expect(text).toContain(next);
  });
});
