import type { Step } from '../exec/command.js';
import type { FleetRoleConfig } from '../config/schema.js';
import type { Host } from '../config/inventory.js';
import { checkoutTag, fetchTags, headAndTagCommits, install } from '../commands/git.js';
import { journalTail, restartUnit } from '../commands/systemd.js';
import {
  drainedSocket,
  drainWorker,
  probeHealth,
  removeDrainedSocket,
  undrainWorker,
  workerSocket,
  workerUnit,
} from '../commands/worker.js';

/** Every command one worker's roll needs, in the order the runner uses them. */
export interface WorkerSteps {
  index: number;
  unit: string;
  socket: string;
  drain: Step;
  /** health over the moved socket: is the old process idle yet? */
  probeDrained: Step;
  restart: Step;
  /** health over the real socket path: is the new process serving? */
  probeLive: Step;
  cleanup: Step;
  undrain: Step;
  journal: Step;
}

/** The commands that put a tag into a checkout by git, and install it (what a dry run lists). */
export interface ReleaseSteps {
  fetch: Step;
  checkout: Step;
  verify: Step;
  install: Step;
}

/** Which workers roll, in which groups, and each one's commands. */
export interface WorkerPlan {
  /** worker indices, grouped: each group is drained and restarted together */
  batches: number[][];
  workers: WorkerSteps[];
}

export function workerIndices(count: number): number[] {
  return Array.from({ length: count }, (_, i) => i + 1);
}

/**
 * Group workers so that at most `batchSize` are out of rotation at once, and never so many that
 * fewer than `minInService` stay in. A batch of 1 is the zero-downtime default.
 */
export function planWorkerBatches(indices: readonly number[], batchSize: number, minInService = 1): number[][] {
  const size = Math.max(1, Math.min(batchSize, indices.length - minInService));
  const batches: number[][] = [];
  for (let i = 0; i < indices.length; i += size) batches.push(indices.slice(i, i + size));
  return batches;
}

export function releaseSteps(role: Pick<FleetRoleConfig, 'path' | 'install'>, tag: string): ReleaseSteps {
  return {
    fetch: fetchTags(role.path),
    checkout: checkoutTag(role.path, tag),
    verify: headAndTagCommits(role.path, tag),
    install: install(role.path, role.install),
  };
}

export function workerSteps(role: FleetRoleConfig, index: number): WorkerSteps {
  const unit = workerUnit(role.workers.unit, index);
  const socket = workerSocket(role.workers.socket, index);
  return {
    index,
    unit,
    socket,
    drain: drainWorker(socket),
    probeDrained: probeHealth(drainedSocket(socket), role.health.path),
    restart: restartUnit(unit),
    probeLive: probeHealth(socket, role.health.path),
    cleanup: removeDrainedSocket(socket),
    undrain: undrainWorker(socket),
    journal: journalTail(unit, 30),
  };
}

export function planWorkers(role: FleetRoleConfig, host: Host, options: { batch: number; workers?: readonly number[] }): WorkerPlan {
  const indices = options.workers ?? workerIndices(host.workers ?? role.workers.count);
  return { batches: planWorkerBatches(indices, options.batch), workers: indices.map((i) => workerSteps(role, i)) };
}
