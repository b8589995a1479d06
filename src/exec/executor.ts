import type { Step } from './command.js';
import type { Host } from '../config/inventory.js';
import { RemoteCommandError } from '../errors.js';
import { renderCommand } from './render.js';

export interface CommandResult {
  exitCode: number | null;
  signal?: string;
  stdout: string;
  stderr: string;
  durationMs: number;
}

/** A connection to one host, reused by every command of an operation. */
export interface HostSession {
  readonly host: Host;
  /** Run a step. Throws RemoteCommandError unless the exit code is 0 or in step.okExitCodes. */
  run(step: Step): Promise<CommandResult>;
  close(): Promise<void>;
}

export interface Executor {
  connect(host: Host): Promise<HostSession>;
}

/** Called with every command as it is sent (for --verbose and dry runs). Never sees stdin. */
export type CommandListener = (host: Host, step: Step, rendered: string) => void;

export function checkResult(host: Host, step: Step, result: CommandResult): CommandResult {
  const accepted = step.okExitCodes ?? [];
  const ok =
    result.exitCode === 0 ||
    (accepted === 'any' && !result.signal) ||
    (result.exitCode !== null && accepted !== 'any' && accepted.includes(result.exitCode));
  if (ok) return result;
  throw new RemoteCommandError({
    host: host.name,
    step: step.name,
    command: renderCommand(step.command),
    exitCode: result.exitCode,
    ...(result.signal ? { signal: result.signal } : {}),
    stdout: result.stdout,
    stderr: result.stderr,
    ...(step.reasonLine ? { reasonLine: step.reasonLine } : {}),
  });
}

/** Keep the end of long output: failures are explained by their last lines. */
export class OutputBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly limit = 1024 * 1024) {}
  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > this.limit && this.chunks.length > 1) this.size -= this.chunks.shift()!.length;
  }
  toString(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}
