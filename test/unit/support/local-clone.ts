import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, expect } from 'vitest';
import { runLocal } from '../../../src/exec/local.js';

export interface LocalClone {
  repo: string;
  /** the argv the fake rsync was last run with, one word per line */
  rsyncLog: string;
  commit: string;
}

/**
 * For a describe block: a function that makes a local clone (see localClone), each undone (temp
 * dir removed, PATH restored) after the test that made it, or with 'all' after the whole block
 * (a clone made in beforeAll, shared by its tests: each costs a few real git processes).
 */
export function localClones(scope: 'each' | 'all' = 'each'): (tag: string) => Promise<LocalClone> {
  const cleanup: (() => void)[] = [];
  (scope === 'each' ? afterEach : afterAll)(() => {
    for (const undo of cleanup.splice(0)) undo();
  });
  return (tag) => localClone(tag, cleanup);
}

/**
 * What the rsync fallback needs on this machine: a real local git repo with the tag (what `git
 * archive` reads), and an `rsync` on PATH that records its argv instead of pushing. `cleanup`
 * collects the undo steps (the temp dir, PATH).
 */
async function localClone(tag: string, cleanup: (() => void)[]): Promise<LocalClone> {
  const dir = mkdtempSync(join(tmpdir(), 'voxops-rsync-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const repo = join(dir, 'vox-agents');
  mkdirSync(repo);
  writeFileSync(join(repo, 'VERSION'), `${tag}\n`);
  const git = `git -C '${repo}' -c user.name=t -c user.email=t@example.com -c commit.gpgsign=false -c tag.gpgsign=false`;
  const made = await runLocal(
    `git init -q '${repo}' && ${git} add VERSION && ${git} commit -q -m release && ${git} tag ${tag} && ${git} rev-parse HEAD`,
    undefined,
    20_000,
  );
  expect(made.exitCode, made.stderr).toBe(0);
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  const rsyncLog = join(dir, 'rsync.argv');
  writeFileSync(join(bin, 'rsync'), `#!/bin/sh\nprintf '%s\\n' "$@" > '${rsyncLog}'\necho '>f+++++++++ VERSION'\n`);
  chmodSync(join(bin, 'rsync'), 0o755);
  const path = process.env.PATH;
  process.env.PATH = `${bin}:${path}`;
  cleanup.push(() => (process.env.PATH = path));
  return { repo, rsyncLog, commit: made.stdout.trim() };
}
