import type { HistoryEntry } from '../commands/state.js';

/**
 * Last-known-good: the release that ran before the current one was deployed. Walk back to the
 * newest successful deploy that brought the current tag and take its `from`. A rollback does not
 * make the release it left "good" again, so `rollback` twice walks further back, never forward.
 */
export function lastKnownGood(history: readonly HistoryEntry[], role: string, current: string | null): string | undefined {
  if (!current) return undefined;
  for (let i = history.length - 1; i >= 0; i--) {
    const entry = history[i]!;
    if (entry.role !== role || entry.outcome !== 'success' || entry.action !== 'deploy') continue;
    if (entry.to === current && entry.from && entry.from !== current) return entry.from;
  }
  return undefined;
}
