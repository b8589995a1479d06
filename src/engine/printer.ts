import { acquireLock, appendHistory, releaseOwnLock } from '../commands/state.js';
import type { Reporter } from '../events.js';
import { renderCommand } from '../exec/render.js';
import type { HostPlan, PlanLine } from '../roles/contract.js';

/**
 * The one dry-run printer: every step a change would run on a host, between the lock it would take
 * and the history line it would write, as the exact string SSH would send.
 */
export function printPlan(reporter: Reporter, plan: HostPlan, action: string, lines: readonly PlanLine[]): void {
  const host = plan.host.name;
  const show = (line: PlanLine) => {
    if ('note' in line) reporter.emit({ type: 'info', host, message: line.note });
    else
      reporter.emit({
        type: 'command',
        host,
        step: line.step.name,
        command: `${line.prefix ?? ''}${line.text ?? renderCommand(line.step.command)}`,
      });
  };
  reporter.emit({ type: 'info', host, message: `plan: ${plan.from ?? '(no tag)'} -> ${plan.to}` });
  if (plan.noop) {
    reporter.emit({ type: 'info', host, message: `nothing to do: ${plan.noop}` });
    return;
  }
  const holder = { id: '<id>', user: '<you>', machine: '<this machine>', pid: 0, startedAt: '<now>', action };
  show({ step: acquireLock(holder) });
  lines.forEach(show);
  show({
    step: appendHistory({
      at: '<now>',
      host,
      role: '<role>',
      action: 'deploy',
      from: plan.from,
      to: plan.to,
      outcome: 'success',
      durationMs: 0,
      user: '<you>',
    }),
  });
  show({ step: releaseOwnLock('<id>') });
}
