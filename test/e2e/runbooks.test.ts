import { describe, expect, it } from 'vitest';
import { jenkinsCommands, runbookCommands } from '../runbook-commands.js';
import { inventoryFile, voxops } from './helpers.js';

/** Commands that change the fleet run with --dry-run; the rest run for real (they only read). */
const mutating = new Set(['deploy', 'rollback', 'restart', 'scale', 'ingress']);

function forLab(argv: string[]): string[] | undefined {
  if (argv[0] === 'lock' && argv[1] === 'release') return undefined; // no dry run: parse-checked in the unit tests
  const out = argv.filter((a, i) => !(a === '--env' || argv[i - 1] === '--env'));
  if (mutating.has(argv[0]!) && !out.includes('--dry-run')) out.push('--dry-run');
  return [...out.map((a) => (a === 'reports/' || a === 'reports' ? '/tmp/voxops-runbook-reports' : a)), '-i', inventoryFile];
}

describe('runbook and Jenkinsfile commands run against the lab', () => {
  it('each is accepted by the CLI and reaches the fleet (exit code is not usage or internal error)', async () => {
    const all = [
      ...runbookCommands().map((c) => ({ where: c.file, argv: c.argv })),
      ...jenkinsCommands().map((c) => ({ where: `Jenkinsfile (${c.action})`, argv: c.argv })),
    ];
    let ran = 0;
    for (const { where, argv } of all) {
      const args = forLab(argv);
      if (!args) continue;
      const run = await voxops(args);
      // 0, or an honest refusal of the lab's current state (7: nothing to roll back to, 10: unhealthy);
      // never 1 (a bug) or 2 (the CLI did not accept the command line)
      expect([1, 2], `${where}: voxops ${args.join(' ')}\n${run.stderr}`).not.toContain(run.code);
      ran += 1;
    }
    expect(ran).toBeGreaterThan(25);
  });
});
