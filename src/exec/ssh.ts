import { readFileSync } from 'node:fs';
import pLimit from 'p-limit';
import { Client, type ConnectConfig, type ClientChannel } from 'ssh2';
import type { Step } from './command.js';
import type { Host, ResolvedSsh } from '../config/inventory.js';
import { HostKeyError, shownRemoteText, UnreachableError } from '../errors.js';
import { checkResult, OutputBuffer, type CommandListener, type CommandResult, type Executor, type HostSession } from './executor.js';
import {
  appendKnownHost,
  describeHostKeyRefusal,
  knownHostsName,
  lookupKnownHosts,
  readKnownHosts,
  verifyHostKey,
  type HostKeyVerdict,
} from './known-hosts.js';
import { renderCommand, withSudo } from './render.js';

export interface SshExecutorOptions {
  ssh: ResolvedSsh;
  acceptNewHostKeys?: boolean;
  onCommand?: CommandListener;
}

/** Host key algorithms to ask for, in the order known_hosts has them, so a known key is offered. */
function hostKeyAlgorithms(types: string[]): string[] | undefined {
  const out: string[] = [];
  for (const type of types) {
    if (type === 'ssh-rsa') out.push('rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa');
    else out.push(type);
  }
  return out.length > 0 ? [...new Set(out)] : undefined;
}

/** One ssh2 connection per host, reused by every command. Host keys are checked against known_hosts. */
export class SshExecutor implements Executor {
  constructor(private readonly options: SshExecutorOptions) {}

  async connect(host: Host): Promise<HostSession> {
    const { ssh } = this.options;
    let jump: Client | undefined;
    let sock: ConnectConfig['sock'];
    if (ssh.jumpHost) {
      const jumpTarget = { address: ssh.jumpHost.host, port: ssh.jumpHost.port, name: `jump host ${ssh.jumpHost.host}` };
      jump = await this.open(jumpTarget, ssh.jumpHost.user ?? ssh.user);
      sock = await new Promise<ClientChannel>((resolve, reject) =>
        jump!.forwardOut('127.0.0.1', 0, host.address, host.port, (err, channel) =>
          err
            ? reject(
                new UnreachableError(
                  `${host.name}: jump host ${ssh.jumpHost!.host} cannot reach ${host.address}:${host.port}: ${shownRemoteText(err.message)}`,
                ),
              )
            : resolve(channel),
        ),
      );
    }
    const client = await this.open({ address: host.address, port: host.port, name: host.name }, ssh.user, sock);
    return new SshSession(host, client, jump, this.options);
  }

  private open(target: { address: string; port: number; name: string }, username: string, sock?: ConnectConfig['sock']): Promise<Client> {
    const { ssh, acceptNewHostKeys } = this.options;
    const name = knownHostsName(target.address, target.port);
    const lookup = lookupKnownHosts(readKnownHosts(ssh.knownHosts), name);
    let verdict: HostKeyVerdict | undefined;
    let presented: Buffer | undefined;
    const config: ConnectConfig = {
      host: target.address,
      port: target.port,
      username,
      readyTimeout: ssh.connectTimeoutSeconds * 1000,
      keepaliveInterval: ssh.keepaliveSeconds * 1000,
      keepaliveCountMax: 3,
      hostVerifier: (key: Buffer) => {
        presented = key;
        verdict = verifyHostKey(lookup, key);
        if (verdict === 'unknown' && acceptNewHostKeys) {
          appendKnownHost(ssh.knownHosts, name, key);
          return true;
        }
        return verdict === 'known';
      },
    };
    const algorithms = hostKeyAlgorithms(lookup.keys.map((k) => k.type));
    if (algorithms) config.algorithms = { serverHostKey: algorithms as never };
    if (sock) config.sock = sock;
    if (ssh.identityFile) {
      try {
        config.privateKey = readFileSync(ssh.identityFile);
      } catch (error) {
        return Promise.reject(new UnreachableError(`cannot read SSH identity ${ssh.identityFile}: ${(error as Error).message}`));
      }
    } else if (process.env.SSH_AUTH_SOCK) {
      config.agent = process.env.SSH_AUTH_SOCK;
    } else {
      return Promise.reject(
        new UnreachableError('no SSH credentials: set ssh.identityFile in the inventory or start an ssh-agent (SSH_AUTH_SOCK)'),
      );
    }
    return new Promise((resolve, reject) => {
      const client = new Client();
      client.once('ready', () => resolve(client));
      client.once('error', (error: Error & { level?: string }) => {
        client.end();
        if (verdict && verdict !== 'known' && !(verdict === 'unknown' && acceptNewHostKeys)) {
          const refusal = describeHostKeyRefusal(verdict, {
            target: target.name,
            name,
            ...(presented ? { presented } : {}),
            knownHosts: ssh.knownHosts,
          });
          reject(new HostKeyError(refusal.message, { next: refusal.next }));
          return;
        }
        const detail = error.level === 'client-authentication' ? 'authentication failed' : shownRemoteText(error.message);
        reject(new UnreachableError(`${target.name} (${target.address}:${target.port}) is unreachable: ${detail}`, { cause: error }));
      });
      client.connect(config);
    });
  }
}

/**
 * Commands one connection runs at once. OpenSSH refuses channels past its MaxSessions (10 by
 * default) with "open failed", which would read as a lost host; a lease renewal needs one free.
 */
const MAX_CHANNELS = 8;

/**
 * sshd frees a closed session's slot a loop after the close, so a burst of closes and opens can
 * meet a full table for a moment (seen in the lab). A refused open ran nothing: asking again is safe.
 */
const REFUSED_OPEN_RETRY_MS = [20, 50, 100, 200, 400, 800, 1600];

/** ssh2 sets a numeric `reason` only on a refused channel open, not on a refused exec request. */
function refusedOpen(error: Error): boolean {
  return typeof (error as Error & { reason?: unknown }).reason === 'number';
}

class SshSession implements HostSession {
  private closed = false;
  private lost: Error | undefined;
  private readonly channels = pLimit(MAX_CHANNELS);

  constructor(
    readonly host: Host,
    private readonly client: Client,
    private readonly jump: Client | undefined,
    private readonly options: SshExecutorOptions,
  ) {
    client.on('error', (error) => (this.lost = error));
    client.on('close', () => {
      this.lost ??= new Error('connection closed');
    });
  }

  async run(step: Step): Promise<CommandResult> {
    const rendered = renderCommand(step.command);
    this.options.onCommand?.(this.host, step, rendered);
    const wire = this.options.ssh.sudo ? withSudo(rendered) : rendered;
    const timeoutMs = step.timeoutMs ?? this.options.ssh.commandTimeoutSeconds * 1000;
    // the timeout starts when the channel opens: waiting for a free one is not the command's time
    return checkResult(this.host, step, await this.channels(() => this.exec(wire, step.stdin, timeoutMs)));
  }

  private exec(wire: string, stdin: string | undefined, timeoutMs: number, attempt = 0): Promise<CommandResult> {
    if (this.lost || this.closed) {
      return Promise.reject(
        new UnreachableError(`${this.host.name}: SSH connection lost (${this.lost ? shownRemoteText(this.lost.message) : 'closed'})`),
      );
    }
    const started = Date.now();
    return new Promise((resolve, reject) => {
      this.client.exec(wire, (err, channel) => {
        if (err) {
          const wait = refusedOpen(err) ? REFUSED_OPEN_RETRY_MS[attempt] : undefined;
          if (wait !== undefined) {
            setTimeout(() => this.exec(wire, stdin, timeoutMs, attempt + 1).then(resolve, reject), wait);
            return;
          }
          const hint = refusedOpen(err) ? ` (sshd MaxSessions must allow ${MAX_CHANNELS + 1})` : '';
          const detail = `${shownRemoteText(err.message)}${hint}`;
          reject(new UnreachableError(`${this.host.name}: cannot open an SSH channel: ${detail}`, { cause: err }));
          return;
        }
        const stdout = new OutputBuffer();
        const stderr = new OutputBuffer();
        let timedOut = false;
        const timer = setTimeout(() => {
          timedOut = true;
          channel.signal('KILL');
          channel.close();
        }, timeoutMs);
        channel.on('data', (d: Buffer) => stdout.push(d));
        channel.stderr.on('data', (d: Buffer) => stderr.push(d));
        channel.on('close', (code: number | null | undefined, signal?: string) => {
          clearTimeout(timer);
          if (this.lost && code == null && !timedOut) {
            reject(new UnreachableError(`${this.host.name}: SSH connection lost during a command (${shownRemoteText(this.lost.message)})`));
            return;
          }
          resolve({
            exitCode: timedOut ? null : (code ?? null),
            ...(timedOut ? { signal: `timeout after ${Math.round(timeoutMs / 1000)}s` } : signal ? { signal } : {}),
            stdout: stdout.toString(),
            stderr: stderr.toString(),
            durationMs: Date.now() - started,
          });
        });
        channel.end(stdin ?? '');
      });
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.client.end();
    this.jump?.end();
  }
}
