import { Listr, type ListrTaskWrapper } from 'listr2';
import type { OperationEvent, Reporter } from '../events.js';
import type { Paint } from './colour.js';
import { describeEvent, formatSummary } from './format.js';
import { PlainReporter } from './reporters.js';

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
  private readonly plain: PlainReporter;

  constructor(private readonly paint: Paint) {
    this.plain = new PlainReporter(undefined, false, paint);
  }

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
      this.after.push(formatSummary(event.summary, this.paint));
      return;
    }
    const line = describeEvent(event);
    const host = 'host' in event ? event.host : undefined;
    const entry = host ? this.tasks.get(host) : undefined;
    if (!line) return;
    const shown = event.type === 'warning' ? this.paint('warning', line) : line;
    if (!entry) {
      this.after.push(shown);
      return;
    }
    if (entry.task) entry.task.output = line;
    if (event.type === 'warning') this.after.push(shown);
    if (event.type === 'host' && event.phase === 'done') entry.done.resolve();
    if (event.type === 'host' && (event.phase === 'failed' || event.phase === 'rolled-back')) entry.done.reject(new Error(line));
  }

  async close(): Promise<void> {
    for (const entry of this.tasks.values()) entry.done.resolve();
    await this.run;
    if (this.after.length > 0) process.stdout.write(`${this.after.join('\n')}\n`);
  }
}
