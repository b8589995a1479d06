import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Each shell block of each runbook, as the voxops command lines in it (argv after `voxops`), in order. */
export function runbookBlocks(): { file: string; block: number; commands: string[][] }[] {
  const out: { file: string; block: number; commands: string[][] }[] = [];
  for (const file of readdirSync('runbooks').filter((f) => f.endsWith('.md'))) {
    const text = readFileSync(join('runbooks', file), 'utf8');
    [...text.matchAll(/```sh\n([\s\S]*?)```/g)].forEach((block, i) => {
      const commands = block[1]!
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l.startsWith('voxops '))
        .map((l) => l.split(/\s+/).slice(1));
      out.push({ file, block: i + 1, commands });
    });
  }
  return out;
}

/** Every `voxops …` line inside a shell block of a runbook. */
export function runbookCommands(): { file: string; argv: string[] }[] {
  return runbookBlocks().flatMap(({ file, commands }) => commands.map((argv) => ({ file, argv })));
}

/** What scripts/jenkins-voxops.sh would exec for one mode and environment: voxops' argv, or the refusal. */
export function jenkinsArgv(mode: string, env: Record<string, string>): { code: number; argv: string[]; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'voxops-stub-'));
  try {
    // stands in for bin/voxops: prints the argv it got, one NUL after each word
    const stub = join(dir, 'voxops');
    writeFileSync(stub, '#!/bin/sh\nprintf \'%s\\0\' "$@"\n', { mode: 0o755 });
    const run = spawnSync('scripts/jenkins-voxops.sh', [mode], {
      env: { PATH: process.env.PATH, ...env, VOXOPS_BIN: stub },
      encoding: 'utf8',
    });
    return { code: run.status ?? -1, argv: run.status === 0 ? run.stdout.split('\0').slice(0, -1) : [], stderr: run.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The Jenkinsfile's voxops invocations (each through scripts/jenkins-voxops.sh), as the argv voxops gets, for each ACTION. */
export function jenkinsCommands(): { action: string; argv: string[] }[] {
  const text = readFileSync('Jenkinsfile', 'utf8');
  const modes = [...new Set([...text.matchAll(/sh 'exec scripts\/jenkins-voxops\.sh ([a-z-]+)'/g)].map((m) => m[1]!))];
  const out: { action: string; argv: string[] }[] = [];
  for (const action of ['deploy', 'rollback', 'restart']) {
    const env = {
      ACTION: action,
      ROLE: 'fleet',
      TAG: action === 'restart' ? '' : 'v1.5.0',
      ENV: 'staging',
      FLEET_HOSTS: '',
      REPORTS: 'reports',
    };
    for (const mode of modes) {
      const run = jenkinsArgv(mode, env);
      if (run.code !== 0) throw new Error(`scripts/jenkins-voxops.sh ${mode} (ACTION=${action}): exit ${run.code}: ${run.stderr}`);
      out.push({ action, argv: run.argv });
    }
  }
  return out;
}
