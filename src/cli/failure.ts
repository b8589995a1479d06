import { ExitCode, HealthGateError, ProblemListError, VoxopsError } from '../errors.js';
import { noColour, type Paint } from './colour.js';

/** The one error a run ends with, as --json reports it: the same facts as the text line, on stderr. */
export interface ErrorFacts {
  exitCode: number;
  message: string;
  next: string | null;
  problems: string[];
  journal?: { host: string; worker?: number; text: string };
  stack?: string;
}

/** Where an error names no next step of its own, its exit code still points somewhere useful. */
const DEFAULT_NEXT: Partial<Record<number, string>> = {
  [ExitCode.usage]: 'voxops --help',
  [ExitCode.lockHeld]: 'voxops lock status shows who holds it and when it frees itself',
  [ExitCode.healthGate]: 'voxops status, then voxops logs ROLE --host H for the failed unit',
  [ExitCode.remoteCommand]: 'voxops status shows what each host serves now; fix what failed, then re-run',
  [ExitCode.unreachable]: 'check the host answers: ssh to it, then voxops status',
  [ExitCode.preflight]: 'fix the problems listed, then re-run',
  [ExitCode.rollbackFailed]: 'voxops status now: the host needs a human (runbooks/rollback.md)',
  [ExitCode.drainTimeout]: 'voxops status shows the workers still in a call; re-run when they end',
  [ExitCode.unhealthy]: 'voxops status shows which hosts and workers',
  [ExitCode.configRejected]: 'the old config is still loaded: fix what was rejected (above), then re-run',
  [ExitCode.interrupted]: 'voxops status shows where each host stopped',
  [ExitCode.terminated]: 'voxops status shows where each host stopped',
};

function errorFacts(error: unknown, verbose: boolean): ErrorFacts {
  const stack = verbose && error instanceof Error && error.stack ? { stack: error.stack } : {};
  if (!(error instanceof VoxopsError)) {
    return {
      exitCode: ExitCode.internal,
      message: `internal error: ${(error as Error)?.message ?? String(error)}`,
      next: 're-run with --verbose and report it',
      problems: [],
      ...stack,
    };
  }
  const journal =
    error instanceof HealthGateError && error.details.journal
      ? {
          journal: {
            host: error.details.host,
            ...(error.details.worker !== undefined ? { worker: error.details.worker } : {}),
            text: error.details.journal,
          },
        }
      : {};
  return {
    exitCode: error.exitCode,
    message: error.message,
    next: error.next ?? DEFAULT_NEXT[error.exitCode] ?? null,
    problems: error instanceof ProblemListError ? error.problems : [],
    ...journal,
    ...stack,
  };
}

/** The error as one line: what happened, then what to run next. */
export function errorLine(facts: ErrorFacts, paint: Paint = noColour): string {
  // "did you mean deploy?" needs no full stop after it
  const joint = /[.?!]$/.test(facts.message) ? ' ' : '. ';
  return `${paint('error', `voxops: ${facts.message}`)}${facts.next ? `${joint}Next: ${facts.next}` : ''}`;
}

/** The only place that prints an error: one line of what happened and what to run next, details under it. */
export function printFailure(
  write: (text: string) => void,
  error: unknown,
  options: { verbose: boolean; json: boolean; paint: Paint },
): number {
  const facts = errorFacts(error, options.verbose);
  if (options.json) {
    write(`${JSON.stringify(facts)}\n`);
    return facts.exitCode;
  }
  write(`${errorLine(facts, options.paint)}\n`);
  for (const problem of facts.problems) write(`  - ${problem.replace(/\n/g, '\n  - ')}\n`);
  if (facts.journal) {
    const whose = facts.journal.worker !== undefined ? `${facts.journal.host} worker ${facts.journal.worker}` : facts.journal.host;
    write(`  journal of ${whose}:\n${facts.journal.text.replace(/^/gm, '    ')}\n`);
  }
  if (facts.stack) write(`${facts.stack}\n`);
  return facts.exitCode;
}
