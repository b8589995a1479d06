import type { RoleName } from '../config/schema.js';
import { ExitCode, InterruptedError, VoxopsError } from '../errors.js';
import type { OperationContext } from './context.js';
import type { OperationSummary } from './events.js';
import { summarise } from './operation.js';

/** The platform's deploy order: control plane, console, the fleet that takes calls, the dialler that places them. */
export const DEPLOY_ORDER = ['api', 'console', 'fleet', 'dialler'] as const satisfies readonly RoleName[];

export interface RoleStep {
  role: string;
  /** runs the role with the context it is given (whose reporter collects the role's summary) */
  run: (ctx: OperationContext) => Promise<unknown>;
}

/**
 * Run roles one after another; a role never starts while the one before it has failed. The error
 * that stopped the run is rethrown with what was done and what was not, so the operator knows
 * which roles run the new release.
 */
export async function runInOrder(ctx: OperationContext, steps: readonly RoleStep[], what: string): Promise<OperationSummary[]> {
  const summaries: OperationSummary[] = [];
  const capturing: OperationContext = {
    ...ctx,
    reporter: {
      emit: (event) => {
        if (event.type === 'summary') summaries.push(event.summary);
        ctx.reporter.emit(event);
      },
      close: () => ctx.reporter.close(),
    },
  };
  const startedAt = Date.now();
  if (steps.length > 1 && !ctx.dryRun) await preflightAll(ctx, steps, what);
  const done: string[] = [];
  for (const [i, step] of steps.entries()) {
    const notStarted = steps.slice(i + 1).map((s) => s.role);
    const context = (failed: string) =>
      `${failed}${done.length ? ` after ${done.join(', ')} succeeded` : ''}${notStarted.length ? `; not started: ${notStarted.join(', ')}` : ''}`;
    try {
      if (ctx.signal.aborted) {
        throw new InterruptedError(`${what}: interrupted before ${step.role}${done.length ? `; done: ${done.join(', ')}` : ''}; not started: ${[step.role, ...notStarted].join(', ')}`, {
          next: 'voxops status',
        });
      }
      ctx.reporter.emit({ type: 'info', message: `${what}: ${step.role} (${i + 1} of ${steps.length})` });
      await step.run(capturing);
      done.push(step.role);
    } catch (error) {
      if (error instanceof VoxopsError && !(error instanceof InterruptedError && error.message.startsWith(what))) {
        Object.defineProperty(error, 'message', { value: `${what}: ${context(`${step.role} failed`)}: ${error.message}` });
      }
      if (steps.length > 1) ctx.reporter.emit({ type: 'summary', summary: mergeSummaries(summaries, startedAt, error instanceof VoxopsError ? error.exitCode : ExitCode.internal) });
      throw error;
    }
  }
  // the last event of a multi-role run covers every role (what --json consumers and --report read)
  if (steps.length > 1) ctx.reporter.emit({ type: 'summary', summary: mergeSummaries(summaries, startedAt) });
  return summaries;
}

/**
 * Every role's read-only preflight (a dry run: tags, disks, health, last-known-good) before the first
 * role changes anything, so a problem in the third role does not stop a run half-way. Locks are
 * only looked at here; each role takes its own when its turn comes.
 */
async function preflightAll(ctx: OperationContext, steps: readonly RoleStep[], what: string): Promise<void> {
  const quiet: OperationContext = { ...ctx, dryRun: true, reporter: { emit: () => {}, close: async () => {} } };
  const started = Date.now();
  for (const step of steps) {
    try {
      await step.run(quiet);
    } catch (error) {
      if (error instanceof VoxopsError) {
        Object.defineProperty(error, 'message', { value: `${what}: preflight of ${step.role} refused, before any role was changed: ${error.message}` });
      }
      throw error;
    }
  }
  ctx.reporter.emit({ type: 'info', message: `${what}: preflight of ${steps.map((s) => s.role).join(', ')} passed in ${((Date.now() - started) / 1000).toFixed(1)} s` });
}

/** One summary for a multi-role run, so --report covers all of it. */
export function mergeSummaries(summaries: readonly OperationSummary[], startedAt: number, exitCode: number = ExitCode.ok): OperationSummary {
  return summarise({
    operation: summaries[0]?.operation ?? 'deploy',
    role: 'all',
    tag: summaries[0]?.tag,
    startedAt,
    exitCode,
    hosts: summaries.flatMap((s) => s.hosts),
    workers: summaries.flatMap((s) => s.workers),
  });
}
