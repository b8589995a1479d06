import { Listr, type ListrTaskWrapper } from 'listr2';
import type { OperationEvent, Reporter } from '../events.js';
import { describeEvent, formatSummary } from './format.js';

type Write = (text: string) => void;

/** Jenkins and pipes: one timestamped line per event. */
export class PlainReporter implements Reporter {
  constructor(
    private readonly write: Write = (t) => process.stdout.write(t),
    private readonly verbose = false,
  ) {}
  emit(event: OperationEvent): void {
    if (event.type === 'summary') {
      this.write(`${formatSummary(event.summary)}\n`);
      return;
    }
    if (event.type === 'step' && event.status === 'start' && !this.verbose) return;
    const line = describeEvent(event);
    if (line) this.write(`${new Date().toISOString()} ${line}\n`);
  }
  async close(): Promise<void> {}
}

/** `--json`: one event per line, machine-readable; the last line is the summary. */
export class JsonReporter implements Reporter {
  constructor(private readonly write: Write = (t) => process.stdout.write(t)) {}
  emit(event: OperationEvent): void {
    this.write(`${JSON.stringify({ at: new Date().toISOString(), ...event })}\n`);
  }
  async close(): Promise<void> {}
}

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (error: Error) => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A terminal: one listr2 task per host, its latest event underneath; the summary after. */
export class TtyReporter implements Reporter {
  private tasks = new Map<string, { done: Deferred; task?: ListrTaskWrapper<unknown, never, never> }>();
  private run: Promise<unknown> | undefined;
  private after: string[] = [];
  private readonly plain = new PlainReporter();

  emit(event: OperationEvent): void {
    if (event.type === 'start' && !event.dryRun && !this.run) {
      for (const host of event.hosts) this.tasks.set(host, { done: deferred() });
      const list = new Listr(
        event.hosts.map((host) => ({
          title: host,
          task: (_ctx: unknown, task: ListrTaskWrapper<unknown, never, never>) => {
            const entry = this.tasks.get(host)!;
            entry.task = task;
            return entry.done.promise;
          },
        })),
        { concurrent: true, exitOnError: false, rendererOptions: { outputBar: 2, collapseErrors: false } } as never,
      );
      this.run = list.run().catch(() => undefined);
      return;
    }
    if (!this.run) {
      this.plain.emit(event);
      return;
    }
    if (event.type === 'summary') {
      for (const entry of this.tasks.values()) entry.done.resolve();
      this.after.push(formatSummary(event.summary));
      return;
    }
    const line = describeEvent(event);
    const host = 'host' in event ? event.host : undefined;
    const entry = host ? this.tasks.get(host) : undefined;
    if (!line) return;
    if (!entry) {
      this.after.push(line);
      return;
    }
    if (entry.task) entry.task.output = line;
    if (event.type === 'warning') this.after.push(line);
    if (event.type === 'host' && event.phase === 'done') entry.done.resolve();
    if (event.type === 'host' && (event.phase === 'failed' || event.phase === 'rolled-back')) entry.done.reject(new Error(line));
  }

  async close(): Promise<void> {
    for (const entry of this.tasks.values()) entry.done.resolve();
    await this.run;
    if (this.after.length > 0) process.stdout.write(`${this.after.join('\n')}\n`);
  }
}

export function chooseReporter(options: { json?: boolean; verbose?: boolean }, env = process.env, write: Write = (t) => process.stdout.write(t)): Reporter {
  if (options.json) return new JsonReporter(write);
  if (process.stdout.isTTY && !env.CI && !env.JENKINS_URL) return new TtyReporter();
  return new PlainReporter(write, options.verbose);
}
