import type { Step } from '../../exec/command.js';
import { install } from '../../commands/git.js';
import { isValidTag } from '../../commands/tag.js';
import { printableQuoted } from '../../text.js';
import { freeDisk, parseFreeDiskMb } from '../../commands/state.js';
import type { Inventory } from '../../config/inventory.js';
import { ConfigError, DrainTimeoutError, HealthGateError, InterruptedError, PreflightError } from '../../errors.js';
import { placeRelease } from '../../release/place.js';
import { chooseSource, lookUpTag, type SourceChoice, type TagLookup } from '../../release/source.js';
import type { ReleaseRepo } from '../../release/workspace.js';
import type { HostContext, HostPlan, HostResult, Note, OperationRequest, PlanLine, RoleDriver } from '../contract.js';
import { lowDisk, notAtReleaseTag, refusalNext, rollsForward, sourceFor } from './release-rules.js';

/** The inventory keys every role with a checkout has. */
export interface CheckoutConfig extends ReleaseRepo {
  path: string;
  install: readonly (readonly string[])[];
  preserve: readonly string[];
  minFreeDiskMb: number;
}

export interface ActivateRelease {
  tag: string;
  /** absent when a kept release is activated without a checkout */
  commit?: string;
  kept?: string;
  /** the undo path: no waiting on leases, no second chances */
  restoring?: boolean;
}

/** What makes one role's placed and built release live, and how to tell it worked. The driver does the rest. */
export interface CheckoutRecipe<C extends CheckoutConfig> {
  role: 'api' | 'dialler' | 'console';
  config(inventory: Inventory): C | undefined;
  /** host-owned paths beyond the defaults: an rsync push never touches them */
  preserve(config: C): readonly string[];
  /** activate() puts the previous release back by itself when it fails (the console flips back) */
  restoresItself: boolean;
  /** the deployed tag as the host records it */
  readTag(host: HostContext, config: C): Promise<string | null>;
  /** role-specific read-only checks before anything changes */
  inspect(host: HostContext, config: C): Promise<{ problems: string[]; warnings: string[] }>;
  /** a kept release of this tag, for a rollback that needs neither checkout nor build */
  keptRelease?(host: HostContext, config: C, tag: string): Promise<string | undefined>;
  /** make the release live and prove it; HealthGateError when it does not come up */
  activate(host: HostContext, config: C, release: ActivateRelease, request: OperationRequest): Promise<HostResult>;
  /** the commands activate() runs, for a dry run */
  describeActivate(config: C, tag: string, request: OperationRequest): Step[];
}

export interface CheckoutFacts {
  from: string | null;
  freeMb?: number;
  checks: { problems: string[]; warnings: string[] };
  kept?: string;
  lookup?: TagLookup;
}

export interface CheckoutPlan extends HostPlan {
  choice: SourceChoice;
  /** a rollback to a release the host kept: no checkout, no build */
  kept?: string;
  /** restart: the deployed release, restarted and gated (no checkout, no build) */
  restartOnly?: boolean;
}

export function configOf<C extends CheckoutConfig>(recipe: CheckoutRecipe<C>, inventory: Inventory): C {
  const config = recipe.config(inventory);
  if (!config) throw new ConfigError(`${inventory.file} has no roles.${recipe.role} section`);
  return config;
}

/**
 * A role that runs one service per host from a checkout (api, dialler, console): hosts one at a
 * time; put the release in place, build it, make it live through the recipe, and put the previous
 * release back if it does not come up.
 */
export function checkoutDriver<C extends CheckoutConfig>(
  recipe: CheckoutRecipe<C>,
  actions: RoleDriver['actions'],
): RoleDriver<CheckoutFacts, CheckoutPlan> {
  const role = recipe.role;
  return {
    role,
    actions,

    async inspect(host, request) {
      const config = configOf(recipe, host.inventory);
      const tag = request.tag;
      const [from, disk, checks, kept] = await Promise.all([
        recipe.readTag(host, config),
        host.run(freeDisk(config.path)),
        recipe.inspect(host, config),
        request.action === 'rollback' && tag && recipe.keptRelease ? recipe.keptRelease(host, config, tag) : Promise.resolve(undefined),
      ]);
      const lookup =
        tag && !kept && request.action !== 'restart' && request.source !== 'rsync'
          ? await lookUpTag((s) => host.run(s), config.path, tag, request.action === 'rollback')
          : undefined;
      const freeMb = parseFreeDiskMb(disk.stdout);
      return { from, checks, ...(freeMb !== undefined ? { freeMb } : {}), ...(kept ? { kept } : {}), ...(lookup ? { lookup } : {}) };
    },

    judge(all, request, inventory) {
      const config = configOf(recipe, inventory);
      const problems: string[] = [];
      const warnings: Note[] = [];
      const notes: Note[] = [];
      const restart = request.action === 'restart';
      const tags = [...new Set(all.map((f) => f.facts.from))];
      if (restart && (tags.length !== 1 || !tags[0] || !isValidTag(tags[0]))) {
        const refusal = new PreflightError(
          `cannot restart ${role}: its hosts are not on one release tag; nothing was changed`,
          all.map((f) => `${f.host.name}: ${f.facts.from === null ? '(no tag)' : printableQuoted(f.facts.from)}`),
          {
            next: `deploy one release first: voxops deploy ${role} --tag <tag>`,
          },
        );
        return { plans: [], problems: [], warnings: [], notes: [], refusal };
      }
      const tag = restart ? tags[0]! : request.tag!;
      const plans = all.map(({ host, facts }): CheckoutPlan => {
        const name = host.name;
        const push = (line: string | undefined) => line && problems.push(line);
        problems.push(...facts.checks.problems);
        warnings.push(...facts.checks.warnings.map((message) => ({ host: name, message })));
        push(lowDisk(name, config.path, facts.freeMb, config.minFreeDiskMb));
        push(notAtReleaseTag(name, config.path, facts.from));
        if (request.action === 'rollback') {
          const forward = rollsForward(name, tag, facts.from, request.force);
          push(forward.problem);
          if (forward.warning) warnings.push({ host: name, message: forward.warning });
        }
        const choice =
          restart || facts.kept
            ? sourceFor(name, tag, request.source, undefined)
            : sourceFor(name, tag, request.source, facts.lookup ?? { tagLocally: false, origin: 'not-asked' });
        push(choice.problem);
        if (choice.warning) warnings.push({ host: name, message: choice.warning });
        const how = facts.kept ? `going back to the kept build ${facts.kept}` : restart ? 'restart only' : `release by ${choice.source}`;
        notes.push({ host: name, message: `${role} on ${facts.from ?? '(no tag)'}, ${facts.freeMb ?? '?'} MiB free; ${how}` });
        return {
          host,
          from: facts.from,
          to: tag,
          choice,
          ...(facts.kept ? { kept: facts.kept } : {}),
          ...(restart ? { restartOnly: true } : {}),
        };
      });
      const rerun = `voxops ${request.action} ${role} ${request.action === 'deploy' ? '--tag' : '--to'} ${tag}`;
      const next = refusalNext(problems, config.repo, rerun, `fix the problems above (voxops status ${role}), then re-run`);
      return { plans, problems, warnings, notes, next };
    },

    describe(plan, request, inventory) {
      const config = configOf(recipe, inventory);
      const lines: PlanLine[] = [];
      if (plan.kept) lines.push({ note: `kept build ${plan.kept}: no checkout, no build` });
      else if (plan.restartOnly) lines.push({ note: `restart on ${plan.to}: no checkout, no build` });
      else if (plan.choice.source === 'rsync')
        lines.push({ note: `rsync push of ${plan.to} from the local clone (git archive); host-owned paths untouched` });
      else lines.push({ note: `git: ${plan.choice.skipFetch ? '' : 'fetch, '}checkout --force --detach ${plan.to}, verify HEAD` });
      if (!plan.kept && !plan.restartOnly) lines.push({ step: install(config.path, config.install) });
      for (const step of recipe.describeActivate(config, plan.to, request)) lines.push({ step });
      return lines;
    },

    async prepare(plans, _request, workspace, inventory) {
      const pushed = plans.find((p) => p.choice.source === 'rsync' && !p.kept && !p.restartOnly);
      // an rsync push's tree is built before any host changes: a tag missing from the local clone stops here
      if (pushed) await workspace.tree(role, configOf(recipe, inventory), pushed.to);
    },

    change(host, plan, request) {
      const config = configOf(recipe, host.inventory);
      const name = host.host.name;
      // what has changed on the host so far decides what a failure must put back
      let filesChanged = false;
      let activating = false;
      const putInPlace = async (target: HostContext, tag: string, choice: SourceChoice) => {
        const commit = await placeRelease(target, {
          path: config.path,
          tag,
          choice,
          workspace: target.workspace,
          role,
          repo: config,
          preserve: recipe.preserve(config),
        });
        await target.step(install(config.path, config.install));
        return commit;
      };
      return {
        async apply() {
          let commit: string | undefined;
          if (!plan.kept && !plan.restartOnly) {
            filesChanged = true;
            commit = await putInPlace(host, plan.to, plan.choice);
          }
          activating = true;
          return recipe.activate(
            host,
            config,
            { tag: plan.to, ...(commit ? { commit } : {}), ...(plan.kept ? { kept: plan.kept } : {}) },
            request,
          );
        },

        async undo(error) {
          const from = plan.from;
          if (!from) return undefined;
          if (recipe.restoresItself)
            return error instanceof HealthGateError ? { to: from, next: `read the log: voxops logs ${role} --host ${name}` } : undefined;
          if (!filesChanged) return undefined;
          // The others run from their checkout: whatever failed, the previous release's files go back,
          // and its process too if the unit was restarted (or may have been) on the new ones.
          const restart = activating && !(error instanceof DrainTimeoutError || error instanceof InterruptedError);
          host.emit({
            type: 'host',
            host: name,
            phase: 'rolling-back',
            message: `back to ${from}${restart ? '' : ' (files only: the running process was not restarted)'}`,
          });
          const steady = host.uninterruptible();
          // the host's own clone first (an rsync push never touches .git), then origin, then rsync
          const choice = chooseSource(name, from, 'auto', await lookUpTag((s) => steady.run(s), config.path, from, true));
          if (choice.problem) throw new Error(choice.problem);
          await putInPlace(steady, from, choice);
          if (restart) await recipe.activate(steady, config, { tag: from, restoring: true }, request);
          return { to: from, next: `read the log: voxops logs ${role} --host ${name}` };
        },
      };
    },

    afterwards(plans, results) {
      if (plans.length !== 1 || role === 'console') return [];
      return [{ message: `${role} has one host, so its restart was an outage: ${results.get(plans[0]!.host.name)?.message ?? ''}` }];
    },
  };
}
