import { describe, expect, it } from 'vitest';
import { loadInventory } from '../../src/config/inventory.js';
import { argv } from '../../src/exec/command.js';
import { SshExecutor } from '../../src/exec/ssh.js';
import { inventoryFile } from './helpers.js';

describe('one SSH connection, many commands at once (in the lab)', () => {
  it('runs 30 commands at once against a host that opens at most 10 channels per connection, none refused', async () => {
    const inventory = loadInventory(inventoryFile);
    const host = inventory.hosts.find((h) => h.role === 'fleet')!;
    const session = await new SshExecutor({ ssh: inventory.ssh }).connect(host);
    try {
      // the lab host keeps OpenSSH's default, as production does: without a limit in voxops, the
      // eleventh channel is refused ("open failed"); sshd also frees a closed slot a moment late,
      // so voxops asks again when an open is refused, which ran nothing
      const limit = await session.run({ name: 'sshd -T', command: argv('sshd', '-T'), readOnly: true });
      expect(limit.stdout).toMatch(/^maxsessions 10$/m);
      const mark = await session.run({ name: 'mktemp', command: argv('mktemp'), readOnly: true });
      const log = mark.stdout.trim();
      // each command marks its start and end in one file: the marks give how many ran at once
      const script = 'echo + >> "$2"; sleep 0.3; echo - >> "$2"; echo "$1"';
      const runs = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          session.run({ name: `sleep ${i}`, command: argv('sh', '-c', script, 'x', String(i), log), readOnly: true }),
        ),
      );
      expect(runs.map((r) => r.stdout.trim())).toEqual(Array.from({ length: 30 }, (_, i) => String(i)));
      const marks = await session.run({ name: 'marks', command: argv('sh', '-c', 'cat "$1"; rm -f "$1"', 'x', log), readOnly: true });
      let running = 0;
      let most = 0;
      for (const m of marks.stdout.split('\n').filter(Boolean)) {
        running += m === '+' ? 1 : -1;
        most = Math.max(most, running);
      }
      console.log(`30 commands on one connection: at most ${most} ran at once`);
      // below sshd's 10, so one is always free for a lease renewal; above 1, so it is not serial
      expect(most).toBeGreaterThan(1);
      expect(most).toBeLessThanOrEqual(8);
    } finally {
      await session.close();
    }
  });
});
