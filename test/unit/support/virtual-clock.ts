import type { Clock } from '../../../src/clock.js';

/**
 * Time for unit tests: `sleep(ms)` moves virtual time forward by ms at once (on the next macrotask,
 * so other work interleaves as it would), so an hour-long drain timeout costs nothing.
 */
export class VirtualClock implements Clock {
  private t = Date.parse('2026-12-03T08:00:00Z');
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      setImmediate(() => {
        if (!signal?.aborted) this.t += Math.max(0, ms);
        resolve();
      });
    });
  }
}
