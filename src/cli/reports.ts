import { errorOf, exitCodeOf } from '../engine/summary.js';
import type { OperationSummary, Reporter } from '../events.js';
import type { Inventory } from '../config/inventory.js';

/**
 * Run a command that changes hosts; with --report, write the reports of the summary it ended with
 * (a multi-role run's last summary covers every role), whatever the outcome. An error before any
 * summary (bad arguments, an unknown host) still gets a report that says so.
 */
export async function withReports(
  reporter: Reporter,
  dir: string | undefined,
  what: { operation: string; role: string },
  inventory: Inventory,
  work: (reporter: Reporter) => Promise<void>,
): Promise<void> {
  // the picture draws a failed gate's wait up to each role's gate timeout
  const fleet = inventory.roles.fleet?.health.gateTimeoutSeconds;
  const gateTimeoutMs: Record<string, number> = {
    ...(fleet ? { fleet: fleet * 1000 } : {}),
    ...Object.fromEntries((['api', 'dialler'] as const).flatMap((role) => (inventory.roles[role] ? [[role, inventory.roles[role]!.health.gateTimeoutSeconds * 1000]] : []))),
  };
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
      // xmlbuilder2 and the SVG renderer load only for a run that writes reports
      const { writeReports } = await import('../report/report.js');
      // a report that cannot be written is a warning: the run's own outcome is what the exit code says
      const files = writeReports(dir, last, { gateTimeoutMs });
      if (files.length > 0) reporter.emit({ type: 'info', message: `reports: ${files.join(', ')}` });
      if (files.problem) reporter.emit({ type: 'warning', message: files.problem });
    }
  }
}
