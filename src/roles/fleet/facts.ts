import pLimit from 'p-limit';
import { currentTag } from '../../commands/git.js';
import { errorLogSize, movedAsideSockets, nginxErrorLog, parseMovedAside } from '../../commands/probe.js';
import { checkNginxConfig, dumpNginxConfig, upstreamFailTimeoutSeconds, type NginxFinding } from '../../commands/nginx.js';
import { freeDisk, parseFreeDiskMb } from '../../commands/state.js';
import { unitStates } from '../../commands/systemd.js';
import {
  drainedSocket,
  parseHealthProbe,
  probeHealth,
  readEnvVariable,
  workerSocket,
  workerUnit,
  type HealthProbe,
} from '../../commands/worker.js';
import type { FleetRoleConfig } from '../../config/schema.js';
import { workerIndices } from '../../plan/fleet.js';
import { lookUpTag, type TagLookup } from '../../release/source.js';
import type { HostContext } from '../contract.js';
import { workerCount } from './config.js';

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
  freeMb?: number;
  /** where the asked-for tag was found: the host's clone, origin, or nowhere reachable */
  tagLookup?: TagLookup;
  workers: WorkerFacts[];
  nginx: NginxFinding[];
  /** how long nginx shuts a worker out after a failed connect (0 with max_fails=0) */
  failTimeoutSeconds: number;
  /** the value of the worker-count variable in the env file, if readable */
  countVariable?: number;
  /** where nginx logs its failed connects, and how long that log is now */
  errorLog: string;
  errorLogSize: number;
  /** workers whose socket a killed run left moved aside: still serving there, or already replaced */
  leftovers: { moved: number[]; stale: number[] };
  /** workers whose socket path is a symlink: a drain cannot take them out of rotation */
  symlinkedSockets: number[];
}

/** Where to look for a tag: origin for a deploy, the host's clone first for a rollback, nowhere for a restart. */
export type TagSearch = 'origin' | 'local-then-origin' | 'none';

/** Everything preflight and status need from one fleet host, read in parallel over one connection. */
export async function inspectFleetHost(
  host: HostContext,
  role: FleetRoleConfig,
  tag?: string,
  search: TagSearch = 'none',
  workers = workerCount(role, host.host),
): Promise<FleetHostFacts> {
  const indices = workerIndices(workers);
  const units = indices.map((i) => workerUnit(role.workers.unit, i));
  const sockets = indices.map((i) => workerSocket(role.workers.socket, i));
  const limit = pLimit(4);
  const run = (step: Parameters<HostContext['run']>[0]) => limit(() => host.run(step));
  // a worker a killed run left moved aside answers on the moved path only
  const aside = parseMovedAside((await host.run(movedAsideSockets(sockets))).stdout);
  const indexOf = (socket: string) => indices[sockets.indexOf(socket)]!;
  const leftovers = { moved: aside.moved.map(indexOf), stale: aside.stale.map(indexOf) };
  const [current, disk, states, nginx, countLine, tagLookup, ...probes] = await Promise.all([
    run(currentTag(role.path)),
    run(freeDisk(role.path)),
    run(unitStates(units)),
    run(dumpNginxConfig()),
    role.workers.envFile ? run(readEnvVariable(role.workers.envFile, role.workers.countVariable)) : Promise.resolve(undefined),
    tag && search !== 'none'
      ? limit(() => lookUpTag((s) => host.run(s), role.path, tag, search === 'local-then-origin'))
      : Promise.resolve(undefined),
    ...sockets.map((socket) => run(probeHealth(aside.moved.includes(socket) ? drainedSocket(socket) : socket, role.health.path))),
  ]);
  const activeLines = states.stdout.trim().split('\n');
  const facts: FleetHostFacts = {
    host: host.host.name,
    currentTag: current.exitCode === 0 ? current.stdout.trim() || null : null,
    workers: indices.map((index, n) => ({
      index,
      unit: units[n]!,
      socket: sockets[n]!,
      active: activeLines[n]?.trim() || 'unknown',
      health: parseHealthProbe(probes[n]!.stdout, probes[n]!.stderr),
    })),
    nginx: checkNginxConfig(nginx.stdout, role.nginx.upstream, sockets, role.drain.timeoutSeconds),
    failTimeoutSeconds: upstreamFailTimeoutSeconds(nginx.stdout, role.nginx.upstream),
    errorLog: nginxErrorLog(nginx.stdout),
    errorLogSize: 0,
    leftovers,
    symlinkedSockets: aside.symlinks.map(indexOf),
  };
  facts.errorLogSize = Number((await host.run(errorLogSize(facts.errorLog))).stdout.trim()) || 0;
  const free = parseFreeDiskMb(disk.stdout);
  if (free !== undefined) facts.freeMb = free;
  if (tagLookup) facts.tagLookup = tagLookup;
  const value = countLine?.exitCode === 0 ? Number(countLine.stdout.trim().split('=')[1]?.replace(/["']/g, '')) : NaN;
  if (Number.isInteger(value)) facts.countVariable = value;
  return facts;
}
