import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { systemClock, type Clock } from '../clock.js';
import type { Inventory } from '../config/inventory.js';
import type { Reporter } from '../events.js';
import type { CommandListener, Executor } from '../exec/executor.js';
import { paintFor } from './colour.js';
import { requireSshCredentials } from './ssh-credentials.js';

/** What main wires from outside: the real SSH executor and process streams, or a test's scripted ones. */
export interface Wiring {
  executor(
    inventory: Inventory,
    options: { acceptNewHostKeys: boolean; onCommand?: CommandListener; env: NodeJS.ProcessEnv; hosts: readonly string[] },
  ): Executor | Promise<Executor>;
  stdout(text: string): void;
  stderr(text: string): void;
  clock: Clock;
  /** whether each stream is a terminal: colour, and listr2's live view */
  terminal: { stdout: boolean; stderr: boolean };
}

export const processWiring: Wiring = {
  executor: async (inventory, { env, hosts, ...options }) => {
    requireSshCredentials(inventory, env, hosts);
    const { SshExecutor } = await import('../exec/ssh.js');
    return new SshExecutor({ ssh: inventory.ssh, ...options });
  },
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  clock: systemClock,
  terminal: { stdout: Boolean(process.stdout.isTTY), stderr: Boolean(process.stderr.isTTY) },
};

/** listr2 (and its dependencies) load only for a person at a terminal, never for Jenkins or --json. */
export async function chooseReporter(options: { json: boolean; verbose: boolean }, env: NodeJS.ProcessEnv, io: Wiring): Promise<Reporter> {
  const { JsonReporter, PlainReporter } = await import('./reporters.js');
  if (options.json) return new JsonReporter(io.stdout);
  const paint = paintFor(io.terminal.stdout, env, false);
  if (io.terminal.stdout && !env.CI && !env.JENKINS_URL) {
    const { TtyReporter } = await import('./tty-reporter.js');
    return new TtyReporter(paint);
  }
  return new PlainReporter(io.stdout, options.verbose, paint);
}

/** package.json's version. main runs from src/cli (tests) and from dist/src/cli (bin/voxops), so it looks upwards. */
export function ownVersion(): string | undefined {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dirname(dir) !== dir; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'voxops') return pkg.version;
    } catch {
      // not here: one level up
    }
  }
  return undefined;
}

