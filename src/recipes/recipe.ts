import type { Step } from '../commands/command.js';
import type { HostSession } from '../exec/executor.js';
import type { OperationContext } from '../deploy/context.js';

/** The roles deployed as one service per host (the fleet has its own rolling runner). */
export type ServiceRoleName = 'api' | 'dialler' | 'console';

/** What makes one role's release live, and how to tell it worked. The runner does the rest. */
export interface RoleRecipe {
  role: ServiceRoleName;
  /** the checkout */
  path: string;
  repo: { repo: string; localRepo?: string };
  install: Step;
  /** host-owned paths beyond the defaults: an rsync push never touches them */
  preserve: readonly string[];
  minFreeDiskMb: number;
  /** activate() puts the previous release back by itself when it fails (the console flips back) */
  restoresItself: boolean;
  /** the deployed tag as the host records it */
  readTag(session: HostSession): Promise<string | null>;
  /** read-only checks before anything changes */
  inspect(session: HostSession): Promise<{ problems: string[]; warnings: string[] }>;
  /** a kept release of this tag, for a rollback that needs neither checkout nor build */
  keptRelease?(session: HostSession, tag: string): Promise<string | undefined>;
  /** make the placed and built release live and prove it; HealthGateError when it does not come up */
  activate(ctx: OperationContext, session: HostSession, release: ActivateRelease): Promise<ActivateResult>;
  /** the commands activate() runs, for --dry-run */
  planActivate(tag: string): Step[];
}

export interface ActivateRelease {
  tag: string;
  /** absent when a kept release is activated without a checkout */
  commit?: string;
  kept?: string;
  /** the rollback path: no waiting on leases, no second chances */
  restoring?: boolean;
}

export interface ActivateResult {
  /** how long nothing served (restart -> healthy), when the role has one process */
  downtimeMs?: number;
  message: string;
}
