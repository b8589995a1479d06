import type { Inventory } from '../../config/inventory.js';
import type { FleetRoleConfig } from '../../config/schema.js';
import { planWorkers, type WorkerPlan } from '../../plan/fleet.js';
import type { ReleaseSource, SourceChoice } from '../../release/source.js';
import type { HostFacts, HostPlan, Judgement, Note, OperationRequest } from '../contract.js';
import { isHealthy } from '../shared/health.js';
import { lowDisk, notAtReleaseTag, refusalNext, rollsForward, sourceFor } from '../shared/release-rules.js';
import { rerunCommand, resumable } from '../shared/rerun.js';
import { fleetConfig, workerCount } from './config.js';
import type { FleetHostFacts } from './facts.js';

export interface FleetPlan extends HostPlan, WorkerPlan {
  /**
   * How the tag reaches the host; absent for a rolling restart, which keeps the code as it is.
   * `installed`: a resumed change whose checkout and install already finished (nothing to place).
   */
  release?: { choice: SourceChoice; installed?: string };
  /** sockets a killed run left moved aside: put back (or their garbage removed) before the roll */
  leftovers: FleetHostFacts['leftovers'];
  schedule: 'call-aware' | 'one-at-a-time';
  /** after a batch is healthy, nginx takes it back only this much later (fail_timeout) */
  readmitDelayMs: number;
  /** what the call-aware schedule reads of nginx: its error log (from where), its fail_timeout */
  nginx: Pick<FleetHostFacts, 'failTimeoutSeconds' | 'errorLog' | 'errorLogSize'>;
}

export interface HostJudgement {
  problems: string[];
  warnings: string[];
  choice?: SourceChoice;
}

/** Turn one host's facts into refusals and warnings. Pure, so every rule has a unit test. */
export function judgeFleetFacts(
  facts: FleetHostFacts,
  role: FleetRoleConfig,
  options: { tag?: string | undefined; allowUnhealthy?: boolean; workers: number; source?: ReleaseSource },
): HostJudgement {
  const problems: string[] = [];
  const warnings: string[] = [];
  const host = facts.host;
  const push = (line: string | undefined, into = problems) => line && into.push(line);
  push(notAtReleaseTag(host, role.path, facts.currentTag));
  let choice: SourceChoice | undefined;
  if (options.tag && facts.tagLookup) {
    // the same choice the change will act on: a refusal here is a refusal before any lock is taken
    choice = sourceFor(host, options.tag, options.source ?? 'auto', facts.tagLookup);
    push(choice.problem);
    push(choice.warning, warnings);
  }
  push(lowDisk(host, role.path, facts.freeMb, role.minFreeDiskMb));
  for (const worker of facts.workers) {
    if (isHealthy(worker.health) && worker.health.body?.active_calls === undefined) {
      push(
        `${host}: worker ${worker.index} (${worker.unit}) answers /health without active_calls: voxops cannot tell when it is idle, so it would wait for it as for a call of unknown age`,
        options.allowUnhealthy ? warnings : problems,
      );
      continue;
    }
    if (isHealthy(worker.health)) continue;
    const why = worker.health.httpStatus ? `HTTP ${worker.health.httpStatus}` : (worker.health.error ?? 'no answer');
    push(
      `${host}: worker ${worker.index} (${worker.unit}, ${worker.active}) is unhealthy: ${why}`,
      options.allowUnhealthy ? warnings : problems,
    );
  }
  if (facts.symlinkedSockets.length > 0)
    push(
      `${host}: the socket of worker ${facts.symlinkedSockets.join(', ')} is a symlink: a drain would move the link, not the socket, so calls could still reach the worker; point the unit and nginx at the socket itself`,
    );
  for (const finding of facts.nginx) push(`${host}: nginx: ${finding.message}`, finding.level === 'error' ? problems : warnings);
  if (facts.countVariable !== undefined && facts.countVariable !== options.workers) {
    warnings.push(
      `${host}: ${role.workers.countVariable}=${facts.countVariable} on the host but the inventory configures ${options.workers} workers: if the host was scaled, set workers: ${facts.countVariable} for ${host} in the inventory; otherwise put the host back with voxops scale fleet --host ${host} --workers ${options.workers}`,
    );
  }
  return { problems, warnings, ...(choice ? { choice } : {}) };
}

/** Deploy, rollback and rolling restart of the fleet: every rule, for every host, then one plan per host. */
export function judgeFleet(
  all: readonly HostFacts<FleetHostFacts>[],
  request: OperationRequest,
  inventory: Inventory,
): Judgement<FleetPlan> {
  const role = fleetConfig(inventory);
  const restart = request.action === 'restart';
  const problems: string[] = [];
  const warnings: Note[] = [];
  const notes: Note[] = [];
  const plans = all.map(({ host, facts, progress: earlier }): FleetPlan => {
    const workers = workerCount(role, host);
    // a restart is how an unhealthy worker comes back, so it never refuses one
    const judged = judgeFleetFacts(facts, role, {
      tag: request.tag,
      workers,
      source: request.source,
      allowUnhealthy: request.allowUnhealthy || restart,
    });
    problems.push(...judged.problems);
    warnings.push(...judged.warnings.map((message) => ({ host: host.name, message })));
    if (request.action === 'rollback' && request.tag) {
      const forward = rollsForward(host.name, request.tag, facts.currentTag, request.force);
      if (forward.problem) problems.push(forward.problem);
      if (forward.warning) warnings.push({ host: host.name, message: forward.warning });
    }
    for (const index of request.workers ?? []) {
      if (index > workers) problems.push(`${host.name}: there is no worker ${index} (the host has ${workers})`);
    }
    const schedule = request.schedule ?? role.roll.schedule;
    const pacing =
      schedule === 'call-aware'
        ? `; call-aware: each worker the moment it is idle${facts.failTimeoutSeconds ? `, a worker nginx shuts out counts as busy for ${facts.failTimeoutSeconds}s` : ''}`
        : facts.failTimeoutSeconds
          ? `; nginx fail_timeout paces the roll: ${facts.failTimeoutSeconds}s per worker (max_fails=0 on the upstream servers removes it)`
          : '';
    notes.push({
      host: host.name,
      message: `on ${facts.currentTag ?? '(no tag)'}, ${facts.workers.length} workers, ${facts.freeMb ?? '?'} MiB free${pacing}`,
    });
    const to = restart ? (facts.currentTag ?? '(no tag)') : request.tag!;
    const resume = resumable(earlier, request, to);
    if (earlier && !resume) {
      warnings.push({
        host: host.name,
        message: `an earlier ${earlier.action} of ${earlier.to} (from ${earlier.from ?? '(no tag)'}, started ${earlier.startedAt}) stopped part-way here; ${rerunCommand({ action: earlier.action, role: 'fleet' }, earlier.to, { resume: true })} continues it`,
      });
    }
    // a host that finished before the run stopped has no record left: resuming must not roll it again
    const finished =
      request.resume === true &&
      !earlier &&
      facts.currentTag === to &&
      facts.leftovers.moved.length === 0 &&
      facts.workers.every((w) => isHealthy(w.health) && w.health.body?.version === to);
    if (request.resume && !earlier && !finished) notes.push({ host: host.name, message: 'nothing to resume here: an ordinary run' });
    const moved = facts.leftovers.moved;
    if (moved.length > 0)
      warnings.push({
        host: host.name,
        message: `worker ${moved.join(', ')} left moved aside by an interrupted run: put back in rotation before the roll`,
      });
    // resuming: the workers that already serve the tag (and are not moved aside) are done
    const done = resume
      ? facts.workers.filter((w) => isHealthy(w.health) && w.health.body?.version === to && !moved.includes(w.index)).map((w) => w.index)
      : [];
    const only = (request.workers ?? facts.workers.map((w) => w.index)).filter((i) => !done.includes(i));
    if (resume)
      notes.push({
        host: host.name,
        message: `resuming the ${earlier!.action} to ${to} from ${earlier!.from ?? '(no tag)'}: ${done.length} worker(s) already on it${earlier!.installed && facts.currentTag === to ? ', its install done' : ''}`,
      });
    const installed = resume && earlier!.installed && facts.currentTag === to ? { installed: earlier!.installed } : {};
    return {
      host,
      from: resume ? earlier!.from : facts.currentTag,
      to,
      ...planWorkers(role, host, { batch: request.batch ?? 1, workers: only }),
      ...(restart ? {} : { release: { choice: judged.choice ?? sourceFor(host.name, to, request.source, undefined), ...installed } }),
      leftovers: facts.leftovers,
      schedule,
      readmitDelayMs: facts.failTimeoutSeconds * 1000,
      nginx: { failTimeoutSeconds: facts.failTimeoutSeconds, errorLog: facts.errorLog, errorLogSize: facts.errorLogSize },
      ...(finished ? { noop: `every worker already serves ${to}` } : {}),
    };
  });
  const rerun = rerunCommand(request, request.tag);
  const next = refusalNext(problems, role.repo, rerun, 'fix the problems above (voxops status fleet shows the fleet), then re-run');
  return { plans, problems, warnings, notes, next };
}
