import type { ResolvedSsh } from '../config/inventory.js';
import { RELEASE_MARKER } from './git.js';
import { quoteWord } from '../exec/render.js';
import { ConfigError } from '../errors.js';

/**
 * What belongs to a host and not to a release: an rsync push never sends, replaces or deletes these
 * (rsync protects excluded paths from --delete). A leading / anchors at the checkout's root.
 */
export const HOST_OWNED_PATHS = ['/.git/', '/.env', '/.env.*', '.venv/', 'venv/', 'node_modules/', 'logs/', '*.log', '__pycache__/', `/${RELEASE_MARKER}`] as const;

export interface RsyncTarget {
  address: string;
  port: number;
  path: string;
  ssh: ResolvedSsh;
}

/**
 * The ssh_config the rsync push uses, as a file passed with -F: OpenSSH hands that file to the
 * ProxyJump hop too, so the jump host is checked against the same known_hosts with the same key
 * and no prompt (command-line -o and -i would not reach it). Values are double-quoted, so a path
 * with a double quote or a newline is refused rather than mangled.
 */
export function renderSshConfig(ssh: ResolvedSsh): string {
  const quoted = (what: string, value: string) => {
    if (/["\n\r]/.test(value)) throw new ConfigError(`ssh.${what} contains a double quote or a newline, which an ssh_config cannot hold: ${JSON.stringify(value)}`);
    return `"${value}"`;
  };
  return [
    'Host *',
    '  BatchMode yes',
    '  StrictHostKeyChecking yes',
    `  UserKnownHostsFile ${quoted('knownHosts', ssh.knownHosts)}`,
    '  GlobalKnownHostsFile /dev/null',
    `  ConnectTimeout ${Math.ceil(ssh.connectTimeoutSeconds)}`,
    `  ServerAliveInterval ${Math.ceil(ssh.keepaliveSeconds)}`,
    ...(ssh.identityFile ? [`  IdentityFile ${quoted('identityFile', ssh.identityFile)}`, '  IdentitiesOnly yes'] : []),
    ...(ssh.jumpHost ? [`  ProxyJump ${ssh.jumpHost.user ? `${ssh.jumpHost.user}@` : ''}${ssh.jumpHost.host}:${ssh.jumpHost.port}`] : []),
    '',
  ].join('\n');
}

/**
 * The local argv that pushes a release tree into a host's checkout over SSH, with the ssh_config
 * from renderSshConfig. Files take the remote user's ownership, as a checkout would.
 */
export function rsyncPushArgv(sourceDir: string, target: RsyncTarget, preserve: readonly string[], sshConfigFile: string): string[] {
  const excludes = [...new Set([...HOST_OWNED_PATHS, ...preserve])];
  return [
    'rsync',
    '--archive',
    '--delete',
    '--no-owner',
    '--no-group',
    '--checksum',
    '--itemize-changes',
    // rsync splits -e on spaces; the config file lives in voxops' own temporary directory
    '-e', `ssh -F ${quoteWord(sshConfigFile)} -p ${target.port}`,
    ...(target.ssh.sudo ? ['--rsync-path', 'sudo -n rsync'] : []),
    ...excludes.map((p) => `--exclude=${p}`),
    '--',
    `${sourceDir.replace(/\/+$/, '')}/`,
    `${target.ssh.user}@${target.address.includes(':') ? `[${target.address}]` : target.address}:${target.path.replace(/\/+$/, '')}/`,
  ];
}
