import { describe, expect, it } from 'vitest';
import { renderSshConfig } from '../../src/commands/rsync.js';
import { parseInventory, type ResolvedSsh } from '../../src/config/inventory.js';
import { ConfigError } from '../../src/errors.js';
import { problemsOf } from './inventory-problems.js';

const ssh: ResolvedSsh = {
  user: 'deploy',
  port: 22,
  knownHosts: '/etc/voxops/known_hosts',
  connectTimeoutSeconds: 10,
  commandTimeoutSeconds: 900,
  keepaliveSeconds: 5,
  sudo: false,
  jumpHost: { host: 'bastion', port: 22, user: 'ops' },
};

const injected = 'ops\nMatch exec "touch /tmp/voxops-pwned"\n  ProxyCommand sh -c id';

function inventoryWithJumpUser(user: string): string {
  return JSON.stringify({
    ssh: { jumpHost: { host: 'bastion', user } },
    roles: {},
    environments: { prod: { hosts: {} } },
  });
}

describe('renderSshConfig refuses what would add lines or change a value', () => {
  it('refuses a jump host user with a newline (a Match exec line would run a local command)', () => {
    expect(() => renderSshConfig({ ...ssh, jumpHost: { host: 'bastion', port: 22, user: injected } })).toThrow(ConfigError);
  });

  it('refuses such a user in the inventory already', () => {
    expect(problemsOf(inventoryWithJumpUser(injected))).toEqual([expect.stringMatching(/^ssh\.jumpHost\.user: must not contain control characters/)]);
    expect(problemsOf(inventoryWithJumpUser('ops@evil'))).toEqual([expect.stringMatching(/^ssh\.jumpHost\.user: /)]);
    expect(problemsOf(inventoryWithJumpUser('-oProxyCommand=id'))).toEqual([expect.stringMatching(/^ssh\.jumpHost\.user: /)]);
    expect(parseInventory(inventoryWithJumpUser('ops'), '/inv/voxops.yaml').ssh.jumpHost).toEqual({ host: 'bastion', port: 22, user: 'ops' });
  });

  it('escapes % (an ssh_config token) in paths, and brackets an IPv6 jump host', () => {
    const text = renderSshConfig({ ...ssh, knownHosts: '/srv/100%/known_hosts', jumpHost: { host: 'fd00::1', port: 2222 } });
    expect(text).toContain('  UserKnownHostsFile "/srv/100%%/known_hosts"\n');
    expect(text).toContain('  ProxyJump [fd00::1]:2222\n');
    expect(() => renderSshConfig({ ...ssh, knownHosts: '/srv/${HOME}/known_hosts' })).toThrow(/cannot hold/);
    // OpenSSH reads \\ \' \" as escapes inside quotes too: a trailing backslash left the quote open
    expect(renderSshConfig({ ...ssh, knownHosts: "/srv/a\\'b\\" })).toContain('  UserKnownHostsFile "/srv/a\\\\\'b\\\\"\n');
  });
});
