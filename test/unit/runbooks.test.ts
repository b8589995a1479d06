import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseArgs } from '../../src/cli/args.js';
import { jenkinsCommands, runbookCommands } from '../runbook-commands.js';

describe('runbooks and the Jenkinsfile against the CLI', () => {
  it('finds the runbooks commands', () => {
    const commands = runbookCommands();
    expect(commands.length).toBeGreaterThan(20);
    for (const file of readdirSync('runbooks').filter((f) => f.endsWith('.md') && f !== 'README.md')) {
      expect(commands.some((c) => c.file === file), `${file} has no voxops command`).toBe(true);
    }
  });

  it('every runbook command parses', async () => {
    for (const { file, argv } of runbookCommands()) {
      await expect(parseArgs(argv), `${file}: voxops ${argv.join(' ')}`).resolves.toBeDefined();
    }
  });

  it('every Jenkinsfile command parses, for every ACTION', async () => {
    const commands = jenkinsCommands();
    // config check, plan, run (one host group of a parallel split, or the whole role), health
    expect(commands.length).toBe(3 * 4);
    for (const { action, argv } of commands) {
      await expect(parseArgs(argv), `${action}: voxops ${argv.join(' ')}`).resolves.toBeDefined();
    }
  });
});
