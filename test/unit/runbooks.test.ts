import { execFileSync } from 'node:child_process';
import { readdirSync, realpathSync } from 'node:fs';
import { dirname } from 'node:path';
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
    // config check, plan, deploy (one host group of a parallel split, or the whole role), health
    expect(commands.length).toBe(3 * 5);
    for (const { action, argv } of commands) {
      await expect(parseArgs(argv), `${action}: voxops ${argv.join(' ')}`).resolves.toBeDefined();
    }
  });

  it('the Jenkinsfile is valid Groovy and declares the pipeline we rely on', () => {
    const java = realpathSync('/usr/bin/java');
    const json = execFileSync('groovy', ['test/jenkins/check-jenkinsfile.groovy', 'Jenkinsfile'], {
      env: { ...process.env, JAVA_HOME: dirname(dirname(java)) },
      encoding: 'utf8',
    });
    interface Call { name: string; args: unknown[]; children: Call[] }
    const [pipeline] = JSON.parse(json) as Call[];
    expect(pipeline!.name).toBe('pipeline');
    const section = (name: string) => pipeline!.children.find((c) => c.name === name)!;
    const params = section('parameters').children.map((c) => (c.args[0] as { name: string }).name);
    expect(params).toEqual(expect.arrayContaining(['ACTION', 'ROLE', 'TAG', 'ENV']));
    expect(section('options').children.map((c) => c.name)).toEqual(
      expect.arrayContaining(['timestamps', 'ansiColor', 'buildDiscarder', 'timeout', 'disableConcurrentBuilds']),
    );
    const stages = section('stages').children.map((s) => s.args[0]);
    expect(stages).toEqual(['checkout', 'npm ci', 'lint and test', 'plan', 'approval', 'deploy', 'verify']);
    const flat = (calls: Call[]): Call[] => calls.flatMap((c) => [c, ...flat(c.children)]);
    const deploy = section('stages').children.find((s) => s.args[0] === 'deploy')!;
    const lock = flat(deploy.children).find((c) => c.name === 'lock')!;
    expect(lock.args[0]).toEqual({ resource: 'voxops-production' });
    expect(flat(lock.children).some((c) => c.name === 'sshagent')).toBe(true);
    const approval = section('stages').children.find((s) => s.args[0] === 'approval')!;
    expect(flat(approval.children).map((c) => c.name)).toEqual(expect.arrayContaining(['when', 'expression', 'input']));
    const post = flat(section('post').children).map((c) => c.name);
    expect(post).toEqual(expect.arrayContaining(['always', 'junit', 'archiveArtifacts', 'failure']));
    expect(flat(lock.children).some((c) => c.name === 'parallel')).toBe(false);
  });

  it('the Jenkinsfile splits a fleet deploy into parallel stages by host group', () => {
    const java = realpathSync('/usr/bin/java');
    const json = execFileSync('groovy', ['test/jenkins/check-jenkinsfile.groovy', 'Jenkinsfile', 'ROLE=fleet', 'FLEET_GROUPS=fleet-1,fleet-2; fleet-3'], {
      env: { ...process.env, JAVA_HOME: dirname(dirname(java)) },
      encoding: 'utf8',
    });
    interface Call { name: string; args: unknown[]; children: Call[] }
    const flat = (calls: Call[]): Call[] => calls.flatMap((c) => [c, ...flat(c.children)]);
    const parallel = flat(JSON.parse(json) as Call[]).find((c) => c.name === 'parallel');
    expect(Object.keys(parallel!.args[0] as object)).toEqual(['fleet group 1', 'fleet group 2']);
  });
});
