import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseArgs } from '../../src/cli/args.js';
import { jenkinsArgv } from '../runbook-commands.js';

const params = { ACTION: 'deploy', ROLE: 'fleet', TAG: 'v1.5.0', ENV: 'production', FLEET_HOSTS: '', REPORTS: 'reports' };

describe('scripts/jenkins-voxops.sh: Jenkins parameters to one voxops argv', () => {
  it('each parameter is one word, in the order voxops expects', () => {
    expect(jenkinsArgv('plan', params).argv).toEqual(['deploy', 'fleet', '--tag', 'v1.5.0', '--dry-run', '--env', 'production']);
    expect(jenkinsArgv('run', { ...params, FLEET_HOSTS: 'fleet-1,fleet-2', REPORTS: 'reports/group-1' }).argv).toEqual([
      'deploy',
      'fleet',
      '--tag',
      'v1.5.0',
      '--hosts',
      'fleet-1,fleet-2',
      '--report',
      'reports/group-1',
      '--env',
      'production',
    ]);
    expect(jenkinsArgv('run', { ...params, ACTION: 'rollback', TAG: '' }).argv).toEqual([
      'rollback',
      'fleet',
      '--report',
      'reports',
      '--env',
      'production',
    ]);
    expect(jenkinsArgv('run', { ...params, ACTION: 'rollback' }).argv).toEqual([
      'rollback',
      'fleet',
      '--to',
      'v1.5.0',
      '--report',
      'reports',
      '--env',
      'production',
    ]);
    expect(jenkinsArgv('config-check', params).argv).toEqual(['config', 'check', '--env', 'production']);
    expect(jenkinsArgv('health', params).argv).toEqual(['health', '--env', 'production']);
  });

  it('what it builds parses as a voxops command line', async () => {
    for (const mode of ['config-check', 'plan', 'run', 'health']) {
      for (const ACTION of ['deploy', 'rollback', 'restart']) {
        const { argv } = jenkinsArgv(mode, { ...params, ACTION, TAG: ACTION === 'restart' ? '' : 'v1.5.0' });
        await expect(parseArgs(argv), `${mode} ${ACTION}: ${argv.join(' ')}`).resolves.toBeDefined();
      }
    }
  });

  it('a glob reaches voxops as the literal text, not as file names', () => {
    const run = jenkinsArgv('plan', { ...params, TAG: '*', FLEET_HOSTS: 'fleet-[12],?' });
    expect(run.argv).toEqual(['deploy', 'fleet', '--tag', '*', '--hosts', 'fleet-[12],?', '--dry-run', '--env', 'production']);
  });

  it.each([
    ['TAG', 'v1.5.0 --force', 'whitespace'],
    ['TAG', '--force', "starts with '-'"],
    ['FLEET_HOSTS', 'fleet-1, fleet-2', 'whitespace'],
    ['FLEET_HOSTS', '-fleet-1', "starts with '-'"],
    ['FLEET_HOSTS', 'fleet-1\n--on-drain-timeout=force', 'whitespace'],
    ['ENV', 'production --accept-new-host-keys', 'whitespace'],
    ['ROLE', '--help', "starts with '-'"],
    ['ACTION', 'deploy\tall', 'whitespace'],
    ['REPORTS', '--inventory=/tmp/x', "starts with '-'"],
    ['TAG', 'v1.5.0\u001b[0m', 'control character'],
  ])('refuses %s=%j before voxops runs', (name, value, why) => {
    const run = jenkinsArgv('run', { ...params, [name]: value });
    expect(run.code).toBe(2);
    expect(run.argv).toEqual([]);
    expect(run.stderr).toContain(`${name}=`);
    expect(run.stderr).toContain(why);
  });

  it('deploy needs a TAG; an unknown ACTION or mode is refused', () => {
    expect(jenkinsArgv('run', { ...params, TAG: '' }).stderr).toContain('TAG is required for deploy');
    expect(jenkinsArgv('run', { ...params, ACTION: 'scale' }).code).toBe(2);
    expect(jenkinsArgv('deploy', params).stderr).toContain("unknown mode 'deploy'");
  });

  it('restart says it does not use a TAG left in the form, and goes on', () => {
    const run = jenkinsArgv('run', { ...params, ACTION: 'restart' });
    expect(run.code).toBe(0);
    expect(run.argv).toEqual(['restart', 'fleet', '--report', 'reports', '--env', 'production']);
    expect(run.stderr).toContain('TAG=v1.5.0 is not used');
  });

  it("an abort's SIGTERM reaches voxops itself: the sh step's process becomes voxops (same pid), nothing in between", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'voxops-sigterm-'));
    try {
      // stands in for voxops: says which process it is, and what it got
      const stub = join(dir, 'voxops');
      writeFileSync(stub, '#!/bin/sh\ntrap \'echo "TERM in $$"; exit 130\' TERM\necho "ready $$"\nwhile :; do sleep 0.05; done\n', {
        mode: 0o755,
      });
      // what Jenkins' sh step runs: its script, with sh -xe
      const script = join(dir, 'script.sh');
      writeFileSync(script, 'exec scripts/jenkins-voxops.sh health\n');
      const step = spawn('sh', ['-xe', script], { env: { PATH: process.env.PATH, ENV: 'production', VOXOPS_BIN: stub } });
      let out = '';
      step.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      await expect.poll(() => out, { timeout: 5000 }).toContain('ready');
      expect(out.trim()).toBe(`ready ${step.pid}`);
      const exited = new Promise<number | null>((resolve) => step.on('exit', (code) => resolve(code)));
      step.kill('SIGTERM');
      expect(await exited).toBe(130);
      expect(out).toContain(`TERM in ${step.pid}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
