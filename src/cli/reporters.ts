import type { OperationEvent, Reporter } from '../events.js';
import { noColour, paintFor, type Paint } from './colour.js';
import { describeEvent, formatSummary } from './format.js';

export type Write = (text: string) => void;

/** Jenkins and pipes: one timestamped line per event. */
export class PlainReporter implements Reporter {
  constructor(
    private readonly write: Write = (t) => process.stdout.write(t),
    private readonly verbose = false,
    private readonly paint: Paint = noColour,
  ) {}
  emit(event: OperationEvent): void {
    if (event.type === 'summary') {
      this.write(`${formatSummary(event.summary, this.paint)}\n`);
      return;
    }
    if (event.type === 'step' && event.status === 'start' && !this.verbose) return;
    const line = describeEvent(event);
    if (line) this.write(`${new Date().toISOString()} ${event.type === 'warning' ? this.paint('warning', line) : line}\n`);
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

/** listr2 (and its dependencies) load only for a person at a terminal, never for Jenkins or --json. */
export async function chooseReporter(options: { json?: boolean; verbose?: boolean }, env: NodeJS.ProcessEnv, write: Write, terminal: boolean): Promise<Reporter> {
  if (options.json) return new JsonReporter(write);
  const paint = paintFor(terminal, env, false);
  if (terminal && !env.CI && !env.JENKINS_URL) {
    const { TtyReporter } = await import('./tty-reporter.js');
    return new TtyReporter(paint);
  }
  return new PlainReporter(write, options.verbose, paint);
}
