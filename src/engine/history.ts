import { parseHistory, readHistory, type HistoryEntry } from '../commands/state.js';
import type { RoleName } from '../config/schema.js';
import { isValidTag } from '../commands/tag.js';
import { PreflightError } from '../errors.js';
import type { HostContext } from '../roles/contract.js';

/**
 * Last-known-good: the release that ran before the current one was deployed. Walk back to the
 * newest successful deploy that brought the current tag and take its `from`. A rollback does not
 * make the release it left "good" again, so `rollback` twice walks further back, never forward.
 */
export function lastKnownGood(history: readonly HistoryEntry[], role: string, current: string | null): string | undefined {
  if (!current || !isValidTag(current)) return undefined;
  for (let i = history.length - 1; i >= 0; i--) {
    const entry = history[i]!;
    if (entry.role !== role || entry.outcome !== 'success' || entry.action !== 'deploy') continue;
    // a history line is text on the host: only a release tag can become a rollback target
    if (entry.to === current && typeof entry.from === 'string' && isValidTag(entry.from) && entry.from !== current) return entry.from;
  }
  return undefined;
}

/** No host of the role has a last-known-good: voxops never deployed it twice (a bare rollback skips it). */
export class NoLastKnownGoodError extends PreflightError {}

export async function readLastKnownGood(host: HostContext, role: RoleName, current: string | null): Promise<string | undefined> {
  const history = await host.run(readHistory(500));
  return lastKnownGood(parseHistory(history.stdout), role, current);
}

/** Pure: every host's last-known-good must exist and agree, or the rollback is refused. */
export function agreeOnLastKnownGood(role: RoleName, found: readonly { host: string; lkg: string | undefined }[]): string {
  const unknown = found.filter((f) => !f.lkg).map((f) => f.host);
  if (unknown.length > 0) {
    const ErrorClass = unknown.length === found.length ? NoLastKnownGoodError : PreflightError;
    throw new ErrorClass(`no last-known-good release in the history of ${unknown.join(', ')}; nothing was changed`, [], {
      next: `name the release: voxops rollback ${role} --to <tag> (voxops history shows what ran)`,
    });
  }
  const tags = [...new Set(found.map((f) => f.lkg!))];
  if (tags.length > 1) {
    throw new PreflightError(`the ${role} hosts disagree on last-known-good; nothing was changed`, found.map((f) => `${f.host}: ${f.lkg}`), {
      next: `pick one: voxops rollback ${role} --to <tag>`,
    });
  }
  return tags[0]!;
}
