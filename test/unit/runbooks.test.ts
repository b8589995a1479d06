import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseArgs } from '../../src/cli/args.js';
import { jenkinsCommands, runbookBlocks, runbookCommands } from '../runbook-commands.js';

/** Commands that change something on a host (a lock included); the rest only read. */
const changes = (argv: string[]) =>
  ['deploy', 'rollback', 'restart', 'scale', 'ingress'].includes(argv[0]!) || (argv[0] === 'lock' && argv[1] === 'release');
const dryRun = (argv: string[]) => argv.includes('--dry-run');
/** the plan of a change is the same command with --dry-run; --report only matters when it runs */
const planOf = (argv: string[]) => {
  const out = argv.filter((a, i) => a !== '--report' && argv[i - 1] !== '--report' && a !== '--dry-run');
  return [...out, '--dry-run'].join(' ');
};

describe('runbooks and the Jenkinsfile against the CLI', () => {
  it('finds the runbooks commands', () => {
    const commands = runbookCommands();
    expect(commands.length).toBeGreaterThan(20);
    for (const file of readdirSync('runbooks').filter((f) => f.endsWith('.md') && f !== 'README.md')) {
      expect(
        commands.some((c) => c.file === file),
        `${file} has no voxops command`,
      ).toBe(true);
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

  it('every runbook block is safe to paste whole: at most one change, after its dry run was shown in an earlier block', () => {
    const blocks = runbookBlocks();
    for (const { file, block, commands } of blocks) {
      const where = `${file}, block ${block}`;
      const live = commands.filter((argv) => changes(argv) && !dryRun(argv));
      expect(live.length, `${where}: more than one change in one block: ${live.map((a) => a.join(' ')).join(' / ')}`).toBeLessThanOrEqual(
        1,
      );
      if (live.length === 0) continue;
      const change = live[0]!;
      // commands that ran before it, in this runbook's earlier blocks
      const earlier = blocks.filter((b) => b.file === file && b.block < block).flatMap((b) => b.commands.map((a) => a.join(' ')));
      if (change[0] === 'lock') {
        expect(earlier, `${where}: look before releasing a lock`).toContain('lock status');
      } else {
        expect(earlier, `${where}: voxops ${change.join(' ')} needs its dry run in an earlier block`).toContain(planOf(change));
      }
      // nothing after the change in the same block may be another dry run that should have come first
      const after = commands.slice(commands.indexOf(change) + 1);
      expect(after.filter(changes), `${where}: a change or plan after the change`).toEqual([]);
    }
  });

  it('rollback.md: the emergency drain flags, and what to do when the rollback fails too (exit 8)', () => {
    const text = readFileSync('runbooks/rollback.md', 'utf8');
    for (const flag of ['--drain-timeout', '--on-drain-timeout skip', '--on-drain-timeout force']) expect(text).toContain(flag);
    expect(text).toMatch(/^## .*exit 8/m);
    expect(readFileSync('runbooks/exit-codes.md', 'utf8')).toContain('rollback.md#');
  });

  it('no runbook points at planning notes or issues instead of a runbook', () => {
    for (const file of readdirSync('runbooks').filter((f) => f.endsWith('.md'))) {
      expect(readFileSync(`runbooks/${file}`, 'utf8'), file).not.toMatch(/\bissue \d+\b|planning note|TODO/i);
    }
  });
});
