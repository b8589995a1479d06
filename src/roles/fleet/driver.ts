import { buildsToPrune, hasBuild, listBuilds, pruneBuilds, restoreBuild, saveBuild } from '../../commands/build-cache.js';
import { install } from '../../commands/git.js';
import type { FleetRoleConfig } from '../../config/schema.js';
import { DrainTimeoutError, HealthGateError, InterruptedError } from '../../errors.js';
import type { WorkerTimeline } from '../../events.js';
import { releaseSteps, workerSteps } from '../../plan/fleet.js';
import { placeRelease } from '../../release/place.js';
import { chooseSource, lookUpTag, type SourceChoice } from '../../release/source.js';
import type { HostContext, PlanLine, RoleDriver } from '../contract.js';
import { fleetConfig, rollSettings } from './config.js';
import { inspectFleetHost, type FleetHostFacts, type TagSearch } from './facts.js';
import { judgeFleet, type FleetPlan } from './judge.js';
import { rollWorker, waitForReadmission, type RollSettings } from './roll-worker.js';

/**
 * Deploy, rollback and rolling restart of the fleet share one shape: host by host, worker by
 * worker, each drained, waited on until its call ends, restarted and gated.
 */
export const fleetDriver: RoleDriver<FleetHostFacts, FleetPlan> = {
  role: 'fleet',
  actions: ['deploy', 'rollback', 'restart'],

  inspect(host, request) {
    const search: TagSearch = request.action === 'restart' || request.source === 'rsync' ? 'none' : request.action === 'rollback' ? 'local-then-origin' : 'origin';
    return inspectFleetHost(host, fleetConfig(host.inventory), request.tag, search);
  },

  judge: judgeFleet,

  describe(plan, request, inventory) {
    const role = fleetConfig(inventory);
    const lines: PlanLine[] = [{ note: `batches ${JSON.stringify(plan.batches)}` }];
    if (plan.release?.choice.source === 'rsync') {
      lines.push({ note: `rsync push of ${plan.to} from the local clone (git archive), host-owned paths untouched; then:` }, { step: install(role.path, role.install) });
    } else if (plan.release) {
      const steps = releaseSteps(role, plan.to);
      if (!plan.release.choice.skipFetch) lines.push({ step: steps.fetch });
      lines.push({ step: steps.checkout }, { step: steps.verify }, { step: steps.install });
    }
    if (plan.release && role.build) {
      lines.push({ step: saveBuild('fleet', '<commit>', role.path, role.build.outputs), prefix: 'then, or instead of install when going back to a kept build: ' });
    }
    const settings = rollSettings(role, request, plan.to);
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
      if (plan.readmitDelayMs > 0) lines.push({ note: `wait ${plan.readmitDelayMs / 1000}s: nginx fail_timeout keeps the worker out of rotation after its drain` });
    }
    return lines;
  },

  async prepare(plans, request, workspace, inventory) {
    // an rsync push's tree is built before any host changes: a tag missing from the local clone stops here
    if (request.tag && plans.some((p) => p.release?.choice.source === 'rsync')) await workspace.tree('fleet', fleetConfig(inventory), request.tag);
  },

  change(host, plan, request) {
    const role = fleetConfig(host.inventory);
    const name = host.host.name;
    const steps = (index: number) => plan.workers.find((w) => w.index === index)!;
    /** workers already restarted (or restarting) on the new release: a rollback must roll them back */
    const moved: number[] = [];
    return {
      async apply() {
        if (plan.release) await placeFleetRelease(host, role, plan.release.choice, plan.to, request.action === 'rollback');
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
            throw new DrainTimeoutError(`${name}: worker ${index} still held a call after two drain timeouts; it stays on ${plan.from} and serving`, {
              next: `finish it when the call ends: voxops restart fleet --host ${name} --worker ${index}`,
            });
          }
          moved.push(index);
          await waitForReadmission(host, [timeline], plan.readmitDelayMs);
        }
        return { message: `${moved.length} workers on ${plan.to}` };
      },

      async undo(error) {
        if (!(error instanceof HealthGateError) || !plan.from) return undefined;
        host.emit({ type: 'host', host: name, phase: 'rolling-back', message: `back to ${plan.from}: workers ${moved.join(', ')}` });
        // No Ctrl-C and no skipping here: a half-finished rollback is the worst state to leave.
        await rollBackHost(host.uninterruptible(), role, { ...rollSettings(role, request, plan.from), onDrainTimeout: 'wait' }, plan.from, moved, plan.readmitDelayMs);
        return { to: plan.from, next: `read the worker's log: voxops logs fleet --host ${name} --worker ${error.details.worker ?? 1}` };
      },
    };
  },
};

/**
 * Put the tag on the host (git checkout, or an rsync push), then install it, or, going back to code
 * this host has built before (rollbacks), restore the kept build instead of installing again.
 */
async function placeFleetRelease(host: HostContext, role: FleetRoleConfig, choice: SourceChoice, tag: string, preferKeptBuild: boolean): Promise<void> {
  const build = role.build;
  const preserve = [...role.preserve, ...(build?.outputs ?? []).map((o) => `/${o}`)];
  const head = await placeRelease(host, { path: role.path, tag, choice, workspace: host.workspace, role: 'fleet', repo: role, preserve });
  if (build && preferKeptBuild && (await host.run(hasBuild('fleet', head))).exitCode === 0) {
    await host.step(restoreBuild('fleet', head, role.path, build.outputs));
    return;
  }
  await host.step(install(role.path, role.install));
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

/** A failed gate: the previous release back on the host, and every worker already moved rolled back onto it. */
async function rollBackHost(host: HostContext, role: FleetRoleConfig, settings: RollSettings, previous: string, moved: readonly number[], readmitDelayMs: number): Promise<void> {
  // the host's own clone first (an rsync push never touches .git), then origin, then rsync
  const choice = chooseSource(host.host.name, previous, 'auto', await lookUpTag((s) => host.run(s), role.path, previous, true));
  if (choice.problem) throw new Error(choice.problem);
  await placeFleetRelease(host, role, choice, previous, true);
  for (const index of moved) {
    const timeline = { ...(await rollWorker(host, workerSteps(role, index), settings)), outcome: 'rolled-back' as const };
    host.record(timeline);
    await waitForReadmission(host, [timeline], readmitDelayMs);
  }
}
