import { appendHistory, parseHistory, readHistory, type HistoryEntry } from '../commands/state.js';
import type { RoleName } from '../config/schema.js';
import { PreflightError } from '../errors.js';
import type { Step } from '../commands/command.js';
import type { HostSession } from '../exec/executor.js';
import type { OperationContext } from './context.js';
import type { HostOutcome, OperationSummary, WorkerTimeline } from './events.js';
import { lastKnownGood } from './history.js';

/** No host of the role has a last-known-good: voxops never deployed it twice (a bare rollback skips it). */
export class NoLastKnownGoodError extends PreflightError {}

/** Bare `rollback`: every host's last-known-good, from its own history. They must agree. */
export async function resolveLastKnownGood(
  sessions: HostSession[],
  role: RoleName,
  readTag: (session: HostSession) => Promise<string | null>,
): Promise<string> {
  const found = await Promise.all(
    sessions.map(async (s) => {
      const [history, current] = await Promise.all([s.run(readHistory(500)), readTag(s)]);
      return { host: s.host.name, lkg: lastKnownGood(parseHistory(history.stdout), role, current) };
    }),
  );
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

export async function recordHistory(ctx: OperationContext, session: HostSession, entry: HistoryEntry): Promise<void> {
  try {
    await session.run(appendHistory(entry));
  } catch (error) {
    ctx.reporter.emit({ type: 'warning', host: entry.host, message: `could not record history: ${(error as Error).message}` });
  }
}

/** The one shape every operation ends with (the last event, and what --report writes). */
export function summarise(fields: {
  operation: string;
  role: string;
  tag?: string | undefined;
  startedAt: number;
  exitCode: number;
  hosts: Iterable<HostOutcome>;
  workers?: WorkerTimeline[];
}): OperationSummary {
  return {
    operation: fields.operation,
    role: fields.role,
    ...(fields.tag ? { tag: fields.tag } : {}),
    startedAt: new Date(fields.startedAt).toISOString(),
    durationMs: Date.now() - fields.startedAt,
    exitCode: fields.exitCode,
    hosts: [...fields.hosts],
    workers: fields.workers ?? [],
  };
}

/** Do one piece of work on a host, reported as a step with its duration. */
export async function timed<T>(ctx: OperationContext, host: string, name: string, work: () => Promise<T>): Promise<T> {
  const started = Date.now();
  ctx.reporter.emit({ type: 'step', host, step: name, status: 'start' });
  const result = await work();
  ctx.reporter.emit({ type: 'step', host, step: name, status: 'done', durationMs: Date.now() - started });
  return result;
}

/** Run one step on a host, reported with its duration. */
export function runStep(ctx: OperationContext, session: HostSession, step: Step) {
  return timed(ctx, session.host.name, step.name, () => session.run(step));
}
