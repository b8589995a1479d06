import { describe, expect, it } from 'vitest';
import { parseArgs } from '../../src/cli/args.js';

describe('CLI arguments', () => {
  it('parses a rolling fleet deploy with every option', async () => {
    expect(
      await parseArgs([
        'deploy',
        'fleet',
        '--rolling',
        '--tag',
        'v1.5.0',
        '--hosts',
        'fleet1,fleet2',
        '--parallel',
        '2',
        '--batch',
        '2',
        '--on-drain-timeout',
        'skip',
        '--drain-timeout',
        '30',
        '--dry-run',
        '-i',
        'inv.yaml',
        '-e',
        'lab',
        '--json',
      ]),
    ).toEqual({
      command: 'deploy',
      role: 'fleet',
      tag: 'v1.5.0',
      hosts: ['fleet1', 'fleet2'],
      parallel: 2,
      batch: 2,
      drainTimeoutSeconds: 30,
      onDrainTimeout: 'skip',
      source: 'auto',
      allowUnhealthy: false,
      inventory: 'inv.yaml',
      env: 'lab',
      json: true,
      verbose: false,
      dryRun: true,
      acceptNewHostKeys: false,
    });
  });

  it('parses the call-aware schedule flags and --parallel auto', async () => {
    expect(
      await parseArgs([
        'deploy',
        'fleet',
        '--tag',
        'v1.5.0',
        '--parallel',
        'auto',
        '--schedule',
        'one-at-a-time',
        '--min-free',
        '25%',
        '--max-call-age',
        '600',
      ]),
    ).toMatchObject({
      parallel: 'auto',
      schedule: 'one-at-a-time',
      minFree: '25%',
      maxCallAgeSeconds: 600,
    });
    await expect(parseArgs(['deploy', 'fleet', '--tag', 'v1.5.0', '--min-free', 'half'])).rejects.toThrow(/--min-free half/);
    await expect(parseArgs(['deploy', 'fleet', '--tag', 'v1.5.0', '--parallel', 'many'])).rejects.toThrow(/--parallel/);
    await expect(parseArgs(['deploy', 'fleet', '--tag', 'v1.5.0', '--schedule', 'all-at-once'])).rejects.toThrow(/Invalid values/);
  });

  it('parses config check', async () => {
    expect(await parseArgs(['config', 'check'])).toMatchObject({ command: 'config-check', json: false });
  });

  it('refuses unknown options, roles, missing tags and bad numbers', async () => {
    await expect(parseArgs(['deploy', 'fleet', '--tag', 'v1.5.0', '--colour'])).rejects.toThrow(/Unknown argument/);
    await expect(parseArgs(['deploy', 'database', '--tag', 'v1.5.0'])).rejects.toThrow(/Invalid values/);
    await expect(parseArgs(['deploy', 'fleet'])).rejects.toThrow(/deploy fleet needs --tag/);
    await expect(parseArgs(['deploy', 'fleet', '--tag', 'v1.5.0', '--batch', '0'])).rejects.toThrow(/--batch/);
    await expect(parseArgs([])).rejects.toThrow(/name a command/);
  });
});

describe('on-call commands', () => {
  it('parses rollback, restart, status, health, history, lock and logs', async () => {
    expect(await parseArgs(['rollback', '--to', 'v1.4.2'])).toMatchObject({ command: 'rollback', roles: [], to: 'v1.4.2', force: false });
    expect(await parseArgs(['rollback', 'fleet'])).toMatchObject({ command: 'rollback', roles: ['fleet'] });
    expect(await parseArgs(['rollback', 'fleet', '--to', 'v1.6.0', '--force'])).toMatchObject({
      roles: ['fleet'],
      to: 'v1.6.0',
      force: true,
    });
    expect(await parseArgs(['restart', 'fleet', '--host', 'fleet1', '--worker', '2'])).toMatchObject({
      command: 'restart',
      role: 'fleet',
      hosts: ['fleet1'],
      worker: 2,
    });
    expect(await parseArgs(['status', '--json'])).toMatchObject({ command: 'status', roles: [], json: true });
    expect(await parseArgs(['health', 'fleet'])).toMatchObject({ command: 'health', roles: ['fleet'] });
    expect(await parseArgs(['history', '--host', 'fleet1', '--json'])).toMatchObject({ command: 'history', hosts: ['fleet1'], lines: 20 });
    expect(await parseArgs(['lock', 'status'])).toMatchObject({ command: 'lock-status' });
    expect(await parseArgs(['lock', 'release', '--force'])).toMatchObject({ command: 'lock-release', force: true });
    expect(await parseArgs(['logs', 'fleet', '--host', 'fleet1', '--worker', '3', '--lines', '50'])).toMatchObject({
      command: 'logs',
      host: 'fleet1',
      worker: 3,
      lines: 50,
    });
  });

  it('refuses what on-call should not be able to mistype', async () => {
    await expect(parseArgs(['restart', 'fleet', '--worker', '0'])).rejects.toThrow(/--worker/);
    await expect(parseArgs(['lock', 'steal'])).rejects.toThrow(/unknown command lock steal/);
    await expect(parseArgs(['logs', 'fleet', '--worker', '1'])).rejects.toThrow(/Missing required argument: host/);
  });
});

describe('role, scale and ingress commands', () => {
  it('parses deploy of each role, scale and the ingress changes', async () => {
    expect(await parseArgs(['deploy', 'api', '--tag', 'v1.5.0', '--source', 'rsync'])).toMatchObject({
      command: 'deploy',
      role: 'api',
      tag: 'v1.5.0',
      source: 'rsync',
    });
    expect(await parseArgs(['deploy', 'all', '--tag', 'v1.5.0'])).toMatchObject({ command: 'deploy', role: 'all', source: 'auto' });
    expect(await parseArgs(['deploy', 'ingress'])).toMatchObject({ command: 'deploy', role: 'ingress' });
    expect(await parseArgs(['scale', 'fleet', '--host', 'fleet2', '--workers', '6'])).toMatchObject({
      command: 'scale',
      role: 'fleet',
      host: 'fleet2',
      workers: 6,
    });
    expect(await parseArgs(['ingress', 'add-fleet', 'http://10.0.0.13:80'])).toMatchObject({
      command: 'ingress-add-fleet',
      url: 'http://10.0.0.13:80',
    });
    expect(await parseArgs(['ingress', 'remove-fleet', 'http://10.0.0.13:80', '--drain-timeout', '60'])).toMatchObject({
      command: 'ingress-remove-fleet',
      drainTimeoutSeconds: 60,
    });
  });

  it('refuses a deploy without a tag (but not of ingress), a bad source and a zero worker count', async () => {
    await expect(parseArgs(['deploy', 'dialler'])).rejects.toThrow(/deploy dialler needs --tag/);
    await expect(parseArgs(['deploy', 'api', '--tag', 'v1.5.0', '--source', 'ftp'])).rejects.toThrow(/Invalid values/);
    await expect(parseArgs(['scale', 'fleet', '--host', 'fleet1', '--workers', '0'])).rejects.toThrow(/--workers/);
    await expect(parseArgs(['scale', 'fleet', '--workers', '3'])).rejects.toThrow(/Missing required argument: host/);
    await expect(parseArgs(['ingress', 'steal-fleet', 'http://x'])).rejects.toThrow(/unknown command ingress steal-fleet/);
  });
});

describe('help, version and a mistyped command', () => {
  it('-h is --help; --version prints the version main passes in', async () => {
    expect(await parseArgs(['-h'])).toEqual(await parseArgs(['--help']));
    expect(await parseArgs(['--version'], { version: '1.2.3' })).toEqual({ command: 'help', output: '1.2.3' });
    await expect(parseArgs(['--version'])).rejects.toThrow();
  });

  it('marks --tag required on deploy, except for ingress, and keeps the check that names the role', async () => {
    const help = await parseArgs(['deploy', '--help']);
    expect('output' in help && help.output).toMatch(/^voxops deploy <role> --tag <tag> \[options\]/);
    expect('output' in help && help.output).toMatch(/--tag\s[^[]*\[required, except for\s+deploy ingress\]/);
    await expect(parseArgs(['deploy', 'console'])).rejects.toThrow(/^deploy console needs --tag$/);
  });

  it('puts the exit codes and examples under the top-level help only', async () => {
    const top = await parseArgs(['--help']);
    const deploy = await parseArgs(['deploy', '--help']);
    expect('output' in top && top.output).toMatch(/\n\nExamples:\n[\s\S]*\n\nExit codes:\n {2}0 {4}done\n/);
    expect('output' in deploy && deploy.output).not.toContain('Exit codes:');
  });

  it('suggests the command meant, without calling its flags unknown', async () => {
    const error = await parseArgs(['deplyo', '--tag', 'v1.5.0']).catch((e: Error & { next?: string; exitCode?: number }) => e);
    expect(error).toMatchObject({ message: 'unknown command deplyo: did you mean deploy?', next: 'voxops deploy --help', exitCode: 2 });
    await expect(parseArgs(['-i', 'inv.yaml', 'stauts'])).rejects.toThrow(/^unknown command stauts: did you mean status\?$/);
    await expect(parseArgs(['lock', 'relase'])).rejects.toThrow(/^unknown command lock relase: did you mean lock release\?$/);
    await expect(parseArgs(['frobnicate'])).rejects.toThrow(/^unknown command frobnicate$/);
  });
});

describe('each option only where it does something', () => {
  const offered: [string[], string][] = [
    [['deploy', 'fleet', '--tag', 'v1.5.0'], '--dry-run'],
    [['rollback', 'fleet'], '--dry-run'],
    [['restart', 'fleet'], '--dry-run'],
    [['scale', 'fleet', '--host', 'fleet1', '--workers', '3'], '--dry-run'],
    [['ingress', 'add-fleet', 'http://10.0.0.13:80'], '--dry-run'],
    [['status'], '--json'],
    [['health'], '--json'],
    [['history'], '--json'],
    [['lock', 'status'], '--json'],
    [['lock', 'release'], '--json'],
    [['config', 'check'], '--json'],
    [['logs', 'fleet', '--host', 'fleet1'], '--accept-new-host-keys'],
  ];
  const refused: [string[], string, RegExp][] = [
    [['status'], '--dry-run', /^Unknown argument for status: --dry-run \(--dry-run is for deploy, rollback, restart, scale and ingress\)$/],
    [['health'], '--dry-run', /for health: --dry-run/],
    [['history'], '--dry-run', /for history: --dry-run/],
    [['lock', 'release'], '--dry-run', /for lock release: --dry-run/],
    [['logs', 'fleet', '--host', 'fleet1'], '--json', /for logs: --json \(--json is for .* and config check\)$/],
    [['config', 'check'], '--dry-run', /for config check: --dry-run/],
    [['config', 'check'], '--accept-new-host-keys', /for config check: --accept-new-host-keys/],
    [['lock', 'status'], '--force', /for lock status: --force$/],
    [['restart', 'fleet'], '--source', /for restart: --source$/],
    [['ingress', 'add-fleet', 'http://10.0.0.13:80'], '--drain-timeout', /for ingress add-fleet: --drain-timeout$/],
  ];

  it.each(offered)('%j takes %s', async (argv, flag) => {
    await expect(parseArgs([...argv, flag])).resolves.toBeDefined();
  });

  it.each(refused)('%j refuses %s', async (argv, flag, message) => {
    await expect(parseArgs([...argv, flag, ...(flag === '--drain-timeout' || flag === '--source' ? ['1'] : [])])).rejects.toThrow(message);
  });

  it('still reads them before the command name', async () => {
    expect(await parseArgs(['--json', '--dry-run', 'deploy', 'fleet', '--tag', 'v1.5.0'])).toMatchObject({
      command: 'deploy',
      json: true,
      dryRun: true,
    });
    await expect(parseArgs(['--dry-run', 'status'])).rejects.toThrow(/for status: --dry-run/);
  });
});

describe('an empty value is refused, never read as "not given"', () => {
  it('--to "" does not mean last-known-good (exit 2)', async () => {
    for (const argv of [
      ['rollback', 'fleet', '--to', ''],
      ['rollback', 'fleet', '--to'],
      ['rollback', '--to', '  '],
    ]) {
      await expect(parseArgs(argv)).rejects.toMatchObject({ exitCode: 2, message: expect.stringMatching(/^--to is empty: name the tag/) });
    }
  });

  it('nor an empty tag, host list, inventory, environment, report directory or URL', async () => {
    for (const [argv, flag] of [
      [['deploy', 'fleet', '--tag', ''], '--tag'],
      [['deploy', 'fleet', '--tag', 'v1.5.0', '--hosts', ''], '--hosts'],
      [['status', '--host', ''], '--host'],
      [['status', '--hosts', ''], '--hosts'],
      [['status', '-i', ''], '--inventory'],
      [['status', '--env', ''], '--env'],
      [['deploy', 'fleet', '--tag', 'v1.5.0', '--report', ''], '--report'],
      [['ingress', 'add-fleet', ''], 'the URL'],
    ] as const) {
      await expect(parseArgs(argv), argv.join(' ')).rejects.toMatchObject({ exitCode: 2, message: `${flag} is empty` });
    }
  });
});
