import type { Step } from '../../exec/command.js';
import {
  dropConfigBackup,
  dumpNginxConfig,
  installConfigFile,
  nginxErrorLines,
  readConfigFile,
  reloadNginx,
  renderScaledUpstream,
  resolveConfigFile,
  restoreConfigFile,
  testNginxConfig,
  upstreamSockets,
} from '../../commands/nginx.js';
import { disableUnitNow, enableUnitNow, unitEnabledStates, unitStates } from '../../commands/systemd.js';
import { probeHealth, probeHealthUrl, readEnvVariable, workerSocket } from '../../commands/worker.js';
import type { Inventory } from '../../config/inventory.js';
import type { FleetRoleConfig } from '../../config/schema.js';
import {
  ConfigError,
  ConfigRejectedError,
  DrainTimeoutError,
  HealthGateError,
  InterruptedError,
  PreflightError,
  UnhealthyError,
} from '../../errors.js';
import { workerIndices, workerSteps, type WorkerSteps } from '../../plan/fleet.js';
import { planScale, socketIndex, type ScalePlan } from '../../plan/scale.js';
import { poll } from '../../wait.js';
import type { HostContext, HostPlan, Judgement, Note, OperationRequest, PlanLine, RoleDriver } from '../contract.js';
import { nothingListening, probe } from '../shared/health.js';
import { fleetConfig, rollSettings, workerCount } from './config.js';
import { inspectFleetHost, type FleetHostFacts } from './facts.js';
import { judgeFleetFacts } from './judge.js';
import { gateWorker, rollWorker, waitForReadmission, type RollSettings } from './roll-worker.js';

/** How long the final check through nginx may take to see the new count (a busy host can answer 502). */
const VERIFY_TIMEOUT_MS = 30_000;

/** What one fleet host is before a scale: read only. */
export interface ScaleFacts {
  /** nginx -t's complaint when it already rejects the configuration as it is */
  nginxRejects?: string;
  /** the env variable: the host's current count */
  current?: number;
  /** the file that holds the upstream, symlinks resolved (undefined: it does not exist) */
  target?: string;
  config: string;
  /** `nginx -T`: what nginx runs */
  dump: string;
  /** every unit index looked at, and which of them are enabled / active */
  span: number[];
  enabled: number[];
  active: number[];
  fleet?: FleetHostFacts;
}

export interface ScaleHostPlan extends HostPlan {
  scale: ScalePlan;
  /** the file that holds the upstream, and its text after the change */
  target: string;
  rendered: string;
  upstreamChanged: boolean;
  failTimeoutSeconds: number;
}

function envFileOf(inventory: Inventory): { role: FleetRoleConfig; envFile: string } {
  const role = fleetConfig(inventory);
  if (!role.workers.envFile) {
    throw new ConfigError(`${inventory.file}: scale needs roles.fleet.workers.envFile (where ${role.workers.countVariable} is set)`, [], {
      next: 'add it, then: voxops config check',
    });
  }
  return { role, envFile: role.workers.envFile };
}

const same = (a: readonly (number | undefined)[], b: readonly number[]) => a.length === b.length && a.every((x, n) => x === b[n]);

/** A shrink that stopped at a drain timeout left the upstream at `to` and some removed units running. */
function resumingShrink(facts: Pick<ScaleFacts, 'enabled'>, listed: readonly (number | undefined)[], current: number, to: number): boolean {
  const all = workerIndices(to);
  return to < current && same(listed, all) && all.every((i) => facts.enabled.includes(i)) && facts.enabled.every((i) => i <= current);
}

/**
 * `voxops scale fleet --host H --workers N`: change the number of single-call workers on one fleet
 * host without dropping a call. Growing starts and gates the new workers before nginx sends them
 * anything; shrinking takes workers out of nginx first and stops each only when its call has ended.
 * Then every worker that stays is restarted, drained and gated like `voxops restart fleet`, to read
 * the new count (the app reads it only at start), and nginx's view is checked.
 */
export const scaleDriver: RoleDriver<ScaleFacts, ScaleHostPlan> = {
  role: 'fleet',
  actions: ['scale'],

  async inspect(host, request) {
    const { role, envFile } = envFileOf(host.inventory);
    const tested = await host.run(testNginxConfig());
    const empty = { config: '', dump: '', span: [], enabled: [], active: [] };
    if (tested.exitCode !== 0) return { ...empty, nginxRejects: nginxErrorLines(tested.stderr) };
    const [countLine, resolved, dump] = await Promise.all([
      host.run(readEnvVariable(envFile, role.workers.countVariable)),
      host.run(resolveConfigFile(role.nginx.config)),
      host.run(dumpNginxConfig()),
    ]);
    const value = countLine.exitCode === 0 ? countLine.stdout.trim().split('=')[1]?.replace(/["']/g, '') : undefined;
    const current = value !== undefined && /^\d+$/.test(value) ? Number(value) : undefined;
    if (current === undefined || resolved.exitCode !== 0)
      return { ...empty, dump: dump.stdout, ...(current !== undefined ? { current } : {}) };
    const target = resolved.stdout.trim();
    const config = (await host.run(readConfigFile(target))).stdout;
    const to = request.scaleTo!;
    const listed = (upstreamSockets(dump.stdout, role.nginx.upstream) ?? []).map((s) => socketIndex(role.workers.socket, s));
    // every unit that could be enabled: beyond both counts, so a stray one is seen
    const span = workerIndices(Math.max(current, to, listed.length) + 2);
    const units = span.map((i) => workerSteps(role, i).unit);
    const [enabledOut, activeOut] = await Promise.all([host.run(unitEnabledStates(units)), host.run(unitStates(units))]);
    const enabledLines = enabledOut.stdout.trim().split('\n');
    const activeLines = activeOut.stdout.trim().split('\n');
    const enabled = span.filter((_, n) => enabledLines[n]?.trim() === 'enabled');
    const active = span.filter((_, n) => ['active', 'activating', 'reloading'].includes(activeLines[n]?.trim() ?? ''));
    const healthOf = resumingShrink({ enabled }, listed, current, to) ? to : current;
    const fleet = await inspectFleetHost(host, role, undefined, 'none', healthOf);
    return { current, target, config, dump: dump.stdout, span, enabled, active, fleet };
  },

  judge(all, request, inventory) {
    const { role, envFile } = envFileOf(inventory);
    const [{ host, facts }] = all as [(typeof all)[number]];
    const name = host.name;
    const to = request.scaleTo!;
    const again = `voxops scale fleet --host ${name} --workers ${to}`;
    const empty: Judgement<ScaleHostPlan> = { plans: [], problems: [], warnings: [], notes: [] };
    if (facts.nginxRejects !== undefined) {
      return {
        ...empty,
        refusal: new ConfigRejectedError(
          `${name}: nginx rejects its configuration as it is now, before any change: ${facts.nginxRejects}; nothing was changed`,
          {
            next: `fix what nginx -t names on ${name}, then: ${again}`,
          },
        ),
      };
    }
    if (facts.current === undefined || facts.current < 1) {
      return {
        ...empty,
        refusal: new PreflightError(
          `${name}: ${role.workers.countVariable} is not set to a worker count in ${envFile}; nothing was changed`,
          [],
          { next: `voxops status --host ${name}` },
        ),
      };
    }
    if (facts.target === undefined || !facts.fleet) {
      return {
        ...empty,
        refusal: new PreflightError(`${name}: ${role.nginx.config} (roles.fleet.nginx.config) does not exist; nothing was changed`, [], {
          next: 'voxops config check',
        }),
      };
    }
    const { current, target, fleet } = facts;
    const problems: string[] = [];
    const upstream = role.nginx.upstream;
    const live = upstreamSockets(facts.dump, upstream);
    const inFile = upstreamSockets(facts.config, upstream);
    if (!live) problems.push(`${name}: nginx -T has no upstream ${upstream}`);
    else if (!inFile) problems.push(`${name}: upstream ${upstream} is not in ${target} (roles.fleet.nginx.config)`);
    else if (live.join(' ') !== inFile.join(' '))
      problems.push(`${name}: upstream ${upstream} in ${target} is not what nginx runs (a reload pending?)`);
    const listed = (live ?? []).map((s) => socketIndex(role.workers.socket, s));
    if (listed.some((i) => i === undefined))
      problems.push(`${name}: upstream ${upstream} lists sockets that do not match ${role.workers.socket}`);
    const resuming = resumingShrink(facts, listed, current, to);
    const consistent = same(listed, workerIndices(current)) && same(facts.enabled, workerIndices(current));
    if (!consistent && !resuming) {
      problems.push(
        `${name}: the worker count is inconsistent: ${role.workers.countVariable}=${current}, enabled units ${facts.enabled.join(',') || '(none)'}, upstream ${upstream} lists workers ${listed.join(',') || '(none)'}; they must agree before a scale`,
      );
    }
    if (to > current) {
      const busy = workerIndices(to).filter((i) => i > current && facts.active.includes(i));
      if (busy.length > 0)
        problems.push(`${name}: ${busy.map((i) => workerSteps(role, i).unit).join(', ')} already running though not in use`);
    }
    const judged = judgeFleetFacts(fleet, role, { workers: current });
    problems.push(...judged.problems);
    const scale = planScale(role, envFile, { host: name, from: current, to, ...(resuming ? { stillEnabled: facts.enabled } : {}) });
    const rendered = renderScaledUpstream(facts.config, { upstream, sockets: scale.sockets, tries: to });
    if (!rendered.ok) problems.push(`${name}: cannot rewrite ${target}: ${rendered.problem}`);
    const text = rendered.ok ? rendered.text : facts.config;
    const resumeNote = resuming ? ` (resuming a shrink: still to remove ${scale.removed.join(', ') || 'none'})` : '';
    const nothing = current === to && scale.removed.length === 0;
    return {
      plans: [
        {
          host,
          from: fleet.currentTag,
          to: fleet.currentTag ?? '(no tag)',
          detail: `workers ${current} -> ${to}`,
          ...(nothing ? { noop: `${name} already runs ${to} workers` } : {}),
          scale,
          target,
          rendered: text,
          upstreamChanged: text !== facts.config,
          failTimeoutSeconds: fleet.failTimeoutSeconds,
        },
      ],
      problems,
      warnings: judged.warnings.map((message) => ({ host: name, message })),
      notes: [
        {
          host: name,
          message: `on ${fleet.currentTag}, ${current} workers${resumeNote}; nginx fail_timeout paces the restarts: ${fleet.failTimeoutSeconds}s per worker`,
        },
      ],
      next: `fix the problems above (voxops status --host ${name} shows the host), then: ${again}`,
    };
  },

  describe(plan, _request, inventory) {
    const role = fleetConfig(inventory);
    const { scale } = plan;
    const lines: PlanLine[] = [
      { note: `${scale.from} -> ${scale.to} workers (${scale.direction}); restart ${scale.restarted.join(', ')} afterwards` },
    ];
    const upstream = (load: boolean) => {
      lines.push(
        { step: installConfigFile(plan.target, plan.rendered), prefix: '(new file on stdin) ' },
        { step: testNginxConfig(), prefix: 'on failure restore the backup and stop (exit 11): ' },
        ...(load ? [{ step: reloadNginx() }] : []),
        { step: load ? dropConfigBackup() : restoreConfigFile(plan.target) },
      );
    };
    if (scale.direction === 'grow') {
      if (plan.upstreamChanged) upstream(false);
      lines.push({ step: scale.setCount });
      for (const index of scale.added) {
        const steps = workerSteps(role, index);
        lines.push(
          { step: enableUnitNow(steps.unit) },
          { step: steps.probeLive, prefix: `poll until 200, version ${plan.to} (at most ${role.health.gateTimeoutSeconds}s): ` },
        );
      }
      if (plan.upstreamChanged) upstream(true);
    } else {
      if (plan.upstreamChanged) upstream(true);
      for (const index of scale.removed) {
        const steps = workerSteps(role, index);
        lines.push(
          { step: steps.drain },
          { step: steps.probeDrained, prefix: 'poll until active_calls=0 (drain timeout): ' },
          { step: disableUnitNow(steps.unit) },
          { step: steps.cleanup },
        );
      }
      lines.push({ step: scale.setCount });
    }
    for (const index of scale.restarted) {
      const w = workerSteps(role, index);
      lines.push(
        { step: w.drain },
        { step: w.probeDrained, prefix: `poll every ${role.health.pollMilliseconds} ms until active_calls=0: ` },
        { step: w.restart },
        { step: w.probeLive, prefix: `poll until 200, version ${plan.to}, new pid: ` },
        { step: w.cleanup },
      );
      if (plan.failTimeoutSeconds > 0) lines.push({ note: `wait ${plan.failTimeoutSeconds}s: nginx fail_timeout` });
    }
    lines.push({ step: probeHealthUrl(fleetHealthUrl(role), 5), prefix: `until expected_workers=${scale.to} and capacity=${scale.to}: ` });
    return lines;
  },

  change(host, plan, request) {
    return { apply: () => applyScale(host, plan, request) };
  },

  afterwards(plans, _results, request, inventory) {
    return plans.flatMap((plan) => inventoryWarning(inventory, plan.host.name, plan.host.workers, request.scaleTo!));
  },
};

/** voxops does not edit the inventory, and deploy/restart roll the inventory's count. */
function inventoryWarning(inventory: Inventory, host: string, configured: number | undefined, to: number): Note[] {
  const count = workerCount(fleetConfig(inventory), { ...(configured !== undefined ? { workers: configured } : {}) });
  if (count === to) return [];
  const ingress = inventory.hosts.some((h) => h.role === 'ingress')
    ? `; then voxops deploy ingress, so HAProxy's maxconn for ${host} is ${to} too`
    : '';
  return [
    {
      host,
      message: `set workers: ${to} for ${host} in ${inventory.file} (environments.${inventory.environment}.hosts.fleet): it says ${count}, and deploy/restart roll the inventory's count${ingress}`,
    },
  ];
}

async function applyScale(host: HostContext, plan: ScaleHostPlan, request: OperationRequest): Promise<{ message: string }> {
  const role = fleetConfig(host.inventory);
  const { scale } = plan;
  const name = host.host.name;
  const settings = rollSettings(role, request, plan.to);
  if (scale.direction === 'grow') {
    // nginx must accept the new upstream before any unit starts: try it, and put the old file back
    if (plan.upstreamChanged) await tryUpstream(host, plan, false);
    await setCount(host, role, scale.setCount, scale.to);
    const started: WorkerSteps[] = [];
    try {
      for (const index of scale.added) {
        if (host.signal.aborted) throw new InterruptedError(`interrupted: ${name} was growing; the new workers were stopped again`);
        const steps = workerSteps(role, index);
        started.push(steps);
        await host.run(enableUnitNow(steps.unit));
        const at = host.clock.now();
        host.worker(index, 'started', `${steps.unit} enabled and started`);
        const probe = await gateWorker(host, steps, settings, at);
        const healthyAt = host.clock.now();
        host.record({
          host: name,
          worker: index,
          unit: steps.unit,
          restartedAt: at,
          healthyAt,
          downtimeMs: healthyAt - at,
          version: plan.to,
          outcome: 'rolled',
        });
        host.worker(index, 'healthy', `pid ${probe.body?.pid}, not in nginx yet`);
      }
      if (plan.upstreamChanged) await tryUpstream(host, plan, true);
    } catch (error) {
      // the new workers never served a call: stop them and put the old count back
      host.emit({
        type: 'host',
        host: name,
        phase: 'rolling-back',
        message: `stopping ${started.map((s) => s.unit).join(', ') || 'nothing'}, ${role.workers.countVariable} back to ${scale.from}`,
      });
      for (const steps of started) await host.run(disableUnitNow(steps.unit));
      await setCount(host, role, scale.restoreCount, scale.from);
      throw error;
    }
    host.info(`workers ${scale.added.join(', ')} in nginx rotation`);
  } else {
    if (plan.upstreamChanged) await tryUpstream(host, plan, true);
    host.info(`workers ${scale.removed.join(', ') || '(none)'} out of nginx rotation; their live calls go on`);
    await removeWorkers(host, role, plan, settings, request.drainTimeoutSeconds !== undefined);
    await setCount(host, role, scale.setCount, scale.to);
  }
  await restartWorkers(host, role, plan, settings);
  await verify(host, role, scale.to);
  return { message: `${scale.to} workers, capacity ${scale.to}` };
}

/** Write the new count, then read the one line back (the rest of the file holds secrets). */
async function setCount(host: HostContext, role: FleetRoleConfig, step: Step, count: number): Promise<void> {
  const envFile = role.workers.envFile!;
  await host.timed(`set ${role.workers.countVariable}=${count} in ${envFile}`, async () => {
    await host.run(step);
    const line = (await host.run(readEnvVariable(envFile, role.workers.countVariable))).stdout.trim();
    if (line !== `${role.workers.countVariable}=${count}`) {
      throw new PreflightError(`${host.host.name}: ${envFile} does not read ${role.workers.countVariable}=${count} after the edit`, [], {
        next: `voxops status --host ${host.host.name}`,
      });
    }
  });
}

/**
 * Put the new upstream in place and `nginx -t` it. Rejected: the backup goes back (byte for byte)
 * and nothing is loaded, exit 11. Accepted: reload when `load`, else put the old file back for now
 * (a grow tries the config before it starts any unit).
 */
async function tryUpstream(host: HostContext, plan: ScaleHostPlan, load: boolean): Promise<void> {
  const name = host.host.name;
  const to = plan.scale.to;
  await host.timed(`new upstream (${to} workers): nginx -t${load ? ', reload' : ' only'}`, async () => {
    await host.run(installConfigFile(plan.target, plan.rendered));
    let tested;
    try {
      tested = await host.run(testNginxConfig());
    } finally {
      if (!load || tested?.exitCode !== 0) await host.run(restoreConfigFile(plan.target));
    }
    if (tested.exitCode !== 0) {
      throw new ConfigRejectedError(
        `${name}: nginx -t rejected the ${to}-worker upstream: ${nginxErrorLines(tested.stderr)}; it was not loaded and ${plan.target} is back as it was`,
        {
          next: `fix what nginx names on ${name} (nginx -t), then: voxops scale fleet --host ${name} --workers ${to}`,
        },
      );
    }
    if (!load) return;
    try {
      await host.run(reloadNginx());
    } catch (error) {
      // nginx kept its old config: the file must say the same, or the next reload by anything loads ours
      await host.run(restoreConfigFile(plan.target));
      throw error;
    }
    await host.run(dropConfigBackup()).catch(() => undefined);
  });
}

/**
 * Removed workers are out of the upstream. Move each one's socket aside as well (no late
 * connection can reach it), wait until its call has ended, then disable it. All wait together,
 * bounded by the drain timeout; a worker still in a call then stays up, out of rotation.
 */
async function removeWorkers(
  host: HostContext,
  role: FleetRoleConfig,
  plan: ScaleHostPlan,
  settings: RollSettings,
  timeoutGiven: boolean,
): Promise<void> {
  const name = host.host.name;
  const { scale } = plan;
  const deadline = host.clock.now() + settings.drainTimeoutSeconds * 1000;
  const busy: number[] = [];
  await Promise.all(
    scale.removed.map(async (index) => {
      const steps = workerSteps(role, index);
      const drained = await host.run(steps.drain);
      host.worker(index, 'drained', drained.exitCode === 0 ? undefined : 'no socket: it was not serving');
      if (drained.exitCode === 0) {
        const wait = await poll({
          clock: host.clock,
          signal: host.signal,
          timeoutMs: Math.max(0, deadline - host.clock.now()),
          intervalMs: Math.max(settings.pollMs, 200),
          probe: () => probe(host, steps.probeDrained),
          until: (p) => (nothingListening(p) || (p.httpStatus !== 0 && p.body?.active_calls === 0) ? true : undefined),
        });
        if (wait.outcome !== 'done') {
          await host.run(steps.undrain);
          if (wait.outcome === 'timeout') busy.push(index);
          host.worker(index, 'undrained', 'still in a call: left running, out of nginx rotation');
          return;
        }
        host.worker(index, 'idle', `waited ${(wait.waitedMs / 1000).toFixed(1)}s for its call to end`);
      }
      await host.run(disableUnitNow(steps.unit));
      await host.run(steps.cleanup);
      host.worker(index, 'removed', `${steps.unit} disabled and stopped`);
    }),
  );
  const again = `voxops scale fleet --host ${name} --workers ${scale.to}`;
  if (host.signal.aborted) {
    throw new InterruptedError(
      `interrupted: ${name} is half scaled: nginx sends calls to ${scale.to} workers, the removed ones still running are out of rotation`,
      { next: again },
    );
  }
  if (busy.length > 0) {
    const units = busy.map((i) => workerSteps(role, i).unit).join(', ');
    throw new DrainTimeoutError(
      `${name}: ${units} still held a call after ${settings.drainTimeoutSeconds}s; left running out of nginx rotation (its call goes on). ${role.workers.countVariable} is still ${scale.from} and the other workers were not restarted`,
      { next: `when its call has ended, finish with: ${again}${timeoutGiven ? '' : ' --drain-timeout <seconds>'}` },
    );
  }
}

/** The workers that stay read the new count only at start: restart them like `voxops restart fleet`. */
async function restartWorkers(host: HostContext, role: FleetRoleConfig, plan: ScaleHostPlan, settings: RollSettings): Promise<void> {
  const name = host.host.name;
  const { scale } = plan;
  const readmitMs = plan.failTimeoutSeconds * 1000;
  const interrupted = () =>
    new InterruptedError(`interrupted: ${name} runs ${scale.to} workers, but some still report ${scale.from}`, {
      next: `voxops restart fleet --host ${name}`,
    });
  // the same release restarted: a worker that fails its gate is a host problem, not a bad release
  const roll = async (index: number) => {
    try {
      const timeline = await rollWorker(host, workerSteps(role, index), settings);
      host.record(timeline);
      return timeline;
    } catch (error) {
      if (!(error instanceof HealthGateError)) throw error;
      throw new HealthGateError(
        `${error.message}; ${name} is scaled to ${scale.to} workers (${role.workers.countVariable}=${scale.to}, nginx updated), but worker ${index} did not come back`,
        error.details,
        {
          cause: error,
          next: `read its log (voxops logs fleet --host ${name} --worker ${index}), then: voxops restart fleet --host ${name}`,
        },
      );
    }
  };
  const deferred: number[] = [];
  for (const index of scale.restarted) {
    if (host.signal.aborted) throw interrupted();
    const timeline = await roll(index);
    if (timeline.outcome === 'skipped') deferred.push(index);
    else await waitForReadmission(host, [timeline], readmitMs);
  }
  for (const index of deferred) {
    if (host.signal.aborted) throw interrupted();
    const timeline = await roll(index);
    if (timeline.outcome === 'skipped') {
      throw new DrainTimeoutError(
        `${name}: worker ${index} still held a call after two drain timeouts; it serves on, still reading ${scale.from} workers`,
        {
          next: `when its call ends: voxops restart fleet --host ${name} --worker ${index}`,
        },
      );
    }
    await waitForReadmission(host, [timeline], readmitMs);
  }
}

function fleetHealthPath(role: FleetRoleConfig): string {
  return `${role.health.path.replace(/\/$/, '')}/fleet`;
}

function fleetHealthUrl(role: FleetRoleConfig): string {
  return `http://127.0.0.1${fleetHealthPath(role)}`;
}

/**
 * Through nginx on the host: the app's own view of the fleet must be N expected and N capacity. When
 * every worker holds a call nginx has no free upstream (502); then worker 1 is asked over its socket.
 */
async function verify(host: HostContext, role: FleetRoleConfig, to: number): Promise<void> {
  const name = host.host.name;
  const viaNginx = probeHealthUrl(fleetHealthUrl(role), 5);
  const direct = probeHealth(workerSocket(role.workers.socket, 1), fleetHealthPath(role), 5);
  let attempts = 0;
  let asked = viaNginx;
  const check = await poll({
    clock: host.clock,
    signal: host.signal,
    timeoutMs: VERIFY_TIMEOUT_MS,
    intervalMs: 1_000,
    probe: async () => {
      asked = viaNginx;
      let p = await probe(host, asked);
      if ([502, 503, 504].includes(p.httpStatus) && attempts++ >= 5) p = await probe(host, (asked = direct));
      return p;
    },
    until: (p) => (p.httpStatus === 200 && p.body?.expected_workers === to && p.body?.capacity === to ? asked : undefined),
  });
  if (check.outcome === 'done') {
    const how = check.result === viaNginx ? 'through nginx' : `over worker 1's socket (nginx had no free worker: all busy)`;
    host.info(`${fleetHealthPath(role)} ${how}: expected_workers ${to}, capacity ${to}`);
    return;
  }
  if (check.outcome === 'aborted') {
    throw new InterruptedError(`interrupted while checking ${name}'s capacity: the scale to ${to} workers itself is done`, {
      next: `voxops status --host ${name}`,
    });
  }
  const p = check.last;
  const seen =
    p.httpStatus === 200
      ? `expected_workers ${String(p.body?.expected_workers)}, capacity ${String(p.body?.capacity)}`
      : p.httpStatus
        ? `HTTP ${p.httpStatus}`
        : (p.error ?? 'no answer');
  throw new UnhealthyError(`${name}: ${asked.name} reports ${seen}, not ${to}`, [`${name}: ${fleetHealthPath(role)}: ${seen}`], {
    next: `voxops status --host ${name}`,
  });
}
