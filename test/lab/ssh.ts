// Running commands on lab hosts with the real OpenSSH client, the deploy key and strict host key
// checking against .lab/known_hosts (so a rekeyed host is refused, as in production).
import { labPath } from './paths.js';
import { run, shQuote, type RunResult } from './sh.js';

export function sshArgs(address: string, user = 'root', connectTimeoutS = 5): string[] {
  return [
    '-F',
    '/dev/null',
    '-i',
    labPath('id_ed25519'),
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    `UserKnownHostsFile=${labPath('known_hosts')}`,
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'BatchMode=yes',
    '-o',
    `ConnectTimeout=${connectTimeoutS}`,
    '-o',
    'ServerAliveInterval=5',
    '-o',
    'LogLevel=ERROR',
    `${user}@${address}`,
  ];
}

/** argv is quoted word by word; a string is handed to the remote shell as it is (a script). */
export function toRemoteCommand(cmd: string[] | string): string {
  return typeof cmd === 'string' ? cmd : cmd.map(shQuote).join(' ');
}

export function sshRun(
  address: string,
  cmd: string[] | string,
  opts: { input?: string; timeoutMs?: number; user?: string; connectTimeoutS?: number } = {},
): Promise<RunResult> {
  return run('ssh', [...sshArgs(address, opts.user, opts.connectTimeoutS), '--', toRemoteCommand(cmd)], {
    input: opts.input,
    timeoutMs: opts.timeoutMs ?? 120_000,
    allowFail: true,
  });
}
