import { UsageError } from '../errors.js';
import type { OperationContext } from './context.js';

export interface IngressDeployOptions {
  /** only these ingress hosts */
  hosts?: string[];
}

export interface IngressChangeOptions {
  action: 'add-fleet' | 'remove-fleet';
  url: string;
  drainTimeoutSeconds?: number;
}

/** `voxops deploy ingress` (placeholder until the ingress work lands). */
export async function runIngressDeploy(_ctx: OperationContext, _options: IngressDeployOptions): Promise<void> {
  throw new UsageError('deploy ingress is not implemented yet');
}

/** `voxops ingress add-fleet|remove-fleet URL` (placeholder until the ingress work lands). */
export async function runIngressChange(_ctx: OperationContext, _options: IngressChangeOptions): Promise<void> {
  throw new UsageError('ingress add-fleet/remove-fleet is not implemented yet');
}
