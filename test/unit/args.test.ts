import { describe, expect, it } from 'vitest';
import { parseArgs } from '../../src/cli/args.js';

describe('CLI arguments', () => {
  it('parses a rolling fleet deploy with every option', async () => {
    expect(
      await parseArgs(['deploy', 'fleet', '--rolling', '--tag', 'v1.5.0', '--hosts', 'fleet1,fleet2', '--parallel', '2', '--batch', '2', '--on-drain-timeout', 'skip', '--drain-timeout', '30', '--dry-run', '-i', 'inv.yaml', '-e', 'lab', '--json']),
    ).toEqual({
      command: 'deploy',
      role: 'fleet',
      tag: 'v1.5.0',
      hosts: ['fleet1', 'fleet2'],
      parallel: 2,
      batch: 2,
      drainTimeout: 30,
      onDrainTimeout: 'skip',
      allowUnhealthy: false,
      inventory: 'inv.yaml',
      env: 'lab',
      json: true,
      verbose: false,
      dryRun: true,
      acceptNewHostKeys: false,
    });
  });

  it('parses config check', async () => {
    expect(await parseArgs(['config', 'check'])).toMatchObject({ command: 'config-check', json: false });
  });

  it('refuses unknown options, roles, missing tags and bad numbers', async () => {
    await expect(parseArgs(['deploy', 'fleet', '--tag', 'v1.5.0', '--colour'])).rejects.toThrow(/Unknown argument/);
    await expect(parseArgs(['deploy', 'database', '--tag', 'v1.5.0'])).rejects.toThrow(/Invalid values/);
    await expect(parseArgs(['deploy', 'fleet'])).rejects.toThrow(/Missing required argument: tag/);
    await expect(parseArgs(['deploy', 'fleet', '--tag', 'v1.5.0', '--batch', '0'])).rejects.toThrow(/--batch/);
    await expect(parseArgs([])).rejects.toThrow(/name a command/);
  });
});
