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
      // eleventh channel is refused ("open failed") and reads as a lost host
      const limit = await session.run({ name: 'sshd -T', command: argv('sshd', '-T'), readOnly: true });
      expect(limit.stdout).toMatch(/^maxsessions 10$/m);
      const runs = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          session.run({ name: `sleep ${i}`, command: argv('sh', '-c', 'sleep 0.3; echo "$1"', 'x', String(i)), readOnly: true }),
        ),
      );
      expect(runs.map((r) => r.stdout.trim())).toEqual(Array.from({ length: 30 }, (_, i) => String(i)));
    } finally {
      await session.close();
    }
  });
});
