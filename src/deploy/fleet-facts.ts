import pLimit from 'p-limit';
import { currentTag } from '../commands/git.js';
import type { ReleaseSource } from '../cli/args.js';
import { chooseSource, lookUpTag, type TagLookup as OriginLookup } from './release.js';
import { checkNginxConfig, dumpNginxConfig, upstreamFailTimeoutSeconds, type NginxFinding } from '../commands/nginx.js';
import { freeDisk, parseFreeDiskMb } from '../commands/state.js';
import { unitStates } from '../commands/systemd.js';
import { parseHealthProbe, probeHealth, readEnvVariable, workerSocket, workerUnit, type HealthProbe } from '../commands/worker.js';
import type { FleetRoleConfig } from '../config/schema.js';
import type { LockHolder } from '../errors.js';
import type { HostSession } from '../exec/executor.js';
import { readHolder } from './locks.js';
import { workerIndices } from '../plan/fleet.js';

export interface WorkerFacts {
  index: number;
  unit: string;
  socket: string;
  active: string;
  health: HealthProbe;
}

export interface FleetHostFacts {
  host: string;
  currentTag: string | null;
  lock?: LockHolder;
  freeMb?: number;
  /** where the asked-for tag was found: the host's clone, origin, or nowhere reachable */
  tagLookup?: OriginLookup;
  workers: WorkerFacts[];
  nginx: NginxFinding[];
  /** how long nginx shuts a worker out after a failed connect (0 with max_fails=0) */
  failTimeoutSeconds: number;
  /** the value of the worker-count variable in the env file, if readable */
  countVariable?: number;
}

export function isHealthy(probe: HealthProbe): boolean {
  return probe.httpStatus === 200 && probe.body?.status === 'ok';
}

/** Everything preflight and status need from one fleet host, read in parallel over one connection. */
export type TagLookup = 'origin' | 'local-then-origin' | 'none';

export async function gatherFleetFacts(
  session: HostSession,
  role: FleetRoleConfig,
  tag?: string,
  lookup: TagLookup = tag ? 'origin' : 'none',
): Promise<FleetHostFacts> {
  const count = session.host.workers ?? role.workers.count;
  const indices = workerIndices(count);
  const units = indices.map((i) => workerUnit(role.workers.unit, i));
  const limit = pLimit(4);
  const [lock, current, disk, states, nginx, countLine, tagResult, ...probes] = await Promise.all([
    limit(() => readHolder(session)),
    limit(() => session.run(currentTag(role.path))),
    limit(() => session.run(freeDisk(role.path))),
    limit(() => session.run(unitStates(units))),
    limit(() => session.run(dumpNginxConfig())),
    limit(() => (role.workers.envFile ? session.run(readEnvVariable(role.workers.envFile, role.workers.countVariable)) : Promise.resolve(undefined))),
    limit(() => (tag && lookup !== 'none' ? lookUpTag(session, role.path, tag, lookup === 'local-then-origin') : Promise.resolve(undefined))),
    ...indices.map((i) => limit(() => session.run(probeHealth(workerSocket(role.workers.socket, i), role.health.path)))),
  ]);
  const activeLines = states.stdout.trim().split('\n');
  const sockets = indices.map((i) => workerSocket(role.workers.socket, i));
  const facts: FleetHostFacts = {
    host: session.host.name,
    currentTag: current.exitCode === 0 ? current.stdout.trim() : null,
    workers: indices.map((index, n) => ({
      index,
      unit: units[n]!,
      socket: sockets[n]!,
      active: activeLines[n]?.trim() || 'unknown',
      health: parseHealthProbe(probes[n]!.stdout, probes[n]!.stderr),
    })),
    nginx: checkNginxConfig(nginx.stdout, role.nginx.upstream, sockets, role.drain.timeoutSeconds),
    failTimeoutSeconds: upstreamFailTimeoutSeconds(nginx.stdout, role.nginx.upstream),
  };
  if (lock) facts.lock = lock;
  const free = parseFreeDiskMb(disk.stdout);
  if (free !== undefined) facts.freeMb = free;
  if (tagResult) facts.tagLookup = tagResult;
  const value = countLine?.exitCode === 0 ? Number(countLine.stdout.trim().split('=')[1]?.replace(/["']/g, '')) : NaN;
  if (Number.isInteger(value)) facts.countVariable = value;
  return facts;
}


export interface Judgement {
  problems: string[];
  warnings: string[];
}

/** Turn facts into refusals and warnings. Pure, so every rule has a unit test. */
export function judgeFleetFacts(
  facts: FleetHostFacts,
  role: FleetRoleConfig,
  options: { tag?: string; allowUnhealthy?: boolean; workers: number; source?: ReleaseSource },
): Judgement {
  const problems: string[] = [];
  const warnings: string[] = [];
  const host = facts.host;
  if (facts.currentTag === null) {
    problems.push(`${host}: ${role.path} is not checked out at a release tag, so there is nothing to roll back to`);
  }
  if (options.tag && facts.tagLookup) {
    const choice = chooseSource(host, options.tag, options.source ?? 'auto', facts.tagLookup);
    if (choice.problem) problems.push(choice.problem);
    if (choice.warning) warnings.push(choice.warning);
  }
  if (facts.freeMb !== undefined && facts.freeMb < role.minFreeDiskMb) {
    problems.push(`${host}: only ${facts.freeMb} MiB free at ${role.path} (need ${role.minFreeDiskMb} MiB)`);
  }
  for (const worker of facts.workers) {
    if (isHealthy(worker.health)) continue;
    const why = worker.health.httpStatus ? `HTTP ${worker.health.httpStatus}` : (worker.health.error ?? 'no answer');
    const line = `${host}: worker ${worker.index} (${worker.unit}, ${worker.active}) is unhealthy: ${why}`;
    (options.allowUnhealthy ? warnings : problems).push(line);
  }
  for (const finding of facts.nginx) (finding.level === 'error' ? problems : warnings).push(`${host}: nginx: ${finding.message}`);
  if (facts.countVariable !== undefined && facts.countVariable !== options.workers) {
    warnings.push(
      `${host}: ${role.workers.countVariable}=${facts.countVariable} on the host but the inventory configures ${options.workers} workers: if the host was scaled, set workers: ${facts.countVariable} for ${host} in the inventory; otherwise put the host back with voxops scale fleet --host ${host} --workers ${options.workers}`,
    );
  }
  return { problems, warnings };
}
