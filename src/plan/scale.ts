import type { FleetRoleConfig } from '../config/schema.js';
import { setEnvVariable } from '../commands/env-file.js';
import type { Step } from '../exec/command.js';
import { workerSocket } from '../commands/worker.js';
import { workerIndices } from './fleet.js';

/** What `scale` does on one host, decided from the host's facts before anything changes. */
export interface ScalePlan {
  host: string;
  from: number;
  to: number;
  direction: 'grow' | 'shrink';
  /** grow: units enabled and started, gated before they enter the upstream */
  added: number[];
  /** shrink: workers taken out of the upstream, waited on until idle, then disabled */
  removed: number[];
  /** workers that stay and are restarted one at a time (drained, gated) to read the new count */
  restarted: number[];
  /** the sockets the upstream lists afterwards */
  sockets: string[];
  setCount: Step;
  /** grow only: put the old count back if a new worker fails before it joins the upstream */
  restoreCount: Step;
}

/**
 * `from` is the host's current count (its env variable). `stillEnabled` lists the enabled units
 * above `to` when a shrink is resumed (an earlier run stopped at a drain timeout): only those are
 * still to be removed.
 */
export function planScale(
  role: FleetRoleConfig,
  envFile: string,
  options: { host: string; from: number; to: number; stillEnabled?: readonly number[] },
): ScalePlan {
  const { from, to } = options;
  const grow = to > from;
  const between = (a: number, b: number) => workerIndices(b).filter((i) => i > a);
  const removed = grow ? [] : between(to, from).filter((i) => !options.stillEnabled || options.stillEnabled.includes(i));
  return {
    host: options.host,
    from,
    to,
    direction: grow ? 'grow' : 'shrink',
    added: grow ? between(from, to) : [],
    removed,
    restarted: workerIndices(Math.min(from, to)),
    sockets: workerIndices(to).map((i) => workerSocket(role.workers.socket, i)),
    setCount: setEnvVariable(envFile, role.workers.countVariable, String(to)),
    restoreCount: setEnvVariable(envFile, role.workers.countVariable, String(from)),
  };
}

/** Which worker index a socket path belongs to, by the inventory's pattern (undefined: not one of ours). */
export function socketIndex(pattern: string, socket: string): number | undefined {
  const [before, after] = pattern.split('{i}') as [string, string];
  if (!socket.startsWith(before) || !socket.endsWith(after)) return undefined;
  const middle = socket.slice(before.length, socket.length - after.length);
  return /^[1-9]\d*$/.test(middle) ? Number(middle) : undefined;
}
