import type { OperationEvent, Reporter } from '../events.js';
import { noColour, type Paint } from './colour.js';
import { describeEvent, formatSummary } from './format.js';

type Write = (text: string) => void;

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
