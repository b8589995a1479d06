import { buildsToPrune, hasBuild, listBuilds, pruneBuilds, restoreBuild, saveBuild } from '../../commands/build-cache.js';
import { install } from '../../commands/git.js';
import type { FleetRoleConfig } from '../../config/schema.js';
import { DrainTimeoutError, HealthGateError, InterruptedError, RemoteCommandError } from '../../errors.js';
import type { WorkerTimeline } from '../../events.js';
import { probeRound } from '../../commands/probe.js';
import { removeDrainedSocket, undrainWorker, workerSocket } from '../../commands/worker.js';
import { releaseSteps, workerSteps, type WorkerSteps } from '../../plan/fleet.js';
import { placeRelease } from '../../release/place.js';
import { chooseSource, lookUpTag, type SourceChoice } from '../../release/source.js';
import { rerunCommand } from '../shared/rerun.js';
import type { HostContext, OperationRequest, PlanLine, RoleDriver } from '../contract.js';
import { rollCallAware } from './call-aware.js';
import { callAwareSettings, fleetConfig, rollSettings } from './config.js';
import { inspectFleetHost, type FleetHostFacts, type TagSearch } from './facts.js';
import { judgeFleet, type FleetPlan } from './judge.js';
import { rollWorker, waitForReadmission } from './roll-worker.js';

/**
 * Deploy, rollback and rolling restart of the fleet share one shape: host by host, worker by
 * worker, each drained, waited on until its call ends, restarted and gated.
 */
export const fleetDriver: RoleDriver<FleetHostFacts, FleetPlan> = {
  role: 'fleet',
  actions: ['deploy', 'rollback', 'restart'],

  inspect(host, request) {
    const search: TagSearch =
      request.action === 'restart' || request.source === 'rsync' ? 'none' : request.action === 'rollback' ? 'local-then-origin' : 'origin';
    return inspectFleetHost(host, fleetConfig(host.inventory), request.tag, search);
  },

  judge: judgeFleet,

  describe(plan, request, inventory) {
    const role = fleetConfig(inventory);
    const lines: PlanLine[] = [{ note: `batches ${JSON.stringify(plan.batches)}` }];
    if (plan.release?.choice.source === 'rsync') {
      lines.push(
        { note: `rsync push of ${plan.to} from the local clone (git archive), host-owned paths untouched; then:` },
        { step: install(role.path, role.install) },
      );
    } else if (plan.release) {
      const steps = releaseSteps(role, plan.to);
      if (!plan.release.choice.skipFetch) lines.push({ step: steps.fetch });
      lines.push({ step: steps.checkout }, { step: steps.verify }, { step: steps.install });
    }
    if (plan.release && role.build) {
      lines.push({
        step: saveBuild('fleet', '<commit>', role.path, role.build.outputs),
        prefix: 'then, or instead of install when going back to a kept build: ',
      });
    }
    const settings = rollSettings(role, request, plan.to);
    if (plan.schedule === 'call-aware') {
      const aware = callAwareSettings(role, request, plan.host, plan.nginx, plan.to);
      const floor = aware.minFree === undefined ? 'a floor of free workers from live load (at least 1)' : `${aware.minFree} free worker(s)`;
      lines.push({
        note: `call-aware: workers ${plan.workers.map((w) => w.index).join(', ')}, each the moment it is idle, keeping ${floor}, at most ${aware.maxOut} out at once; busy workers are left alone (calls older than ${aware.maxCallAgeSeconds}s: ${aware.onDrainTimeout}); every ${aware.roundMs} ms one probe of every worker and of ${aware.errorLog}`,
      });
      lines.push({
        step: probeRound(
          plan.workers.map((x) => x.socket),
          aware.healthPath,
          aware.errorLog,
          aware.errorLogOffset,
        ),
        prefix: 'every round: ',
      });
      for (const w of plan.workers) {
        lines.push(
          { step: w.drain, prefix: `when worker ${w.index} is idle: ` },
          { step: w.probeDrained, prefix: 'still idle? ' },
          { step: w.restart },
          { step: w.probeLive, prefix: `until 200, version ${plan.to}, new pid (at most ${settings.gateTimeoutSeconds}s): ` },
          { step: w.cleanup },
        );
      }
      return lines;
    }
    for (const batch of plan.batches) {
      for (const index of batch) {
        const w = plan.workers.find((x) => x.index === index)!;
        lines.push(
          { step: w.drain },
          { step: w.probeDrained, prefix: `poll every ${settings.pollMs} ms until active_calls=0: ` },
          { step: w.restart },
          { step: w.probeLive, prefix: `poll until 200, version ${plan.to}, new pid (at most ${settings.gateTimeoutSeconds}s): ` },
          { step: w.cleanup },
        );
      }
      if (plan.readmitDelayMs > 0)
        lines.push({ note: `wait ${plan.readmitDelayMs / 1000}s: nginx fail_timeout keeps the worker out of rotation after its drain` });
    }
    return lines;
  },

  async prepare(plans, request, workspace, inventory) {
    // an rsync push's tree is built before any host changes: a tag missing from the local clone stops here
    if (request.tag && plans.some((p) => p.release?.choice.source === 'rsync'))
      await workspace.tree('fleet', fleetConfig(inventory), request.tag);
  },

  change(host, plan, request) {
    const role = fleetConfig(host.inventory);
    const name = host.host.name;
    const steps = (index: number) => plan.workers.find((w) => w.index === index)!;
    /** workers already restarted (or restarting) on the new release: a rollback must roll them back */
    const moved: number[] = [];
    return {
      async apply() {
        await putBackLeftovers(host, role, plan.leftovers);
        if (plan.release?.installed)
          host.info(`${plan.to} is checked out and installed already (${plan.release.installed.slice(0, 12)}): resuming with the workers`);
        else if (plan.release) {
          // an install from a record this run did not trust is not done: if this run dies mid-install,
          // the next --resume must install again
          await host.recordProgress({ installed: undefined });
          try {
            await placeFleetRelease(host, role, plan.release.choice, plan.to, request.action === 'rollback');
          } catch (error) {
            // nothing was restarted yet: every worker still serves the release it ran
            if (!(error instanceof RemoteCommandError)) throw error;
            const again = rerunCommand(request, plan.to, { resume: true });
            throw new RemoteCommandError(error.facts, {
              cause: error,
              next: `no worker was restarted, all still serve ${plan.from ?? 'the release they ran'}; fix what failed on ${name}, then: ${again}`,
            });
          }
        }
        const roll = async (): Promise<void> => {
          if (plan.schedule === 'call-aware') {
            await rollCallAware(host, plan.workers, callAwareSettings(role, request, plan.host, plan.nginx, plan.to), (index) =>
              moved.push(index),
            );
            return;
          }
          const settings = rollSettings(role, request, plan.to);
          const deferred: number[] = [];
          for (const batch of plan.batches) {
            if (host.signal.aborted) throw new InterruptedError(`interrupted: ${name} stopped between workers`);
            const results = await Promise.allSettled(batch.map((index) => rollWorker(host, steps(index), settings)));
            let firstError: unknown;
            const rolled: WorkerTimeline[] = [];
            results.forEach((result, n) => {
              const index = batch[n]!;
              if (result.status === 'rejected') {
                if (result.reason instanceof HealthGateError) moved.push(index);
                firstError ??= result.reason;
                return;
              }
              host.record(result.value);
              if (result.value.outcome === 'skipped') deferred.push(index);
              else moved.push(index);
              if (result.value.outcome === 'rolled') rolled.push(result.value);
            });
            await waitForReadmission(host, rolled, plan.readmitDelayMs);
            if (firstError) throw firstError;
          }
          for (const index of deferred) {
            const timeline = await rollWorker(host, steps(index), settings);
            host.record(timeline);
            if (timeline.outcome === 'skipped') {
              throw new DrainTimeoutError(
                `${name}: worker ${index} still held a call after two drain timeouts; it stays on ${plan.from} and serving`,
                {
                  next: `finish it when the call ends: voxops restart fleet --host ${name} --worker ${index}`,
                },
              );
            }
            moved.push(index);
            await waitForReadmission(host, [timeline], plan.readmitDelayMs);
          }
        };
        try {
          await roll();
        } catch (error) {
          throw withResumeNext(error, request, plan);
        }
        return { message: `${moved.length} workers on ${plan.to}` };
      },

      async undo(error) {
        if (!(error instanceof HealthGateError) || !plan.from) return undefined;
        host.emit({ type: 'host', host: name, phase: 'rolling-back', message: `back to ${plan.from}: workers ${moved.join(', ')}` });
        // No Ctrl-C and no skipping here: a half-finished rollback is the worst state to leave.
        const steady = host.uninterruptible();
        const back = async (roll: (workers: WorkerSteps[]) => Promise<void>) => rollBackHost(steady, role, plan.from!, moved, roll);
        if (plan.schedule === 'call-aware') {
          const settings = {
            ...callAwareSettings(role, request, plan.host, plan.nginx, plan.from),
            onDrainTimeout: 'wait' as const,
            rollingBack: true,
          };
          await back((workers) => rollCallAware(steady, workers, settings, () => {}));
        } else {
          const settings = { ...rollSettings(role, request, plan.from), onDrainTimeout: 'wait' as const };
          await back(async (workers) => {
            for (const steps of workers) {
              const timeline = { ...(await rollWorker(steady, steps, settings)), outcome: 'rolled-back' as const };
              steady.record(timeline);
              await waitForReadmission(steady, [timeline], plan.readmitDelayMs);
            }
          });
        }
        return { to: plan.from, next: `read the worker's log: voxops logs fleet --host ${name} --worker ${error.details.worker ?? 1}` };
      },
    };
  },
};

/**
 * A roll that stopped with its host part-way (a call outlived the wait, a command failed): its Next
 * continues the deploy where it stopped, not from the start. A restart has nothing to resume.
 */
function withResumeNext(error: unknown, request: OperationRequest, plan: FleetPlan): unknown {
  if (request.action === 'restart') return error;
  const again = rerunCommand(request, plan.to, { resume: true });
  if (error instanceof DrainTimeoutError)
    return new DrainTimeoutError(error.message, { cause: error, next: `when those calls end: ${again}` });
  if (error instanceof RemoteCommandError && !error.next)
    return new RemoteCommandError(error.facts, {
      cause: error,
      next: `voxops status --host ${plan.host.name} shows how far it got; fix what failed, then: ${again}`,
    });
  return error;
}

/**
 * Put the tag on the host (git checkout, or an rsync push), then install it, or, going back to code
 * this host has built before (rollbacks), restore the kept build instead of installing again.
 */
async function placeFleetRelease(
  host: HostContext,
  role: FleetRoleConfig,
  choice: SourceChoice,
  tag: string,
  preferKeptBuild: boolean,
): Promise<void> {
  const build = role.build;
  const preserve = [...role.preserve, ...(build?.outputs ?? []).map((o) => `/${o}`)];
  const head = await placeRelease(host, { path: role.path, tag, choice, workspace: host.workspace, role: 'fleet', repo: role, preserve });
  if (build && preferKeptBuild && (await host.run(hasBuild('fleet', head))).exitCode === 0) {
    await host.step(restoreBuild('fleet', head, role.path, build.outputs));
    await host.recordProgress({ installed: head });
    return;
  }
  await host.step(install(role.path, role.install));
  await host.recordProgress({ installed: head });
  if (!build) return;
  try {
    await host.step(saveBuild('fleet', head, role.path, build.outputs));
    const listing = await host.run(listBuilds('fleet'));
    const old = buildsToPrune(listing.stdout, build.keep, head);
    if (old.length > 0) await host.run(pruneBuilds('fleet', old));
  } catch (error) {
    // a full disk must not fail a deploy whose install succeeded; the next rollback just installs
    host.warn(`could not keep this build for rollback: ${(error as Error).message}`);
  }
}

/**
 * A killed run can leave a worker's socket moved aside: the worker then serves nothing new. Put it
 * back in rotation (its call, if any, goes on), or drop the moved file when a new process already
 * serves on the real path.
 */
async function putBackLeftovers(host: HostContext, role: FleetRoleConfig, leftovers: FleetPlan['leftovers']): Promise<void> {
  for (const index of leftovers.moved) {
    await host.run(undrainWorker(workerSocket(role.workers.socket, index)));
    host.worker(index, 'undrained', 'left moved aside by an interrupted run: back in rotation');
  }
  for (const index of leftovers.stale) await host.run(removeDrainedSocket(workerSocket(role.workers.socket, index)));
}

/** A failed gate: the previous release back on the host, and every worker already moved rolled back onto it. */
async function rollBackHost(
  host: HostContext,
  role: FleetRoleConfig,
  previous: string,
  moved: readonly number[],
  roll: (workers: WorkerSteps[]) => Promise<void>,
): Promise<void> {
  // the host's own clone first (an rsync push never touches .git), then origin, then rsync
  const choice = chooseSource(host.host.name, previous, 'auto', await lookUpTag((s) => host.run(s), role.path, previous, true));
  if (choice.problem) throw new Error(choice.problem);
  await placeFleetRelease(host, role, choice, previous, true);
  await roll([...new Set(moved)].sort((a, b) => a - b).map((index) => workerSteps(role, index)));
}
