import { redactSecrets } from './redact.js';
import { sanitizeRemoteText } from './text.js';

/**
 * The error taxonomy. Only the CLI entry point prints these and exits; everything below it throws.
 * Each class owns one exit code, documented in the README ("Exit codes").
 */
export const ExitCode = {
  ok: 0,
  internal: 1,
  usage: 2,
  lockHeld: 3,
  healthGate: 4,
  remoteCommand: 5,
  unreachable: 6,
  preflight: 7,
  rollbackFailed: 8,
  drainTimeout: 9,
  unhealthy: 10,
  configRejected: 11,
  /** Ctrl-C: 128 + SIGINT */
  interrupted: 130,
  /** SIGTERM (a Jenkins abort, systemd, kill): 128 + SIGTERM */
  terminated: 143,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export abstract class VoxopsError extends Error {
  abstract readonly exitCode: ExitCodeValue;
  /** One line an on-call engineer can run next. */
  readonly next?: string;
  constructor(message: string, options?: { cause?: unknown; next?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    if (options?.next) this.next = options.next;
  }
}

/** An error that lists every problem found (all inventory errors, all preflight refusals), not just the first. */
export abstract class ProblemListError extends VoxopsError {
  constructor(
    message: string,
    readonly problems: string[] = [],
    options?: { next?: string },
  ) {
    super(message, options);
  }
}

export class ConfigError extends ProblemListError {
  readonly exitCode = ExitCode.usage;
}

export class UsageError extends VoxopsError {
  readonly exitCode = ExitCode.usage;
}

export interface LockHolder {
  id: string;
  user: string;
  machine: string;
  pid: number;
  startedAt: string;
  action: string;
  tag?: string;
  buildUrl?: string;
  /** the lock is a lease: its holder renews it (the file's mtime) while it runs; unrenewed this long, it has expired */
  leaseSeconds?: number;
}

/** A lock as read from a host: its holder, and how long ago it was last renewed (by the host's clock). */
export interface HeldLock extends LockHolder {
  /** seconds since the holder last renewed it */
  idleSeconds?: number;
  /** its holder stopped renewing it for longer than its lease: anyone may take it over */
  expired?: boolean;
}

export class LockHeldError extends VoxopsError {
  readonly exitCode = ExitCode.lockHeld;
  constructor(
    readonly host: string,
    readonly holder: LockHolder | undefined,
    options?: { next?: string },
  ) {
    super(`lock on ${host} is held by ${describeHolder(holder)}`, options);
  }
}

/** Our lease on a host ran out while we could not renew it, and another run took the lock over. */
export class LockLostError extends VoxopsError {
  readonly exitCode = ExitCode.lockHeld;
}

export function describeHolder(holder: LockHolder | undefined): string {
  if (!holder) return 'an unknown holder (lock directory without holder.json)';
  const what = holder.tag ? `${holder.action} ${holder.tag}` : holder.action;
  const build = holder.buildUrl ? `, build ${holder.buildUrl}` : '';
  return `${holder.user}@${holder.machine} (pid ${holder.pid}, ${what}, since ${holder.startedAt}${build})`;
}

export interface CommandFacts {
  host: string;
  step: string;
  command: string;
  exitCode: number | null;
  signal?: string;
  stdout: string;
  stderr: string;
  /** which stderr line says why (git's first line; most tools' last) */
  reasonLine?: 'first' | 'last';
}

export class RemoteCommandError extends VoxopsError {
  readonly exitCode = ExitCode.remoteCommand;
  constructor(
    readonly facts: CommandFacts,
    options?: { cause?: unknown; next?: string },
  ) {
    const status = facts.signal ? `signal ${facts.signal}` : `exit ${facts.exitCode}`;
    const tail = (facts.reasonLine === 'first' ? firstLine(facts.stderr) : lastLine(facts.stderr)) || lastLine(facts.stdout);
    super(`${facts.host}: ${facts.step} failed (${status})${tail ? `: ${tail}` : ''}`, options);
  }
}

export class UnreachableError extends VoxopsError {
  readonly exitCode = ExitCode.unreachable;
}

export class HostKeyError extends VoxopsError {
  readonly exitCode = ExitCode.unreachable;
}

export class PreflightError extends ProblemListError {
  readonly exitCode = ExitCode.preflight;
}

export class HealthGateError extends VoxopsError {
  readonly exitCode = ExitCode.healthGate;
  constructor(
    message: string,
    readonly details: { host: string; worker?: number; journal?: string },
    options?: { cause?: unknown; next?: string },
  ) {
    super(message, options);
  }
}

export class RollbackFailedError extends VoxopsError {
  readonly exitCode = ExitCode.rollbackFailed;
}

export class DrainTimeoutError extends VoxopsError {
  readonly exitCode = ExitCode.drainTimeout;
}

export class UnhealthyError extends ProblemListError {
  readonly exitCode = ExitCode.unhealthy;
}

/** nginx -t or haproxy -c refused a rendered config: it was not loaded, and the old one is in place. */
export class ConfigRejectedError extends VoxopsError {
  readonly exitCode = ExitCode.configRejected;
}

/** Stopped at a safe point by a signal. Exits as a shell would report that signal: 130 or 143. */
export class InterruptedError extends VoxopsError {
  readonly exitCode: ExitCodeValue;
  constructor(message: string, options?: { cause?: unknown; next?: string; signal?: string }) {
    super(message, options);
    this.exitCode = options?.signal === 'SIGTERM' ? ExitCode.terminated : ExitCode.interrupted;
  }
}

/**
 * What a host (or a local tool) printed, as it may appear in a message, an event or a report:
 * terminal escapes stripped, credentials in URLs and Authorization headers redacted.
 */
export function shownRemoteText(text: string): string {
  return redactSecrets(sanitizeRemoteText(text));
}

/** The last line of what a host printed, for a one-line message. */
export function firstLine(text: string): string {
  return lastLine(shownRemoteText(text).trim().split('\n')[0] ?? '');
}

export function lastLine(text: string): string {
  const lines = shownRemoteText(text).trimEnd().split('\n');
  return (lines[lines.length - 1] ?? '').trim().slice(0, 300);
}

/** The last lines of what a host printed (a journal). */
export function tail(text: string, lines = 20): string {
  return shownRemoteText(text).trimEnd().split('\n').slice(-lines).join('\n');
}
