import type { Progress } from '../../commands/state.js';
import type { OperationRequest } from '../contract.js';

/** Roles whose change keeps a progress record on each host, so `--resume` can continue it. */
const RESUMABLE = new Set(['fleet']);

/**
 * The command line that runs a change again, as an operator would type it: every "Next:" that
 * names a re-run is built here, so none offers a flag its command does not take.
 * `resume`: continue where it stopped, where the role and action allow it.
 */
export function rerunCommand(
  request: Pick<OperationRequest, 'action' | 'role' | 'scaleTo' | 'url'>,
  tag: string | undefined,
  options: { resume?: boolean; host?: string } = {},
): string {
  const host = options.host ? ` --host ${options.host}` : '';
  switch (request.action) {
    case 'restart':
      return `voxops restart ${request.role}${host}`;
    case 'scale':
      return `voxops scale fleet --host ${options.host ?? 'H'} --workers ${request.scaleTo ?? 'N'}`;
    case 'add-fleet':
    case 'remove-fleet':
      return `voxops ingress ${request.action} ${request.url ?? 'URL'}`;
    case 'deploy':
    case 'rollback': {
      const target = tag ? ` ${request.action === 'rollback' ? '--to' : '--tag'} ${tag}` : '';
      const resume = options.resume && tag && RESUMABLE.has(request.role) ? ' --resume' : '';
      return `voxops ${request.action} ${request.role}${target}${resume}`;
    }
  }
}

/** A progress record this run may continue: --resume, the same role and action, to the same release. */
export function resumable(earlier: Progress | undefined, request: OperationRequest, to: string): boolean {
  return (
    request.resume === true &&
    earlier !== undefined &&
    earlier.role === request.role &&
    earlier.action === request.action &&
    earlier.to === to
  );
}
