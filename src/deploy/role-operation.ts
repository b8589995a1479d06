import type { ReleaseSource } from '../cli/args.js';
import type { Step } from '../commands/command.js';
import { freeDisk, parseFreeDiskMb, acquireLock, releaseOwnLock, appendHistory, type HistoryEntry } from '../commands/state.js';
import { compareTags, validateTag } from '../commands/tag.js';
import { hostsForRole } from '../config/inventory.js';
import {
  ConfigError,
  DrainTimeoutError,
  ExitCode,
  HealthGateError,
  InterruptedError,
  LockHeldError,
  PreflightError,
  RollbackFailedError,
  VoxopsError,
} from '../errors.js';
import type { HostSession } from '../exec/executor.js';
import { renderCommand } from '../exec/render.js';
import type { RoleRecipe } from '../recipes/recipe.js';
import { makeHolder, whoAmI, type OperationContext } from './context.js';
import type { HostOutcome, OperationSummary } from './events.js';
import { acquireAll, lockHeldNext, readHolder, releaseAll } from './locks.js';
import { recordHistory, resolveLastKnownGood, runStep, summarise } from './operation.js';
import { chooseSource, lookUpTag, placeRelease, ReleaseWorkspace, type SourceChoice } from './release.js';
import { closeAll, connectAll } from './sessions.js';

export interface RoleOperationOptions {
  /** restart: the deployed release, restarted and gated (no checkout, no build) */
  action: 'deploy' | 'rollback' | 'restart';
  /** deploy: required; rollback: absent means last-known-good */
  tag?: string;
  hosts?: string[];
  source: ReleaseSource;
  /** rollback: allow a tag newer than the deployed one */
  force?: boolean;
}

interface HostPlan {
  session: HostSession;
  from: string | null;
  choice: SourceChoice;
  /** a rollback to a release the host kept: no checkout, no build */
  kept?: string;
  /** restart: no checkout, no build */
  restartOnly?: boolean;
}

/**
 * Deploy or roll back a role that runs one service per host (api, dialler, console): preflight on
 * every host, lock every host, then one host at a time: put the release in place, build it, make it
 * live through the recipe, and put the previous release back if it does not come up.
 */
export async function runRoleOperation(ctx: OperationContext, recipe: RoleRecipe, options: RoleOperationOptions): Promise<OperationSummary> {
  const role = recipe.role;
  const hosts = hostsForRole(ctx.inventory, role, options.hosts);
  if (hosts.length === 0) throw new ConfigError(`environment ${ctx.inventory.environment} has no ${role} hosts`);
  const startedAt = Date.now();
  const outcomes = new Map<string, HostOutcome>();
  let tag = options.tag ? validateTag(options.tag) : undefined;
  const workspace = new ReleaseWorkspace(ctx.inventory, ctx.env);
  const finish = (exitCode: number): OperationSummary => {
    const summary = summarise({ operation: options.action, role, tag, startedAt, exitCode, hosts: outcomes.values() });
    ctx.reporter.emit({ type: 'summary', summary });
    return summary;
  };
  let sessions: Map<string, HostSession> | undefined;
  try {
    sessions = await connectAll(ctx.executor, hosts);
    const list = hosts.map((h) => sessions!.get(h.name)!);
    if (options.action === 'rollback' && !tag) tag = await resolveLastKnownGood(list, role, (s) => recipe.readTag(s));
    if (options.action === 'restart') tag = await sameTagEverywhere(list, recipe);
    if (!tag) throw new ConfigError(`${options.action} ${role} needs a tag`);
    const release = tag;
    ctx.reporter.emit({ type: 'start', operation: options.action, role, tag: release, hosts: hosts.map((h) => h.name), dryRun: ctx.dryRun });
    const plans = await preflight(ctx, recipe, list, release, options);
    // an rsync push's tree is built before any host changes: a tag missing from the local clone stops here
    if (plans.some((p) => p.choice.source === 'rsync' && !p.kept && !p.restartOnly)) await workspace.tree(role, recipe.repo, release);
    for (const p of plans) outcomes.set(p.session.host.name, outcome(role, p, release, 'not-started', 0));
    if (ctx.dryRun) {
      for (const p of plans) printPlan(ctx, recipe, p, release);
      for (const p of plans) outcomes.set(p.session.host.name, outcome(role, p, release, 'planned', 0));
      return finish(ExitCode.ok);
    }
    const holder = makeHolder(ctx.env, `${options.action} ${role}`, release);
    await acquireAll(list, holder);
    try {
      // one host at a time: with two API hosts behind a balancer, one always serves
      for (const p of plans) {
        if (ctx.signal.aborted) throw new InterruptedError(`interrupted before ${p.session.host.name}; the hosts done so far run ${release}`);
        await runHost(ctx, recipe, p, release, options, outcomes, workspace);
      }
    } finally {
      const stuck = await releaseAll(list, holder);
      if (stuck.length > 0) ctx.reporter.emit({ type: 'warning', message: `could not release the lock on ${stuck.join(', ')}: run voxops lock release` });
    }
    if (hosts.length === 1 && role !== 'console') {
      const o = outcomes.get(hosts[0]!.name);
      ctx.reporter.emit({ type: 'warning', message: `${role} has one host, so its restart was an outage: ${o?.message ?? ''}` });
    }
    return finish(ExitCode.ok);
  } catch (error) {
    finish(error instanceof VoxopsError ? error.exitCode : ExitCode.internal);
    throw error;
  } finally {
    workspace.cleanup();
    if (sessions) await closeAll(sessions);
  }
}

/** A restart keeps what runs: every host must be on one known release for the gate to check it. */
async function sameTagEverywhere(sessions: HostSession[], recipe: RoleRecipe): Promise<string> {
  const tags = await Promise.all(sessions.map(async (s) => ({ host: s.host.name, tag: await recipe.readTag(s) })));
  const distinct = [...new Set(tags.map((t) => t.tag))];
  if (distinct.length !== 1 || !distinct[0]) {
    throw new PreflightError(`cannot restart ${recipe.role}: its hosts are not on one release tag; nothing was changed`, tags.map((t) => `${t.host}: ${t.tag ?? '(no tag)'}`), {
      next: `deploy one release first: voxops deploy ${recipe.role} --tag <tag>`,
    });
  }
  return distinct[0];
}

async function preflight(ctx: OperationContext, recipe: RoleRecipe, sessions: HostSession[], tag: string, options: RoleOperationOptions): Promise<HostPlan[]> {
  const problems: string[] = [];
  const plans = await Promise.all(
    sessions.map(async (session): Promise<HostPlan> => {
      const host = session.host.name;
      const [lock, from, disk, inspected, kept] = await Promise.all([
        readHolder(session),
        recipe.readTag(session),
        session.run(freeDisk(recipe.path)),
        recipe.inspect(session),
        options.action === 'rollback' && recipe.keptRelease ? recipe.keptRelease(session, tag) : Promise.resolve(undefined),
      ]);
      if (lock && !ctx.dryRun) throw new LockHeldError(host, lock, { next: lockHeldNext(lock) });
      if (lock) ctx.reporter.emit({ type: 'warning', host, message: `lock is held by ${lock.user}@${lock.machine}` });
      problems.push(...inspected.problems);
      for (const w of inspected.warnings) ctx.reporter.emit({ type: 'warning', host, message: w });
      const free = parseFreeDiskMb(disk.stdout);
      if (free !== undefined && free < recipe.minFreeDiskMb) problems.push(`${host}: only ${free} MiB free at ${recipe.path} (need ${recipe.minFreeDiskMb} MiB)`);
      if (!from) problems.push(`${host}: ${recipe.path} is not at a release tag, so there would be nothing to go back to`);
      if (options.action === 'rollback' && from && compareTags(tag, from) > 0) {
        const line = `${host}: ${tag} is newer than the deployed ${from}: this "rollback" rolls forward`;
        if (options.force) ctx.reporter.emit({ type: 'warning', host, message: line });
        else problems.push(`${line} (add --force if that is what you want)`);
      }
      let choice: SourceChoice = { source: 'git', skipFetch: true };
      if (!kept && options.action !== 'restart') {
        choice = chooseSource(host, tag, options.source, await lookUpTag(session, recipe.path, tag, options.action === 'rollback' || options.source === 'rsync'));
        if (choice.problem) problems.push(choice.problem);
        if (choice.warning) ctx.reporter.emit({ type: 'warning', host, message: choice.warning });
      }
      ctx.reporter.emit({ type: 'info', host, message: `${recipe.role} on ${from ?? '(no tag)'}, ${free ?? '?'} MiB free; ${kept ? `going back to the kept build ${kept}` : `release by ${choice.source}`}` });
      return { session, from, choice, ...(kept ? { kept } : {}), ...(options.action === 'restart' ? { restartOnly: true } : {}) };
    }),
  );
  if (problems.length > 0) {
    throw new PreflightError(`preflight refused the ${options.action} of ${recipe.role}: ${problems.length} problem(s); nothing was changed`, problems, {
      next: problems.some((p) => p.includes('does not exist in origin'))
        ? `check the tag name; the tags are listed by: git ls-remote --tags ${recipe.repo.repo}`
        : problems.some((p) => p.includes('cannot fetch from origin'))
          ? `voxops ${options.action} ${recipe.role}${options.action === 'deploy' ? ` --tag ${tag}` : ` --to ${tag}`} --source rsync`
          : `fix the problems above (voxops status --host ${sessions[0]!.host.name}), then re-run`,
    });
  }
  return plans;
}

function printPlan(ctx: OperationContext, recipe: RoleRecipe, plan: HostPlan, tag: string): void {
  const host = plan.session.host.name;
  const show = (step: Step, prefix = '') => ctx.reporter.emit({ type: 'command', host, step: step.name, command: `${prefix}${renderCommand(step.command)}` });
  ctx.reporter.emit({ type: 'info', host, message: `plan: ${plan.from ?? '(no tag)'} -> ${tag}` });
  show(acquireLock(makeHolder(ctx.env, recipe.role, tag)));
  if (plan.kept) ctx.reporter.emit({ type: 'info', host, message: `kept build ${plan.kept}: no checkout, no build` });
  else if (plan.restartOnly) ctx.reporter.emit({ type: 'info', host, message: `restart on ${tag}: no checkout, no build` });
  else if (plan.choice.source === 'rsync') ctx.reporter.emit({ type: 'info', host, message: `rsync push of ${tag} from the local clone (git archive); host-owned paths untouched` });
  else ctx.reporter.emit({ type: 'info', host, message: `git: ${plan.choice.skipFetch ? '' : 'fetch, '}checkout --force --detach ${tag}, verify HEAD` });
  if (!plan.kept && !plan.restartOnly) show(recipe.install);
  for (const step of recipe.planActivate(tag)) show(step);
  show(appendHistory({ at: '', host, role: recipe.role, action: 'deploy', from: plan.from, to: tag, outcome: 'success', durationMs: 0, user: '' }));
  show(releaseOwnLock('<id>'));
}

async function putInPlace(ctx: OperationContext, recipe: RoleRecipe, plan: HostPlan, tag: string, workspace: ReleaseWorkspace): Promise<string> {
  const commit = await placeRelease(ctx, plan.session, {
    path: recipe.path,
    tag,
    choice: plan.choice,
    workspace,
    role: recipe.role,
    repo: recipe.repo,
    preserve: recipe.preserve,
  });
  await runStep(ctx, plan.session, recipe.install);
  return commit;
}

async function runHost(
  ctx: OperationContext,
  recipe: RoleRecipe,
  plan: HostPlan,
  tag: string,
  options: RoleOperationOptions,
  outcomes: Map<string, HostOutcome>,
  workspace: ReleaseWorkspace,
): Promise<void> {
  const host = plan.session.host.name;
  const started = Date.now();
  let result: HistoryEntry['outcome'] = 'failed';
  let detail: string | undefined;
  ctx.reporter.emit({ type: 'host', host, phase: 'start', message: `${plan.from ?? '(no tag)'} -> ${tag}` });
  // what has changed on the host so far decides what a failure must put back
  let filesChanged = false;
  let activating = false;
  try {
    let commit: string | undefined;
    if (!plan.kept && options.action !== 'restart') {
      filesChanged = true;
      commit = await putInPlace(ctx, recipe, plan, tag, workspace);
    }
    activating = true;
    const activated = await recipe.activate(ctx, plan.session, { tag, ...(commit ? { commit } : {}), ...(plan.kept ? { kept: plan.kept } : {}) });
    detail = activated.message;
    result = 'success';
    ctx.reporter.emit({ type: 'host', host, phase: 'done', message: activated.message });
  } catch (error) {
    detail = (error as Error).message;
    if (error instanceof InterruptedError) result = 'interrupted';
    // The console puts its previous build back itself, and its checkout is only a workspace. The
    // others run from their checkout: whatever failed, the previous release's files go back, and
    // its process too if the unit was restarted (or may have been) on the new ones.
    if (filesChanged && plan.from && !recipe.restoresItself) {
      const restart = activating && !(error instanceof DrainTimeoutError || error instanceof InterruptedError);
      ctx.reporter.emit({ type: 'host', host, phase: 'rolling-back', message: `back to ${plan.from}${restart ? '' : ' (files only: the running process was not restarted)'}` });
      try {
        await restorePrevious(ctx, recipe, plan, plan.from, workspace, restart);
      } catch (restoreError) {
        ctx.reporter.emit({ type: 'host', host, phase: 'failed', message: (restoreError as Error).message });
        throw new RollbackFailedError(`${host}: ${(error as Error).message}; then going back to ${plan.from} failed too: ${(restoreError as Error).message}`, {
          cause: restoreError,
          next: `check the host now: voxops status --host ${host}`,
        });
      }
      if (result !== 'interrupted') result = 'rolled-back';
      ctx.reporter.emit({ type: 'host', host, phase: 'rolled-back', message: `${recipe.role} is back on ${plan.from}` });
      if (error instanceof HealthGateError) {
        throw new HealthGateError(`${error.message}; ${host} was rolled back to ${plan.from}`, error.details, {
          cause: error,
          next: `read the log: voxops logs ${recipe.role} --host ${host}`,
        });
      }
    } else if (error instanceof HealthGateError && recipe.restoresItself) {
      result = 'rolled-back';
    }
    if (!(error instanceof InterruptedError)) ctx.reporter.emit({ type: 'host', host, phase: 'failed', message: detail });
    throw error;
  } finally {
    const durationMs = Date.now() - started;
    outcomes.set(host, { ...outcome(recipe.role, plan, tag, result === 'success' ? 'success' : result, durationMs), ...(detail ? { message: detail } : {}) });
    await recordHistory(ctx, plan.session, {
      at: new Date().toISOString(),
      host,
      role: recipe.role,
      action: options.action,
      from: plan.from,
      to: tag,
      outcome: result,
      durationMs,
      user: whoAmI(ctx.env),
      ...(ctx.env.BUILD_URL ? { buildUrl: ctx.env.BUILD_URL } : {}),
      ...(detail ? { detail: detail.slice(0, 300) } : {}),
    });
  }
}

/** Put the release that ran before back: its files, its build, and (after a failed restart) its process. */
async function restorePrevious(ctx: OperationContext, recipe: RoleRecipe, plan: HostPlan, previous: string, workspace: ReleaseWorkspace, restart: boolean): Promise<void> {
  // the host's own clone first (an rsync push never touches .git), then origin, then rsync
  const choice = chooseSource(plan.session.host.name, previous, 'auto', await lookUpTag(plan.session, recipe.path, previous, true));
  if (choice.problem) throw new RollbackFailedError(choice.problem, { next: `voxops status --host ${plan.session.host.name}` });
  await putInPlace(ctx, recipe, { ...plan, choice }, previous, workspace);
  if (restart) await recipe.activate(ctx, plan.session, { tag: previous, restoring: true });
}

function outcome(role: string, plan: HostPlan, to: string, result: HostOutcome['outcome'], durationMs: number): HostOutcome {
  return { host: plan.session.host.name, role, from: plan.from, to, outcome: result, durationMs };
}
