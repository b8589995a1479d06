import type { RoleName } from '../config/schema.js';
import { ConfigError, InterruptedError, UsageError, VoxopsError } from '../errors.js';
import type { OperationSummary, Reporter } from '../events.js';
import type { OperationRequest } from '../roles/contract.js';
import { rolesThatCan } from '../roles/registry.js';
import { stopSignal, type OperationContext } from './context.js';
import { NoLastKnownGoodError } from './history.js';
import { runOperation } from './runner.js';
import { mergeSummaries } from './summary.js';

/** What several roles share of one request: everything but the role. */
export type SharedRequest = Omit<OperationRequest, 'role'>;

/**
 * One request per role, each with only its own hosts when --hosts names hosts of several roles.
 * Every name must exist (a misspelt name is an error, never a silently smaller run); a role none
 * of whose hosts is named is left out.
 */
export function requestsFor(ctx: OperationContext, roles: readonly RoleName[], shared: SharedRequest): OperationRequest[] {
  const { inventory } = ctx;
  const named = shared.hosts;
  if (named) {
    const unknown = named.filter((name) => !inventory.hosts.some((h) => h.name === name));
    if (unknown.length > 0)
      throw new ConfigError(`no host named ${unknown.join(', ')} in environment ${inventory.environment}`, [], {
        next: 'voxops config check lists the hosts',
      });
  }
  return roles
    .filter((role) => inventory.hosts.some((h) => h.role === role && (!named || named.includes(h.name))))
    .map((role) => {
      const own = named?.filter((name) => inventory.hosts.some((h) => h.role === role && h.name === name));
      const { hosts: _all, ...rest } = shared;
      return { ...rest, role, ...(own ? { hosts: own } : {}) };
    });
}

/** `deploy all`: every role with hosts, in deploy order; the ingress config only when every host is in the run. */
export function deployAll(ctx: OperationContext, shared: SharedRequest): Promise<OperationSummary[]> {
  const roles = rolesThatCan('deploy').filter((role) => role !== 'ingress' || !shared.hosts);
  return runRoles(ctx, requestsFor(ctx, roles, shared), `deploy all ${shared.tag ?? ''}`.trim());
}

/** `rollback [roles…]`: the named roles, or every role that rolls back, in reverse deploy order. */
export function rollbackRoles(ctx: OperationContext, roles: readonly RoleName[], shared: SharedRequest): Promise<OperationSummary[]> {
  const able = rolesThatCan('rollback');
  const chosen = (roles.length > 0 ? roles : [...able].reverse()).filter((role) => able.includes(role));
  const requests = requestsFor(ctx, chosen, shared);
  if (requests.length === 0) {
    throw new UsageError(
      shared.hosts
        ? `none of ${shared.hosts.join(', ')} runs ${roles.join(', ') || 'a role that rolls back'}`
        : 'nothing to roll back: the ingress is config only (voxops deploy ingress)',
      {
        next: 'voxops status shows which host runs which role',
      },
    );
  }
  // a bare rollback covers the roles that have something to go back to
  const bare = roles.length === 0 && !shared.tag && requests.length > 1;
  return runRoles(ctx, requests, `rollback ${requests.map((r) => r.role).join(', ')}`, { skipNeverDeployedTwice: bare });
}

/** `restart all`: every role that restarts, in deploy order. */
export function restartAll(ctx: OperationContext, shared: SharedRequest): Promise<OperationSummary[]> {
  return runRoles(ctx, requestsFor(ctx, rolesThatCan('restart'), shared), 'restart all');
}

const quiet: Reporter = { emit: () => {}, close: async () => {} };

/**
 * Run roles one after another; a role never starts while the one before it has failed, and Ctrl-C
 * starts no further role. Several roles are first all preflighted (a quiet dry run of each: tags,
 * disks, health, last-known-good), so a problem in the third role does not stop a run half-way.
 * The last event is one summary of every role (what --json consumers and --report read).
 */
export interface RunRolesOptions {
  /** a bare rollback: a role voxops never deployed twice is skipped, not an error */
  skipNeverDeployedTwice?: boolean;
  /** how one role runs (the engine's runner; a test passes its own) */
  runOne?: (ctx: OperationContext, request: OperationRequest) => Promise<unknown>;
}

export async function runRoles(
  ctx: OperationContext,
  requests: readonly OperationRequest[],
  what: string,
  options: RunRolesOptions = {},
): Promise<OperationSummary[]> {
  const runOne = options.runOne ?? runOperation;
  if (requests.length === 1) {
    await runOne(ctx, requests[0]!);
    return [];
  }
  const summaries: OperationSummary[] = [];
  const capturing: OperationContext = {
    ...ctx,
    reporter: {
      emit: (event) => {
        if (event.type === 'summary') summaries.push(event.summary);
        ctx.reporter.emit(event);
      },
      close: () => ctx.reporter.close(),
    },
  };
  const run = async (context: OperationContext, request: OperationRequest) => {
    try {
      await runOne(context, request);
    } catch (error) {
      if (!(error instanceof NoLastKnownGoodError && options.skipNeverDeployedTwice)) throw error;
      context.reporter.emit({
        type: 'warning',
        message: `${request.role}: skipped, no last-known-good in its hosts' history (voxops has not deployed it twice)`,
      });
    }
  };
  const operation = requests[0]?.action ?? 'deploy';
  const startedAt = ctx.clock.now();
  const done: string[] = [];
  try {
    if (!ctx.dryRun) await preflightAll(ctx, requests, what, run);
    for (const [i, request] of requests.entries()) {
      const notStarted = requests.slice(i + 1).map((r) => r.role);
      if (ctx.signal.aborted) {
        const signal = stopSignal(ctx.signal);
        throw new InterruptedError(
          `${what}: interrupted before ${request.role}${done.length ? `; done: ${done.join(', ')}` : ''}; not started: ${[request.role, ...notStarted].join(', ')}`,
          {
            next: 'voxops status',
            ...(signal ? { signal } : {}),
          },
        );
      }
      ctx.reporter.emit({ type: 'info', message: `${what}: ${request.role} (${i + 1} of ${requests.length})` });
      try {
        await run(capturing, request);
      } catch (error) {
        const context = `${request.role} failed${done.length ? ` after ${done.join(', ')} succeeded` : ''}${notStarted.length ? `; not started: ${notStarted.join(', ')}` : ''}`;
        if (error instanceof VoxopsError) Object.defineProperty(error, 'message', { value: `${what}: ${context}: ${error.message}` });
        throw error;
      }
      done.push(request.role);
    }
    ctx.reporter.emit({ type: 'summary', summary: mergeSummaries(operation, summaries, startedAt, ctx.clock.now()) });
    return summaries;
  } catch (error) {
    ctx.reporter.emit({ type: 'summary', summary: mergeSummaries(operation, summaries, startedAt, ctx.clock.now(), error) });
    throw error;
  }
}

async function preflightAll(
  ctx: OperationContext,
  requests: readonly OperationRequest[],
  what: string,
  run: (context: OperationContext, request: OperationRequest) => Promise<void>,
): Promise<void> {
  const dry: OperationContext = { ...ctx, dryRun: true, reporter: quiet };
  const started = ctx.clock.now();
  for (const request of requests) {
    try {
      await run(dry, request);
    } catch (error) {
      if (error instanceof VoxopsError)
        Object.defineProperty(error, 'message', {
          value: `${what}: preflight of ${request.role} refused, before any role was changed: ${error.message}`,
        });
      throw error;
    }
  }
  ctx.reporter.emit({
    type: 'info',
    message: `${what}: preflight of ${requests.map((r) => r.role).join(', ')} passed in ${((ctx.clock.now() - started) / 1000).toFixed(1)} s`,
  });
}
