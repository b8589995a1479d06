import pLimit from 'p-limit';

/**
 * The order hosts change in. At most `parallel` at once; after the first failure, or once the
 * operator has asked to stop, no further host starts. Hosts already running finish (each stops at
 * its own safe point), then the first failure is rethrown. Returns the hosts that never started.
 */
export async function runHosts<T extends { host: { name: string } }>(
  plans: readonly T[],
  parallel: number,
  signal: AbortSignal,
  work: (plan: T) => Promise<void>,
): Promise<string[]> {
  const limit = pLimit(Math.max(1, parallel));
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
