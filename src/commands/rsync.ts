import type { ResolvedSsh } from '../config/inventory.js';
import { RELEASE_MARKER } from './git.js';
import { quoteWord } from '../exec/render.js';
import { ConfigError } from '../errors.js';
import { hostAddressPattern, MAX_SECONDS, userNamePattern } from '../config/schema.js';
import { hasControlCharacter } from '../text.js';

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
 * and no prompt (command-line -o and -i would not reach it). Every value is checked before it is
 * written: a newline would start a line of its own (a `Match exec` runs a local command). Paths are
 * double-quoted (a resolved path may hold a space), backslashes doubled (OpenSSH reads `\'`, `\"`
 * and `\\` as escapes even inside quotes) and `%` doubled (it expands `%` tokens and `${VAR}` in
 * them); a double quote or `${` cannot be written at all.
 */
export function renderSshConfig(ssh: ResolvedSsh): string {
  const refuse = (what: string, value: string, why: string) =>
    new ConfigError(`ssh.${what} ${why}, which an ssh_config cannot hold: ${JSON.stringify(value)}`);
  const path = (what: string, value: string) => {
    if (!value || hasControlCharacter(value) || /"|\$\{/.test(value)) throw refuse(what, value, 'is empty or contains a control character, a double quote or ${');
    return `"${value.replace(/\\/g, '\\\\').replace(/%/g, '%%')}"`;
  };
  const jump = (jumpHost: NonNullable<ResolvedSsh['jumpHost']>) => {
    if (jumpHost.user !== undefined && !userNamePattern.test(jumpHost.user)) throw refuse('jumpHost.user', jumpHost.user, 'is not a plain user name');
    if (!hostAddressPattern.test(jumpHost.host)) throw refuse('jumpHost.host', jumpHost.host, 'is not a host name or address');
    const host = jumpHost.host.includes(':') ? `[${jumpHost.host}]` : jumpHost.host;
    if (!Number.isInteger(jumpHost.port) || jumpHost.port < 1 || jumpHost.port > 65_535) throw refuse('jumpHost.port', String(jumpHost.port), 'is not a port');
    return `${jumpHost.user ? `${jumpHost.user}@` : ''}${host}:${jumpHost.port}`;
  };
  // OpenSSH reads these as ints; a ceil'ed 1e300 would be written as 1e+300
  const whole = (what: string, value: number, max: number) => {
    const n = Math.ceil(value);
    if (!Number.isSafeInteger(n) || n < 1 || n > max) throw refuse(what, String(value), `is not a whole number in 1..${max}`);
    return n;
  };
  return [
    'Host *',
    '  BatchMode yes',
    '  StrictHostKeyChecking yes',
    `  UserKnownHostsFile ${path('knownHosts', ssh.knownHosts)}`,
    '  GlobalKnownHostsFile /dev/null',
    `  ConnectTimeout ${whole('connectTimeoutSeconds', ssh.connectTimeoutSeconds, MAX_SECONDS)}`,
    `  ServerAliveInterval ${whole('keepaliveSeconds', ssh.keepaliveSeconds, MAX_SECONDS)}`,
    ...(ssh.identityFile ? [`  IdentityFile ${path('identityFile', ssh.identityFile)}`, '  IdentitiesOnly yes'] : []),
    ...(ssh.jumpHost ? [`  ProxyJump ${jump(ssh.jumpHost)}`] : []),
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
