import { describe, expect, it } from 'vitest';
import {
  consoleReleasesDir,
  consoleReleasesToPrune,
  copyBuild,
  flipCurrent,
  releaseName,
  tagOfRelease,
} from '../../src/commands/console.js';
import { renderSshConfig, rsyncPushArgv } from '../../src/commands/rsync.js';
import type { ResolvedSsh } from '../../src/config/inventory.js';
import { systemClock } from '../../src/clock.js';
import type { OperationContext } from '../../src/engine/context.js';
import { runRoles } from '../../src/engine/sequence.js';
import { sharedRequest } from '../../src/cli/commands.js';
import type { OperationEvent } from '../../src/events.js';
import { chooseSource } from '../../src/release/source.js';
import type { OperationRequest } from '../../src/roles/contract.js';
import { HealthGateError, PreflightError } from '../../src/errors.js';
import { renderCommand } from '../../src/exec/render.js';

describe('chooseSource', () => {
  const found = { tagLocally: false, origin: 'found' } as const;
  const down = {
    tagLocally: false,
    origin: 'unreachable',
    originError: 'ssh: connect to host 10.0.0.10 port 22: Connection refused',
  } as const;

  it('uses git when origin answers, and the clone alone when the tag is there already', () => {
    expect(chooseSource('app-1', 'v1.5.0', 'auto', found)).toEqual({ source: 'git', skipFetch: false });
    expect(chooseSource('app-1', 'v1.4.2', 'auto', { tagLocally: true, origin: 'not-asked' })).toEqual({ source: 'git', skipFetch: true });
  });

  it('falls back to rsync only under auto, and only when origin is out of reach', () => {
    expect(chooseSource('app-1', 'v1.5.0', 'auto', down)).toEqual({
      source: 'rsync',
      skipFetch: true,
      warning:
        'app-1 cannot fetch from origin (ssh: connect to host 10.0.0.10 port 22: Connection refused): pushing v1.5.0 with rsync instead',
    });
    expect(chooseSource('app-1', 'v1.5.0', 'git', down).problem).toMatch(/cannot fetch from origin .*--source rsync pushes the release/);
    expect(chooseSource('app-1', 'v1.5.0', 'rsync', found)).toEqual({ source: 'rsync', skipFetch: true });
  });

  it('never falls back when origin answered that the tag does not exist', () => {
    expect(chooseSource('app-1', 'v9.9.9', 'auto', { tagLocally: false, origin: 'missing' }).problem).toBe(
      'app-1: tag v9.9.9 does not exist in origin',
    );
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
    const words = rsyncPushArgv(
      '/tmp/tree/',
      { address: '10.0.0.20', port: 2200, path: '/opt/voxbridge', ssh },
      ['/recordings/'],
      '/tmp/voxops-release-x/ssh_config',
    );
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
    const listing = [
      'v1.4.2-aaaaaaaaaaaa',
      'v1.5.0-bbbbbbbbbbbb',
      'v1.6.0-cccccccccccc',
      'v1.6.1-dddddddddddd',
      'v1.6.0-cccccccccccc.partial',
    ].join('\n');
    expect(consoleReleasesToPrune(listing, 2, ['v1.6.1-dddddddddddd', 'v1.4.2-aaaaaaaaaaaa'])).toEqual(['v1.5.0-bbbbbbbbbbbb']);
  });
});

describe('runRoles', () => {
  const request = (role: OperationRequest['role']): OperationRequest => ({ ...sharedRequest('deploy', {}, { tag: 'v1.5.0' }), role });
  const context = (signal = new AbortController().signal, events: OperationEvent[] = []) =>
    ({
      signal,
      clock: systemClock,
      dryRun: false,
      reporter: { emit: (e: OperationEvent) => events.push(e), close: async () => {} },
    }) as unknown as OperationContext;

  it('never starts a role after one failed, and says what ran and what did not', async () => {
    const events: OperationEvent[] = [];
    const ran: string[] = [];
    const runOne = async (c: OperationContext, r: OperationRequest) => {
      if (c.dryRun) return;
      ran.push(r.role);
      if (r.role === 'fleet') throw new HealthGateError('api did not come up', { host: 'app-1' });
    };
    await expect(
      runRoles(
        context(undefined, events),
        ['api', 'fleet', 'dialler'].map((r) => request(r as OperationRequest['role'])),
        'deploy all v1.5.0',
        { runOne },
      ),
    ).rejects.toThrow('deploy all v1.5.0: fleet failed after api succeeded; not started: dialler: api did not come up');
    expect(ran).toEqual(['api', 'fleet']);
    // the last event covers every role that ran, with the exit code that stopped it
    expect(events.at(-1)).toMatchObject({
      type: 'summary',
      summary: { role: 'all', exitCode: 4, error: { message: expect.stringContaining('fleet failed') } },
    });
  });

  it("runs every role's preflight first: a refusal in the last role changes nothing", async () => {
    const ran: string[] = [];
    const runOne = async (c: OperationContext, r: OperationRequest) => {
      if (c.dryRun && r.role === 'dialler') throw new PreflightError('tag v1.5.0 does not exist in origin');
      if (!c.dryRun) ran.push(r.role);
    };
    await expect(
      runRoles(context(), [request('api'), request('fleet'), request('dialler')], 'deploy all v1.5.0', { runOne }),
    ).rejects.toThrow('deploy all v1.5.0: preflight of dialler refused, before any role was changed: tag v1.5.0');
    expect(ran).toEqual([]);
  });

  it('starts nothing more once Ctrl-C was pressed', async () => {
    const controller = new AbortController();
    const ran: string[] = [];
    const runOne = async (c: OperationContext, r: OperationRequest) => {
      if (c.dryRun) return;
      ran.push(r.role);
      controller.abort('SIGINT');
    };
    await expect(runRoles(context(controller.signal), [request('api'), request('fleet')], 'deploy all v1.5.0', { runOne })).rejects.toThrow(
      'deploy all v1.5.0: interrupted before fleet; done: api; not started: fleet',
    );
    expect(ran).toEqual(['api']);
  });
});
