import type { RoleName } from '../config/schema.js';
import { ExitCode, VoxopsError } from '../errors.js';
import type { OperationContext } from './context.js';
import type { OperationSummary } from './events.js';
import { summarise } from './operation.js';

/** The platform's deploy order: control plane, console, the fleet that takes calls, the dialler that places them. */
export const DEPLOY_ORDER = ['api', 'console', 'fleet', 'dialler'] as const satisfies readonly RoleName[];

export interface RoleStep {
  role: string;
  run: () => Promise<OperationSummary | void>;
}

/**
 * Run roles one after another; a role never starts while the one before it has failed. The error
 * that stopped the run is rethrown with what was done and what was not, so the operator knows
 * which roles run the new release.
 */
export async function runInOrder(ctx: OperationContext, steps: readonly RoleStep[], what: string): Promise<OperationSummary[]> {
  const summaries: OperationSummary[] = [];
  const done: string[] = [];
  for (const [i, step] of steps.entries()) {
    ctx.reporter.emit({ type: 'info', message: `${what}: ${step.role} (${i + 1} of ${steps.length})` });
    try {
      const summary = await step.run();
      if (summary) summaries.push(summary);
      done.push(step.role);
    } catch (error) {
      const notStarted = steps.slice(i + 1).map((s) => s.role);
      if (error instanceof VoxopsError) {
        const context = `${step.role} failed${done.length ? ` after ${done.join(', ')} succeeded` : ''}${notStarted.length ? `; not started: ${notStarted.join(', ')}` : ''}`;
        Object.defineProperty(error, 'message', { value: `${what}: ${context}: ${error.message}` });
      }
      throw error;
    }
  }
  return summaries;
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
