import { currentTag, install } from '../commands/git.js';
import { journalTail, resetAndRestartUnit } from '../commands/systemd.js';
import { parseHealthProbe, probeHealthUrl, type HealthProbe } from '../commands/worker.js';
import type { ServiceRoleConfig } from '../config/schema.js';
import { DrainTimeoutError, HealthGateError, InterruptedError, tail } from '../errors.js';
import type { HostSession } from '../exec/executor.js';
import { sleep, type OperationContext } from '../deploy/context.js';
import type { ActivateRelease, ActivateResult, RoleRecipe } from './recipe.js';

const POLL_MS = 100;

/** curl's exit code for "could not connect": nothing listens, so the process holds nothing either. */
const CURL_COULD_NOT_CONNECT = 7;

async function probe(session: HostSession, url: string): Promise<HealthProbe & { exitCode: number | null }> {
  const result = await session.run(probeHealthUrl(url));
  return { ...parseHealthProbe(result.stdout, result.stderr), exitCode: result.exitCode };
}

function describe(p: HealthProbe, tag: string): string {
  if (p.httpStatus === 0) return `no answer (${p.error ?? 'nothing listening'})`;
  if (p.httpStatus !== 200) return `HTTP ${p.httpStatus}`;
  return `version ${p.body?.version ?? '(none)'}, expected ${tag}`;
}

/**
 * One unit per host (api: voxbridge, dialler: voxdialler): restart it, then gate on its health URL
 * reporting the new version from a new process. With one host per role the restart is downtime, and
 * the result says how long it was.
 */
export function serviceRecipe(role: 'api' | 'dialler', config: ServiceRoleConfig, options: { idleTimeoutSeconds?: number } = {}): RoleRecipe {
  const url = config.health.url;
  return {
    role,
    path: config.path,
    repo: config,
    install: install(config.path, config.install),
    preserve: config.preserve,
    minFreeDiskMb: config.minFreeDiskMb,
    restoresItself: false,
    async readTag(session) {
      const result = await session.run(currentTag(config.path));
      return result.exitCode === 0 ? result.stdout.trim() || null : null;
    },
    async inspect(session) {
      const now = await probe(session, url);
      const warnings = now.httpStatus === 200 ? [] : [`${session.host.name}: ${role} is not healthy before the deploy (${describe(now, '?')})`];
      return { problems: [], warnings };
    },
    planActivate(tag) {
      return [
        ...(config.idle ? [{ ...probeHealthUrl(url), name: `poll until ${config.idle.field}=0 (at most ${options.idleTimeoutSeconds ?? config.idle.timeoutSeconds}s)` }] : []),
        resetAndRestartUnit(config.unit),
        { ...probeHealthUrl(url), name: `poll until 200, version ${tag}, new pid (at most ${config.health.gateTimeoutSeconds}s)` },
      ];
    },
    async activate(ctx, session, release) {
      return restartAndGate(ctx, session, role, config, release, options.idleTimeoutSeconds);
    },
  };
}

async function restartAndGate(
  ctx: OperationContext,
  session: HostSession,
  role: string,
  config: ServiceRoleConfig,
  release: ActivateRelease,
  idleTimeoutSeconds: number | undefined,
): Promise<ActivateResult> {
  const host = session.host.name;
  const url = config.health.url;
  const before = await probe(session, url);
  const oldPid = typeof before.body?.pid === 'number' ? before.body.pid : undefined;
  let idleNote = '';
  // a slow or failing answer is not "idle": only a process that is not there at all holds no lease
  if (config.idle && !release.restoring && before.exitCode !== CURL_COULD_NOT_CONNECT) {
    idleNote = await waitForIdle(ctx, session, role, config, idleTimeoutSeconds ?? config.idle.timeoutSeconds);
  }
  const restartedAt = Date.now();
  ctx.reporter.emit({ type: 'step', host, step: `restart ${config.unit}`, status: 'start' });
  await session.run(resetAndRestartUnit(config.unit));
  ctx.reporter.emit({ type: 'step', host, step: `restart ${config.unit}`, status: 'done', durationMs: Date.now() - restartedAt });
  const deadline = restartedAt + config.health.gateTimeoutSeconds * 1000;
  let last: HealthProbe = { httpStatus: 0 };
  for (;;) {
    last = await probe(session, url);
    const pid = last.body?.pid;
    if (last.httpStatus === 200 && last.body?.version === release.tag && (oldPid === undefined || pid !== oldPid)) {
      const downtimeMs = Date.now() - restartedAt;
      return { downtimeMs, message: `${config.unit} pid ${String(pid)} serves ${release.tag}; ${role} was down ${(downtimeMs / 1000).toFixed(1)} s${idleNote}` };
    }
    if (Date.now() >= deadline) break;
    // a gate is never abandoned half-way on Ctrl-C: the unit was restarted, its health must be known
    await sleep(POLL_MS);
  }
  const journal = await session.run(journalTail(config.unit, 30)).catch(() => undefined);
  throw new HealthGateError(
    `${host}: ${role} did not come up on ${release.tag} within ${config.health.gateTimeoutSeconds}s: ${describe(last, release.tag)}`,
    { host, ...(journal ? { journal: tail(journal.stdout, 30) } : {}) },
  );
}

/**
 * The dialler leases calls (atomically, in MongoDB) and then places them; a restart while it holds a
 * lease strands that call until the lease expires. So it is restarted at a moment its /health says
 * it holds none (runbooks/dialler-restart.md).
 */
async function waitForIdle(ctx: OperationContext, session: HostSession, role: string, config: ServiceRoleConfig, timeoutSeconds: number): Promise<string> {
  const field = config.idle!.field;
  const host = session.host.name;
  const started = Date.now();
  let last: unknown;
  for (;;) {
    const p = await probe(session, config.health.url);
    last = p.body?.[field];
    if (p.httpStatus === 200 && last === 0) {
      const waited = Date.now() - started;
      ctx.reporter.emit({ type: 'info', host, message: `${role}: ${field}=0 after ${(waited / 1000).toFixed(1)} s: restarting now` });
      return `; restarted at ${field}=0 (waited ${(waited / 1000).toFixed(1)} s)`;
    }
    if (ctx.signal.aborted) throw new InterruptedError(`interrupted while ${host} waited for ${role} ${field}=0; ${role} was not restarted`);
    if (Date.now() - started >= timeoutSeconds * 1000) break;
    await sleep(POLL_MS, ctx.signal);
  }
  throw new DrainTimeoutError(`${host}: ${role} still had ${field}=${String(last)} after ${timeoutSeconds}s; it was not restarted`, {
    next: `try again when the campaigns are quieter, or wait longer: voxops deploy ${role} --tag <tag> --drain-timeout 600`,
  });
}
