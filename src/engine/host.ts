import type { Step } from '../exec/command.js';
import type { WorkerTimeline } from '../events.js';
import type { HostSession } from '../exec/executor.js';
import type { ReleaseWorkspace } from '../release/workspace.js';
import type { HostContext } from '../roles/contract.js';
import type { OperationContext } from './context.js';

const neverAborts = new AbortController().signal;

/** A driver's view of one host: its session, and the operation's clock, signal and event stream. */
export function hostContext(
  ctx: OperationContext,
  session: HostSession,
  workspace: ReleaseWorkspace,
  record: (timeline: WorkerTimeline) => void,
  signal: AbortSignal = ctx.signal,
): HostContext {
  const name = session.host.name;
  const { reporter, clock } = ctx;
  const timed = async <T>(step: string, work: () => Promise<T>): Promise<T> => {
    const started = clock.now();
    reporter.emit({ type: 'step', host: name, step, status: 'start' });
    const result = await work();
    reporter.emit({ type: 'step', host: name, step, status: 'done', durationMs: clock.now() - started });
    return result;
  };
  const host: HostContext = {
    host: session.host,
    inventory: ctx.inventory,
    clock,
    signal,
    env: ctx.env,
    workspace,
    run: (step: Step) => session.run(step),
    step: (step: Step) => timed(step.name, () => session.run(step)),
    timed,
    emit: (event) => reporter.emit(event),
    info: (message) => reporter.emit({ type: 'info', host: name, message }),
    warn: (message) => reporter.emit({ type: 'warning', host: name, message }),
    worker: (worker, phase, message) => reporter.emit({ type: 'worker', host: name, worker, phase, ...(message ? { message } : {}) }),
    record,
    uninterruptible: () => hostContext(ctx, session, workspace, record, neverAborts),
    // outside a change there is nothing to record; changeHost gives each change its own
    recordProgress: async () => {},
  };
  return host;
}
