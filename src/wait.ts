import type { Clock } from './clock.js';

/**
 * The one wait loop behind every drain, gate and verify: probe, stop when `until` says so, else
 * give up at the deadline or on abort, else sleep and probe again. Probing comes first, so a
 * condition that already holds costs one probe and no sleep; a timeout still probes at the deadline.
 */
export interface PollOptions<T, R> {
  clock: Clock;
  probe: () => Promise<T>;
  /** a result ends the wait; undefined keeps waiting */
  until: (value: T, waitedMs: number) => R | undefined;
  timeoutMs: number;
  /** fixed, or by how long the wait has run (calls can last an hour: poll fast first, then back off) */
  intervalMs: number | ((waitedMs: number) => number);
  /** when aborted, the wait ends after the current probe with outcome 'aborted' */
  signal?: AbortSignal;
}

export type PollResult<T, R> =
  { outcome: 'done'; result: R; last: T; waitedMs: number } | { outcome: 'timeout' | 'aborted'; last: T; waitedMs: number };

export async function poll<T, R>(options: PollOptions<T, R>): Promise<PollResult<T, R>> {
  const { clock, signal } = options;
  const started = clock.now();
  for (;;) {
    const last = await options.probe();
    const waitedMs = clock.now() - started;
    const result = options.until(last, waitedMs);
    if (result !== undefined) return { outcome: 'done', result, last, waitedMs };
    if (signal?.aborted) return { outcome: 'aborted', last, waitedMs };
    if (waitedMs >= options.timeoutMs) return { outcome: 'timeout', last, waitedMs };
    const interval = typeof options.intervalMs === 'number' ? options.intervalMs : options.intervalMs(waitedMs);
    await clock.sleep(Math.min(interval, Math.max(1, options.timeoutMs - waitedMs)), signal);
  }
}
