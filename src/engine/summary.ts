import { ExitCode, ProblemListError, VoxopsError } from '../errors.js';
import type { HostOutcome, OperationError, OperationSummary, WorkerTimeline } from '../events.js';

export function exitCodeOf(error: unknown): number {
  return error instanceof VoxopsError ? error.exitCode : ExitCode.internal;
}

/** The error as the CLI prints it, for the summary (and so for every report). */
export function errorOf(error: unknown): OperationError {
  if (!(error instanceof VoxopsError))
    return { message: `internal error: ${(error as Error)?.message ?? String(error)}`, next: 're-run with --verbose and report it' };
  return {
    message: error.message,
    ...(error.next ? { next: error.next } : {}),
    ...(error instanceof ProblemListError && error.problems.length > 0 ? { problems: error.problems } : {}),
  };
}

/** The one shape every operation ends with (the last event, and what --report writes). */
export function summarise(fields: {
  operation: string;
  role: string;
  tag?: string | undefined;
  startedAt: number;
  endedAt: number;
  error?: unknown;
  hosts: Iterable<HostOutcome>;
  workers?: readonly WorkerTimeline[];
}): OperationSummary {
  const failed = fields.error !== undefined;
  return {
    operation: fields.operation,
    role: fields.role,
    ...(fields.tag ? { tag: fields.tag } : {}),
    startedAt: new Date(fields.startedAt).toISOString(),
    durationMs: fields.endedAt - fields.startedAt,
    exitCode: failed ? exitCodeOf(fields.error) : ExitCode.ok,
    ...(failed ? { error: errorOf(fields.error) } : {}),
    hosts: [...fields.hosts],
    workers: [...(fields.workers ?? [])],
  };
}

/** One summary for a multi-role run, so --report covers all of it. */
export function mergeSummaries(
  operation: string,
  summaries: readonly OperationSummary[],
  startedAt: number,
  endedAt: number,
  error?: unknown,
): OperationSummary {
  return summarise({
    operation,
    role: 'all',
    tag: summaries[0]?.tag,
    startedAt,
    endedAt,
    ...(error !== undefined ? { error } : {}),
    hosts: summaries.flatMap((s) => s.hosts),
    workers: summaries.flatMap((s) => s.workers),
  });
}
