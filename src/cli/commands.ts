import { ExitCode, UnhealthyError, UsageError, describeHolder } from '../errors.js';
import type { OperationContext } from '../engine/context.js';
import { collectHistory, collectLocks, collectLogs, collectStatus, releaseLocksOn } from '../engine/read.js';
import { runOperation } from '../engine/runner.js';
import { deployAll, restartAll, rollbackRoles, type SharedRequest } from '../engine/sequence.js';
import type { Action } from '../roles/contract.js';
import type { ChangeFlags, ParsedCommand } from './args.js';
import { noColour, type Paint } from './colour.js';
import { formatHistory, formatStatus } from './format.js';

/** A command that changes hosts: what the engine is asked to do. */
export function sharedRequest(action: Action, flags: Partial<ChangeFlags>, extra: Partial<SharedRequest> = {}): SharedRequest {
  return {
    action,
    source: flags.source ?? 'auto',
    force: false,
    parallel: flags.parallel ?? 1,
    allowUnhealthy: flags.allowUnhealthy ?? false,
    ...(flags.batch !== undefined ? { batch: flags.batch } : {}),
    ...(flags.schedule ? { schedule: flags.schedule } : {}),
    ...(flags.minFree !== undefined ? { minFree: flags.minFree } : {}),
    ...(flags.maxCallAgeSeconds !== undefined ? { maxCallAgeSeconds: flags.maxCallAgeSeconds } : {}),
    ...(flags.lockWaitSeconds !== undefined ? { lockWaitSeconds: flags.lockWaitSeconds } : {}),
    ...(flags.resume ? { resume: true } : {}),
    ...(flags.hosts ? { hosts: flags.hosts } : {}),
    ...(flags.drainTimeoutSeconds !== undefined ? { drainTimeoutSeconds: flags.drainTimeoutSeconds } : {}),
    ...(flags.onDrainTimeout ? { onDrainTimeout: flags.onDrainTimeout } : {}),
    ...extra,
  };
}

/** The commands that change hosts, each one engine call. */
export async function change(
  ctx: OperationContext,
  parsed: Extract<ParsedCommand, { command: 'deploy' | 'rollback' | 'restart' | 'scale' | 'ingress-add-fleet' | 'ingress-remove-fleet' }>,
): Promise<void> {
  switch (parsed.command) {
    case 'deploy': {
      const shared = sharedRequest('deploy', parsed, parsed.tag !== undefined ? { tag: parsed.tag } : {});
      if (parsed.role === 'all') await deployAll(ctx, shared);
      else await runOperation(ctx, { ...shared, role: parsed.role });
      return;
    }
    case 'rollback':
      await rollbackRoles(
        ctx,
        parsed.roles,
        sharedRequest('rollback', parsed, { force: parsed.force, ...(parsed.to !== undefined ? { tag: parsed.to } : {}) }),
      );
      return;
    case 'restart': {
      if (parsed.resume)
        throw new UsageError('--resume continues a deploy or rollback; a restart has nothing to continue', {
          next: 'voxops status fleet shows which workers still run an old process; restart those with --worker N',
        });
      if (parsed.worker && parsed.role !== 'fleet')
        throw new UsageError('--worker is for the fleet only', { next: `voxops restart fleet --host H --worker ${parsed.worker}` });
      const shared = sharedRequest('restart', parsed, parsed.worker ? { workers: [parsed.worker] } : {});
      if (parsed.role === 'all') await restartAll(ctx, shared);
      else await runOperation(ctx, { ...shared, role: parsed.role });
      return;
    }
    case 'scale':
      await runOperation(ctx, {
        ...sharedRequest('scale', { ...parsed, hosts: [parsed.host] }, { scaleTo: parsed.workers }),
        role: 'fleet',
      });
      return;
    case 'ingress-add-fleet':
    case 'ingress-remove-fleet': {
      const action = parsed.command === 'ingress-add-fleet' ? 'add-fleet' : 'remove-fleet';
      await runOperation(ctx, { ...sharedRequest(action, parsed, { url: parsed.url }), role: 'ingress' });
      return;
    }
  }
}

/** The read-only commands: they print what they found. */
export async function inspect(
  ctx: OperationContext,
  parsed: Extract<ParsedCommand, { command: 'status' | 'health' | 'history' | 'lock-status' | 'lock-release' | 'logs' }>,
  write: (text: string) => void,
  paint: Paint = noColour,
): Promise<number> {
  switch (parsed.command) {
    case 'status': {
      const status = await collectStatus(ctx, parsed.roles, parsed.hosts);
      write(parsed.json ? JSON.stringify(status, null, 2) : formatStatus(status, paint));
      return ExitCode.ok;
    }
    case 'health': {
      const status = await collectStatus(ctx, parsed.roles, parsed.hosts);
      const problems = status.hosts.flatMap((h) => h.problems);
      if (parsed.json) write(JSON.stringify({ ok: problems.length === 0, problems }));
      if (problems.length > 0) {
        throw new UnhealthyError(`${problems.length} problem(s) in ${ctx.inventory.environment}`, problems, {
          next: 'voxops status shows the details; a dead worker comes back with voxops restart fleet --host H --worker N',
        });
      }
      if (!parsed.json)
        write(`${paint('ok', 'healthy')}: ${status.hosts.length} hosts, ${status.hosts.reduce((n, h) => n + h.workers.length, 0)} workers`);
      return ExitCode.ok;
    }
    case 'history': {
      const history = await collectHistory(ctx, parsed.hosts, parsed.lines);
      write(parsed.json ? JSON.stringify(history, null, 2) : formatHistory(history));
      return ExitCode.ok;
    }
    case 'lock-status': {
      const locks = await collectLocks(ctx, parsed.hosts);
      if (parsed.json) write(JSON.stringify({ locks }, null, 2));
      else {
        for (const l of locks) {
          const notes = [l.stale ? 'STALE: its process is gone' : undefined, l.lease ?? undefined].filter(Boolean).join('; ');
          write(`${l.host}: ${l.holder ? `locked by ${describeHolder(l.holder)}${notes ? ` (${notes})` : ''}` : 'free'}`);
        }
      }
      return ExitCode.ok;
    }
    case 'lock-release': {
      const results = await releaseLocksOn(ctx, parsed.hosts, parsed.force);
      if (parsed.json) write(JSON.stringify({ results }, null, 2));
      else for (const r of results) write(`${r.host}: ${r.released ? `released the lock of ${describeHolder(r.holder!)}` : r.reason}`);
      const refused = results.filter((r) => !r.released && r.holder);
      if (refused.length > 0) {
        throw new UsageError(`${refused.length} lock(s) may still be in use and were kept`, {
          next: 'make sure that deploy is dead (voxops lock status), then: voxops lock release --force',
        });
      }
      return ExitCode.ok;
    }
    case 'logs':
      write(await collectLogs(ctx, parsed.role, parsed.host, parsed.worker, parsed.lines));
      return ExitCode.ok;
  }
}
