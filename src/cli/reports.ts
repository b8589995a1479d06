import { errorOf, exitCodeOf } from '../engine/summary.js';
import type { OperationSummary, Reporter } from '../events.js';
import { writeReports } from '../report/report.js';

/**
 * Run a command that changes hosts; with --report, write the reports of the summary it ended with
 * (a multi-role run's last summary covers every role), whatever the outcome. An error before any
 * summary (bad arguments, an unknown host) still gets a report that says so.
 */
export async function withReports(reporter: Reporter, dir: string | undefined, what: { operation: string; role: string }, work: (reporter: Reporter) => Promise<void>): Promise<void> {
  let last: OperationSummary | undefined;
  const capturing: Reporter = {
    emit: (event) => {
      if (event.type === 'summary') last = event.summary;
      reporter.emit(event);
    },
    close: () => reporter.close(),
  };
  const startedAt = Date.now();
  try {
    await work(capturing);
  } catch (error) {
    last ??= { ...what, startedAt: new Date(startedAt).toISOString(), durationMs: Date.now() - startedAt, exitCode: exitCodeOf(error), error: errorOf(error), hosts: [], workers: [] };
    throw error;
  } finally {
    if (dir && last) {
      try {
        const files = writeReports(dir, last);
        reporter.emit({ type: 'info', message: `reports: ${files.join(', ')}` });
      } catch (error) {
        // the run's own outcome is what the exit code and the last line must say
        reporter.emit({ type: 'warning', message: `could not write the reports to ${dir}: ${(error as Error).message}` });
      }
    }
  }
}
