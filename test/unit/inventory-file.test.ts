import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadInventory, MAX_INVENTORY_BYTES } from '../../src/config/inventory.js';
import { ConfigError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'voxops-inventory-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('loadInventory reads only a regular file of a bounded size', () => {
  it('refuses a device, a directory and a FIFO at once (/dev/zero would be read forever)', () => {
    const fifo = join(dir, 'fifo.yaml');
    execFileSync('mkfifo', [fifo]);
    for (const file of ['/dev/zero', '/dev/null', dir, fifo]) {
      expect(() => loadInventory(file), file).toThrow(ConfigError);
      expect(() => loadInventory(file), file).toThrow(/is not a regular file/);
    }
  });

  it('refuses a file larger than 4 MiB', () => {
    expect(MAX_INVENTORY_BYTES).toBe(4 * 1024 * 1024);
    const big = join(dir, 'big.yaml');
    writeFileSync(big, '# padding\n'.repeat(MAX_INVENTORY_BYTES / 10 + 1));
    expect(() => loadInventory(big)).toThrow(ConfigError);
    expect(() => loadInventory(big)).toThrow(/is larger than 4 MiB/);
  });

  it('reads a regular file, through a symlink too', () => {
    const link = join(dir, 'link.yaml');
    symlinkSync(resolve('examples/voxops.yaml'), link);
    expect(loadInventory(link).environment).toBe('staging');
  });
});
