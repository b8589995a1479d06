import pLimit from 'p-limit';

/**
 * The order hosts change in. At most `parallel` at once; after the first failure, or once the
 * operator has asked to stop, no further host starts. Hosts already running finish (each stops at
 * its own safe point), then the first failure is rethrown. Returns the hosts that never started.
 */
/** `--parallel auto` changes this many hosts at once, at most: each keeps its own floor of free workers. */
export const AUTO_PARALLEL = 8;

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
  const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (rejected) throw rejected.reason;
  return notStarted;
}
