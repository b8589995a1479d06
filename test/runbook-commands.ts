import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Every `voxops …` line inside a shell block of a runbook. */
export function runbookCommands(): { file: string; argv: string[] }[] {
  const out: { file: string; argv: string[] }[] = [];
  for (const file of readdirSync('runbooks').filter((f) => f.endsWith('.md'))) {
    const text = readFileSync(join('runbooks', file), 'utf8');
    for (const block of text.matchAll(/```sh\n([\s\S]*?)```/g)) {
      for (const line of block[1]!.split('\n').map((l) => l.trim())) {
        if (line.startsWith('voxops ')) out.push({ file, argv: line.split(/\s+/).slice(1) });
      }
    }
  }
  return out;
}

/** The Jenkinsfile's voxops invocations, expanded for each ACTION the way the pipeline runs them. */
export function jenkinsCommands(): { action: string; argv: string[] }[] {
  const text = readFileSync('Jenkinsfile', 'utf8');
  const lines = [...text.matchAll(/sh '(bin\/voxops [^']*)'/g)].map((m) => m[1]!);
  const out: { action: string; argv: string[] }[] = [];
  for (const action of ['deploy', 'rollback', 'restart']) {
    const env = { ...process.env, ACTION: action, ROLE: 'fleet', TAG: 'v1.5.0', ENV: 'staging', FLEET_HOSTS: '' };
    const flags = execFileSync('scripts/jenkins-args.sh', { env, encoding: 'utf8' }).trim().split(/\s+/).filter(Boolean);
    for (const line of lines) {
      const expanded = line
        .replace('$(scripts/jenkins-args.sh)', flags.join(' '))
        .replace(/"\$ACTION"/g, action)
        .replace(/"\$ROLE"/g, 'fleet')
        .replace(/"\$ENV"/g, 'staging')
        .replace(/"\$REPORTS"/g, 'reports');
      out.push({ action, argv: expanded.split(/\s+/).slice(1) });
    }
  }
  return out;
}

