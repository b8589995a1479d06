// Mount bookkeeping from /proc/self/mountinfo, so teardown unmounts exactly what lies under the
// lab's own directories and nothing else.
import { readFileSync } from 'node:fs';
import { run } from './sh.js';

export interface MountEntry {
  target: string;
  fstype: string;
  source: string;
}

const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

export function listMounts(): MountEntry[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const parts = line.split(' ');
      const sep = parts.indexOf('-');
      return { target: unescape(parts[4] ?? ''), fstype: parts[sep + 1] ?? '', source: unescape(parts[sep + 2] ?? '') };
    });
}

export function mountsUnder(dir: string): MountEntry[] {
  const d = dir.replace(/\/+$/, '');
  return listMounts().filter((m) => m.target === d || m.target.startsWith(`${d}/`));
}

export function isMountPoint(dir: string): boolean {
  const d = dir.replace(/\/+$/, '');
  return listMounts().some((m) => m.target === d);
}

/** Unmount everything at or below `dir`, deepest first. Bounded: at most 5 passes. */
export async function unmountUnder(dir: string): Promise<void> {
  for (let pass = 0; pass < 5; pass++) {
    const ms = mountsUnder(dir).sort((a, b) => b.target.length - a.target.length);
    if (ms.length === 0) return;
    for (const m of ms) {
      const r = await run('umount', [m.target], { allowFail: true, timeoutMs: 20_000 });
      if (r.code !== 0 && pass >= 2) await run('umount', ['-l', m.target], { allowFail: true, timeoutMs: 20_000 });
    }
  }
  const left = mountsUnder(dir);
  if (left.length) throw new Error(`could not unmount: ${left.map((m) => m.target).join(', ')}`);
}
