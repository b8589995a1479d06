import { UsageError } from '../errors.js';
import type { OperationContext } from './context.js';

export interface ScaleOptions {
  /** the fleet host, by inventory name */
  host: string;
  workers: number;
  drainTimeoutSeconds?: number;
}

/** `voxops scale fleet --host H --workers N` (placeholder until the scale work lands). */
export async function runScale(_ctx: OperationContext, _options: ScaleOptions): Promise<void> {
  throw new UsageError('scale is not implemented yet');
}
