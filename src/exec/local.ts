import { spawn } from 'node:child_process';
import type { Step } from './command.js';
import type { Host } from '../config/inventory.js';
import { checkResult, OutputBuffer, type CommandResult, type Executor, type HostSession } from './executor.js';
import { renderCommand } from './render.js';

/** Runs rendered commands with the local `sh`: the same string SSH would send, without a network. */
export class LocalExecutor implements Executor {
  constructor(private readonly defaultTimeoutMs = 60_000) {}
  async connect(host: Host): Promise<HostSession> {
    const timeoutMs = this.defaultTimeoutMs;
    return {
      host,
      run: async (step: Step) => checkResult(host, step, await runLocal(renderCommand(step.command), step.stdin, step.timeoutMs ?? timeoutMs)),
      close: async () => {},
    };
  }
}

export function runLocal(rendered: string, stdin: string | undefined, timeoutMs: number): Promise<CommandResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', rendered], { stdio: ['pipe', 'pipe', 'pipe'], timeout: timeoutMs });
    const stdout = new OutputBuffer();
    const stderr = new OutputBuffer();
    child.stdout.on('data', (d: Buffer) => stdout.push(d));
    child.stderr.on('data', (d: Buffer) => stderr.push(d));
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({
        exitCode: code,
        ...(signal ? { signal } : {}),
        stdout: stdout.toString(),
        stderr: stderr.toString(),
        durationMs: Date.now() - started,
      }),
    );
    // a command that exits without reading its stdin is not an error
    child.stdin.on('error', () => {});
    child.stdin.end(stdin ?? '');
  });
}
