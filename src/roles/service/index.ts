import { journalTail, resetAndRestartUnit } from '../../commands/systemd.js';
import { probeHealthUrl } from '../../commands/worker.js';
import type { ServiceRoleConfig } from '../../config/schema.js';
import { DrainTimeoutError, HealthGateError, InterruptedError, tail } from '../../errors.js';
import { poll } from '../../wait.js';
import type { HostContext, HostResult, OperationRequest, RoleDefinition, RoleObserver } from '../contract.js';
import { checkoutDriver, configOf, type ActivateRelease, type CheckoutRecipe } from '../shared/checkout.js';
import { isHealthy, nothingListening, probe, type Probe } from '../shared/health.js';
import { checkoutTag } from '../shared/tag.js';

const POLL_MS = 100;

function describe(p: Probe, tag: string): string {
  if (p.httpStatus === 0) return `no answer (${p.error ?? 'nothing listening'})`;
  if (p.httpStatus !== 200) return `HTTP ${p.httpStatus}`;
  return `version ${p.body?.version ?? '(none)'}, expected ${tag}`;
}

/**
 * One unit per host (api: voxbridge, dialler: voxdialler): restart it, then gate on its health URL
 * reporting the new version from a new process. With one host per role the restart is downtime, and
 * the result says how long it was.
 */
function serviceRecipe(role: 'api' | 'dialler'): CheckoutRecipe<ServiceRoleConfig> {
  return {
    role,
    config: (inventory) => inventory.roles[role],
    preserve: (config) => config.preserve,
    restoresItself: false,
    readTag: (host, config) => checkoutTag(host, config.path),
    async inspect(host, config) {
      const now = await probe(host, probeHealthUrl(config.health.url));
      const warnings =
        now.httpStatus === 200 ? [] : [`${host.host.name}: ${role} is not healthy before the deploy (${describe(now, '?')})`];
      return { problems: [], warnings };
    },
    describeActivate(config, tag, request) {
      const url = config.health.url;
      const idle = config.idle
        ? [
            {
              ...probeHealthUrl(url),
              name: `poll until ${config.idle.field}=0 (at most ${request.drainTimeoutSeconds ?? config.idle.timeoutSeconds}s)`,
            },
          ]
        : [];
      return [
        ...idle,
        resetAndRestartUnit(config.unit),
        { ...probeHealthUrl(url), name: `poll until 200, version ${tag}, new pid (at most ${config.health.gateTimeoutSeconds}s)` },
      ];
    },
    activate: (host, config, release, request) => restartAndGate(host, role, config, release, request),
  };
}

async function restartAndGate(
  host: HostContext,
  role: string,
  config: ServiceRoleConfig,
  release: ActivateRelease,
  request: OperationRequest,
): Promise<HostResult> {
  const name = host.host.name;
  const url = probeHealthUrl(config.health.url);
  const before = await probe(host, url);
  const oldPid = typeof before.body?.pid === 'number' ? before.body.pid : undefined;
  let idleNote = '';
  // a slow or failing answer is not "idle": only a process that is not there at all holds no lease
  if (config.idle && !release.restoring && !nothingListening(before)) {
    idleNote = await waitForIdle(host, role, config, request.drainTimeoutSeconds ?? config.idle.timeoutSeconds);
  }
  const restartedAt = host.clock.now();
  await host.step(resetAndRestartUnit(config.unit));
  // a gate is never abandoned half-way on Ctrl-C: the unit was restarted, its health must be known
  const gate = await poll({
    clock: host.clock,
    timeoutMs: Math.max(0, restartedAt + config.health.gateTimeoutSeconds * 1000 - host.clock.now()),
    intervalMs: POLL_MS,
    probe: () => probe(host, url),
    until: (p) =>
      p.httpStatus === 200 && p.body?.version === release.tag && (oldPid === undefined || p.body?.pid !== oldPid) ? p : undefined,
  });
  if (gate.outcome === 'done') {
    const downMs = host.clock.now() - restartedAt;
    return {
      downMs,
      message: `${config.unit} pid ${String(gate.result.body?.pid)} serves ${release.tag}; ${role} was down ${(downMs / 1000).toFixed(1)} s${idleNote}`,
    };
  }
  const journal = await host.run(journalTail(config.unit, 30)).catch(() => undefined);
  throw new HealthGateError(
    `${name}: ${role} did not come up on ${release.tag} within ${config.health.gateTimeoutSeconds}s: ${describe(gate.last, release.tag)}`,
    {
      host: name,
      ...(journal ? { journal: tail(journal.stdout, 30) } : {}),
    },
  );
}

/**
 * The dialler leases calls (atomically, in MongoDB) and then places them; a restart while it holds a
 * lease strands that call until the lease expires. So it is restarted at a moment its /health says
 * it holds none (runbooks/dialler-restart.md).
 */
async function waitForIdle(host: HostContext, role: string, config: ServiceRoleConfig, timeoutSeconds: number): Promise<string> {
  const field = config.idle!.field;
  const name = host.host.name;
  const wait = await poll({
    clock: host.clock,
    signal: host.signal,
    timeoutMs: timeoutSeconds * 1000,
    intervalMs: POLL_MS,
    probe: () => probe(host, probeHealthUrl(config.health.url)),
    until: (p) => (p.httpStatus === 200 && p.body?.[field] === 0 ? true : undefined),
  });
  if (wait.outcome === 'done') {
    const waited = (wait.waitedMs / 1000).toFixed(1);
    host.info(`${role}: ${field}=0 after ${waited} s: restarting now`);
    return `; restarted at ${field}=0 (waited ${waited} s)`;
  }
  if (wait.outcome === 'aborted')
    throw new InterruptedError(`interrupted while ${name} waited for ${role} ${field}=0; ${role} was not restarted`);
  throw new DrainTimeoutError(
    `${name}: ${role} still had ${field}=${String(wait.last.body?.[field])} after ${timeoutSeconds}s; it was not restarted`,
    {
      next: `try again when the campaigns are quieter, or wait longer: voxops deploy ${role} --tag <tag> --drain-timeout 600`,
    },
  );
}

function serviceObserver(role: 'api' | 'dialler'): RoleObserver {
  const recipe = serviceRecipe(role);
  return {
    readTag: (host) => checkoutTag(host, configOf(recipe, host.inventory).path),
    async status(host) {
      const config = configOf(recipe, host.inventory);
      const [tag, p] = await Promise.all([checkoutTag(host, config.path), probe(host, probeHealthUrl(config.health.url))]);
      const health = isHealthy(p) ? 'ok' : p.httpStatus === 0 ? 'unreachable' : 'unhealthy';
      return { tag, health, problems: health === 'ok' ? [] : [`${host.host.name}: ${role} ${config.health.url} is ${health}`] };
    },
    logUnit: (inventory) => configOf(recipe, inventory).unit,
  };
}

export function serviceDefinition(role: 'api' | 'dialler'): RoleDefinition {
  return { role, drivers: [checkoutDriver(serviceRecipe(role), ['deploy', 'rollback', 'restart'])], observer: serviceObserver(role) };
}
