import pLimit from 'p-limit';
import { ExitCode, VoxopsError } from '../errors.js';

/** `--parallel auto` changes this many hosts at once, at most: each keeps its own floor of free workers. */
export const AUTO_PARALLEL = 8;

/**
 * Which failure of several hosts the run ends with: the one that leaves the fleet worst off comes
 * first (a rollback that failed, then a failed gate, a lost host, a failed command...); an
 * interruption, which every host then reports, comes last.
 */
const SEVERITY: readonly number[] = [
  ExitCode.rollbackFailed,
  ExitCode.healthGate,
  ExitCode.unreachable,
  ExitCode.remoteCommand,
  ExitCode.lockHeld,
  ExitCode.configRejected,
  ExitCode.drainTimeout,
  ExitCode.internal,
];

function severity(error: unknown): number {
  const code = error instanceof VoxopsError ? error.exitCode : ExitCode.internal;
  const rank = SEVERITY.indexOf(code);
  return rank < 0 ? SEVERITY.length : rank;
}

/** The failure to report of several: the most severe; of equals, the first. */
export function worstFailure(errors: readonly unknown[]): unknown {
  return errors.reduce((worst, e) => (severity(e) < severity(worst) ? e : worst), errors[0]);
}

/**
 * The order hosts change in. At most `parallel` at once; after the first failure, or once the
 * operator has asked to stop, no further host starts. Hosts already running finish (each stops at
 * its own safe point), then the worst failure is rethrown. Returns the hosts that never started.
 */

export async function runHosts<T extends { host: { name: string } }>(
  plans: readonly T[],
  parallel: number | 'auto',
  signal: AbortSignal,
  work: (plan: T) => Promise<void>,
): Promise<string[]> {
  const limit = pLimit(parallel === 'auto' ? AUTO_PARALLEL : Math.max(1, parallel));
  const notStarted: string[] = [];
  let failed = false;
  const results = await Promise.allSettled(
    plans.map((plan) =>
      limit(async () => {
        if (failed || signal.aborted) {
          notStarted.push(plan.host.name);
          return;
        }
        try {
          await work(plan);
        } catch (error) {
          failed = true;
          throw error;
        }
      }),
    ),
  );
  const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
  if (failures.length > 0) throw worstFailure(failures);
  return notStarted;
}
