import { describe, expect, it } from 'vitest';
import { consoleReleasesDir, consoleReleasesToPrune, copyBuild, flipCurrent, releaseName, tagOfRelease } from '../../src/commands/console.js';
import { renderSshConfig, rsyncPushArgv } from '../../src/commands/rsync.js';
import type { ResolvedSsh } from '../../src/config/inventory.js';
import { runInOrder } from '../../src/deploy/all.js';
import type { OperationContext } from '../../src/deploy/context.js';
import type { OperationEvent } from '../../src/deploy/events.js';
import { chooseSource } from '../../src/deploy/release.js';
import { HealthGateError, PreflightError } from '../../src/errors.js';
import { renderCommand } from '../../src/exec/render.js';

describe('chooseSource', () => {
  const found = { tagLocally: false, origin: 'found' } as const;
  const down = { tagLocally: false, origin: 'unreachable', originError: 'ssh: connect to host 10.0.0.10 port 22: Connection refused' } as const;

  it('uses git when origin answers, and the clone alone when the tag is there already', () => {
    expect(chooseSource('app-1', 'v1.5.0', 'auto', found)).toEqual({ source: 'git', skipFetch: false });
    expect(chooseSource('app-1', 'v1.4.2', 'auto', { tagLocally: true, origin: 'not-asked' })).toEqual({ source: 'git', skipFetch: true });
  });

  it('falls back to rsync only under auto, and only when origin is out of reach', () => {
    expect(chooseSource('app-1', 'v1.5.0', 'auto', down)).toEqual({
      source: 'rsync',
      skipFetch: true,
      warning: 'app-1 cannot fetch from origin (ssh: connect to host 10.0.0.10 port 22: Connection refused): pushing v1.5.0 with rsync instead',
    });
    expect(chooseSource('app-1', 'v1.5.0', 'git', down).problem).toMatch(/cannot fetch from origin .*--source rsync pushes the release/);
    expect(chooseSource('app-1', 'v1.5.0', 'rsync', found)).toEqual({ source: 'rsync', skipFetch: true });
  });

  it('never falls back when origin answered that the tag does not exist', () => {
    expect(chooseSource('app-1', 'v9.9.9', 'auto', { tagLocally: false, origin: 'missing' }).problem).toBe('app-1: tag v9.9.9 does not exist in origin');
  });
});

describe('rsyncPushArgv', () => {
  const ssh: ResolvedSsh = {
    user: 'deploy',
    port: 22,
    identityFile: "/keys/it's mine",
    knownHosts: '/etc/voxops/known hosts',
    connectTimeoutSeconds: 10,
    commandTimeoutSeconds: 900,
    keepaliveSeconds: 5,
    sudo: true,
    jumpHost: { host: 'bastion', port: 2222, user: 'ops' },
  };

  it('keeps host-owned paths and takes its ssh settings from one config file', () => {
    const words = rsyncPushArgv('/tmp/tree/', { address: '10.0.0.20', port: 2200, path: '/opt/voxbridge', ssh }, ['/recordings/'], '/tmp/voxops-release-x/ssh_config');
    expect(words.slice(0, 7)).toEqual(['rsync', '--archive', '--delete', '--no-owner', '--no-group', '--checksum', '--itemize-changes']);
    expect(words[words.indexOf('-e') + 1]).toBe('ssh -F /tmp/voxops-release-x/ssh_config -p 2200');
    expect(words[words.indexOf('--rsync-path') + 1]).toBe('sudo -n rsync');
    for (const kept of ['/.git/', '/.env', '/.env.*', '.venv/', 'node_modules/', 'logs/', '/.voxops-release', '/recordings/']) {
      expect(words).toContain(`--exclude=${kept}`);
    }
    expect(words.slice(-3)).toEqual(['--', '/tmp/tree/', 'deploy@10.0.0.20:/opt/voxbridge/']);
  });

  it('checks host keys of the host and of the jump host against the inventory, never prompting', () => {
    expect(renderSshConfig(ssh)).toBe(
      [
        'Host *',
        '  BatchMode yes',
        '  StrictHostKeyChecking yes',
        '  UserKnownHostsFile "/etc/voxops/known hosts"',
        '  GlobalKnownHostsFile /dev/null',
        '  ConnectTimeout 10',
        '  ServerAliveInterval 5',
        `  IdentityFile "/keys/it's mine"`,
        '  IdentitiesOnly yes',
        '  ProxyJump ops@bastion:2222',
        '',
      ].join('\n'),
    );
    expect(() => renderSshConfig({ ...ssh, identityFile: '/keys/"odd"' })).toThrow(/cannot hold/);
  });
});

describe('console release builders', () => {
  it('names releases by tag and commit, and reads the tag back from a symlink target', () => {
    expect(releaseName('v1.5.0', 'a454b66706c3e1f0')).toBe('v1.5.0-a454b66706c3');
    expect(tagOfRelease('/opt/voxconsole/releases/v1.5.1-rc1-a454b66706c3')).toBe('v1.5.1-rc1');
    expect(tagOfRelease('/opt/voxconsole/dist')).toBeUndefined();
    expect(consoleReleasesDir('/opt/voxconsole/current')).toBe('/opt/voxconsole/releases');
  });

  it('copies into a partial directory first and flips current with one rename', () => {
    expect(renderCommand(copyBuild('/opt/voxconsole', 'dist', '/opt/voxconsole/current', 'v1.5.0-a454b66706c3').command)).toBe(
      'rm -rf -- /opt/voxconsole/releases/v1.5.0-a454b66706c3.partial /opt/voxconsole/releases/v1.5.0-a454b66706c3 && mkdir -p -- /opt/voxconsole/releases && cp -a -- /opt/voxconsole/dist /opt/voxconsole/releases/v1.5.0-a454b66706c3.partial && mv -T -- /opt/voxconsole/releases/v1.5.0-a454b66706c3.partial /opt/voxconsole/releases/v1.5.0-a454b66706c3',
    );
    expect(renderCommand(flipCurrent('/opt/voxconsole/current', '/opt/voxconsole/releases/v1.5.0-a454b66706c3').command)).toBe(
      'ln -sfn -- /opt/voxconsole/releases/v1.5.0-a454b66706c3 /opt/voxconsole/current.voxops-next && mv -Tf -- /opt/voxconsole/current.voxops-next /opt/voxconsole/current',
    );
  });

  it('prunes the oldest releases beyond keep, never one in use', () => {
    const listing = ['v1.4.2-aaaaaaaaaaaa', 'v1.5.0-bbbbbbbbbbbb', 'v1.6.0-cccccccccccc', 'v1.6.1-dddddddddddd', 'v1.6.0-cccccccccccc.partial'].join('\n');
    expect(consoleReleasesToPrune(listing, 2, ['v1.6.1-dddddddddddd', 'v1.4.2-aaaaaaaaaaaa'])).toEqual(['v1.5.0-bbbbbbbbbbbb']);
  });
});

describe('runInOrder', () => {
  it('never starts a role after one failed, and says what ran and what did not', async () => {
    const events: OperationEvent[] = [];
    const ctx = { signal: new AbortController().signal, reporter: { emit: (e: OperationEvent) => events.push(e), close: async () => {} } } as unknown as OperationContext;
    const ran: string[] = [];
    const step = (role: string, fail = false) => ({
      role,
      run: async (c: OperationContext) => {
        if (c.dryRun) return;
        ran.push(role);
        if (fail) throw new HealthGateError('api did not come up', { host: 'app-1' });
      },
    });
    await expect(runInOrder(ctx, [step('api'), step('fleet', true), step('dialler')], 'deploy all v1.5.0')).rejects.toThrow(
      'deploy all v1.5.0: fleet failed after api succeeded; not started: dialler: api did not come up',
    );
    expect(ran).toEqual(['api', 'fleet']);
    // the last event covers every role that ran, with the exit code that stopped it
    const last = events.at(-1)!;
    expect(last).toMatchObject({ type: 'summary', summary: { role: 'all', exitCode: 4 } });
  });

  it("runs every role's preflight first: a refusal in the last role changes nothing", async () => {
    const ctx = { signal: new AbortController().signal, reporter: { emit: () => {}, close: async () => {} } } as unknown as OperationContext;
    const ran: string[] = [];
    const steps = ['api', 'fleet', 'dialler'].map((role) => ({
      role,
      run: async (c: OperationContext) => {
        if (c.dryRun && role === 'dialler') throw new PreflightError('tag v1.5.0 does not exist in origin');
        if (!c.dryRun) ran.push(role);
      },
    }));
    await expect(runInOrder(ctx, steps, 'deploy all v1.5.0')).rejects.toThrow('deploy all v1.5.0: preflight of dialler refused, before any role was changed: tag v1.5.0');
    expect(ran).toEqual([]);
  });

  it('starts nothing more once Ctrl-C was pressed', async () => {
    const controller = new AbortController();
    const ctx = { signal: controller.signal, reporter: { emit: () => {}, close: async () => {} } } as unknown as OperationContext;
    const ran: string[] = [];
    const steps = ['api', 'fleet'].map((role) => ({
      role,
      run: async (c: OperationContext) => {
        if (c.dryRun) return;
        ran.push(role);
        controller.abort();
      },
    }));
    await expect(runInOrder(ctx, steps, 'deploy all v1.5.0')).rejects.toThrow('deploy all v1.5.0: interrupted before fleet; done: api; not started: fleet');
    expect(ran).toEqual(['api']);
  });
});
