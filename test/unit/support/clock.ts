import type { Clock } from '../../../src/clock.js';

/**
 * Virtual time for a scripted run. `sleep(ms)` moves `now()` forward by `ms` at once and resolves
 * on the next macrotask (so other work interleaves as it would), or at once when `signal` aborts.
 * The simulator advances it too, e.g. by curl's --max-time when a worker hangs.
 */
export class VirtualClock implements Clock {
  private current: number;
  /** every ms slept, for "how long would this have taken" */
  slept = 0;

  constructor(start = Date.parse('2025-06-02T09:00:00.000Z')) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  advance(ms: number): void {
    this.current += Math.max(0, ms);
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.resolve();
    this.advance(ms);
    this.slept += Math.max(0, ms);
    return new Promise((resolve) => {
      const done = () => {
        clearImmediate(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setImmediate(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }
}
