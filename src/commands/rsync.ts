import type { ResolvedSsh } from '../config/inventory.js';
import { RELEASE_MARKER } from './git.js';
import { quoteWord } from '../exec/render.js';

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
 * The local argv that pushes a release tree into a host's checkout over SSH. Host keys are checked
 * against the inventory's known_hosts (never accepted blindly); files take the remote user's
 * ownership, as a checkout would.
 */
export function rsyncPushArgv(sourceDir: string, target: RsyncTarget, preserve: readonly string[]): string[] {
  const { ssh } = target;
  const sshWords = [
    'ssh',
    '-p', String(target.port),
    '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', `UserKnownHostsFile=${ssh.knownHosts}`,
    '-o', `ConnectTimeout=${Math.ceil(ssh.connectTimeoutSeconds)}`,
    ...(ssh.identityFile ? ['-i', ssh.identityFile, '-o', 'IdentitiesOnly=yes'] : []),
    ...(ssh.jumpHost ? ['-J', `${ssh.jumpHost.user ? `${ssh.jumpHost.user}@` : ''}${ssh.jumpHost.host}:${ssh.jumpHost.port}`] : []),
  ];
  const excludes = [...new Set([...HOST_OWNED_PATHS, ...preserve])];
  return [
    'rsync',
    '--archive',
    '--delete',
    '--no-owner',
    '--no-group',
    '--checksum',
    '--itemize-changes',
    // rsync splits -e on spaces and honours quotes: each word is quoted once, here
    '-e', sshWords.map(quoteWord).join(' '),
    ...(ssh.sudo ? ['--rsync-path', 'sudo -n rsync'] : []),
    ...excludes.map((p) => `--exclude=${p}`),
    '--',
    `${sourceDir.replace(/\/+$/, '')}/`,
    `${ssh.user}@${target.address.includes(':') ? `[${target.address}]` : target.address}:${target.path.replace(/\/+$/, '')}/`,
  ];
}
