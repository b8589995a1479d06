import type { Clock } from '../clock.js';
import type { Step } from '../exec/command.js';
import type { HistoryEntry, Progress } from '../commands/state.js';
import type { Host, Inventory } from '../config/inventory.js';
import type { RoleName } from '../config/schema.js';
import type { HeldLock, VoxopsError } from '../errors.js';
import type { OperationEvent, WorkerPhase, WorkerTimeline } from '../events.js';
import type { ReleaseTarget } from '../release/place.js';
import type { ReleaseSource } from '../release/source.js';
import type { ReleaseWorkspace } from '../release/workspace.js';

/**
 * The contract between the engine and a role's driver. The engine owns the lifecycle (connect,
 * lock, order, history, summary, signals); a driver owns what its role is: how to read a host
 * (inspect), what to do about it (judge, pure), what a dry run shows (describe), and one host's
 * change with its undo (change).
 */
export type Action = HistoryEntry['action'];

export type DrainPolicy = 'wait' | 'skip' | 'force';

/** One operation as the operator asked for it, after the CLI parsed it. One name per idea, flag to field. */
export interface OperationRequest {
  action: Action;
  role: RoleName;
  /** deploy: required; rollback: absent means each host's last-known-good; others: absent */
  tag?: string;
  /** only these hosts (by inventory name) */
  hosts?: string[];
  source: ReleaseSource;
  /** rollback: allow a tag newer than the deployed one */
  force: boolean;
  /** hosts at once; 'auto': every host (at most AUTO_PARALLEL), each keeping its own floor of free workers */
  parallel: number | 'auto';
  /** fleet: workers drained or restarting at once (one-at-a-time: a batch; call-aware: at most) */
  batch?: number;
  /** fleet: each worker the moment it is idle (call-aware), or one after another, paced by nginx */
  schedule?: 'call-aware' | 'one-at-a-time';
  /** fleet, call-aware: idle workers each host keeps in rotation: slots, or a percentage ("25%") */
  minFree?: string;
  /** fleet, call-aware: a call older than this is hung, and onDrainTimeout decides */
  maxCallAgeSeconds?: number;
  /** how long a drain waits for a call (or a lease) to end; absent: the inventory's */
  drainTimeoutSeconds?: number;
  onDrainTimeout?: DrainPolicy;
  allowUnhealthy: boolean;
  /** restart: only these workers */
  workers?: number[];
  /** scale: the new worker count */
  scaleTo?: number;
  /** ingress add-fleet / remove-fleet: the fleet host's URL */
  url?: string;
  /** wait this long for a lock another run holds, instead of refusing at once */
  lockWaitSeconds?: number;
  /** continue an interrupted or failed change: what is done already is not done again */
  resume?: boolean;
}

/** What every host's inspection starts with, read by the engine. */
export interface HostFacts<F> {
  host: Host;
  lock?: HeldLock;
  /** where an earlier change of this host stopped (killed, cut off, failed), if one did */
  progress?: Progress;
  facts: F;
}

/** The smallest plan: which host, from what to what. */
export interface HostPlan {
  host: Host;
  /** what the host runs now (a tag, or a config digest), as history records it */
  from: string | null;
  to: string;
  /** nothing to do on this host: the engine reports this and neither locks nor changes it */
  noop?: string;
  /** prefixed to the history line's detail */
  detail?: string;
}

export interface Note {
  host?: string;
  message: string;
}

/** What judge decides. Problems refuse the whole operation before anything changes. */
export interface Judgement<P extends HostPlan> {
  plans: P[];
  problems: string[];
  warnings: Note[];
  /** one line per host that says what it is now (printed before anything changes) */
  notes: Note[];
  /** what to run next when there are problems */
  next?: string;
  /** a refusal with an exit code of its own (a config the validator already rejects), thrown before the problems */
  refusal?: VoxopsError;
}

/** One line of a dry run: a step that would run, or a sentence about one. */
export type PlanLine = { step: Step; prefix?: string; text?: string } | { note: string };

/** How one host's change ended, when it did not throw. */
export interface HostResult {
  message?: string;
  /** a role with one process per host: how long nothing served */
  downMs?: number;
  /** false: nothing changed on the host, so no history line */
  history?: false;
}

/** After a failure, the host is back on `to`; `next` says how to look into what failed. */
export interface Undone {
  to: string;
  next?: string;
}

/** One host's change, and its undo: they share the progress (what was already moved, placed, restarted). */
export interface HostChange {
  apply(): Promise<HostResult>;
  /**
   * Called after apply threw. Put the host back if this failure calls for it and say where it is
   * now; undefined when there was nothing to undo. A throw here means the host needs a human.
   */
  undo?(error: unknown): Promise<Undone | undefined>;
}

/** A host as a driver sees it: its commands, the operator's clock and Ctrl-C, and the event stream. */
export interface HostContext extends ReleaseTarget {
  readonly inventory: Inventory;
  readonly clock: Clock;
  /** aborted on the first Ctrl-C or SIGTERM: stop at the next safe point */
  readonly signal: AbortSignal;
  readonly env: NodeJS.ProcessEnv;
  readonly workspace: ReleaseWorkspace;
  emit(event: OperationEvent): void;
  warn(message: string): void;
  worker(index: number, phase: WorkerPhase, message?: string): void;
  /** a worker's timeline, for the summary, whatever the outcome */
  record(timeline: WorkerTimeline): void;
  /** the same host whose signal never aborts: a rollback is never abandoned half-way */
  uninterruptible(): HostContext;
  /** record on the host what this change has done, so --resume need not do it again */
  recordProgress(done: Pick<Progress, 'installed'>): Promise<void>;
}

export interface RoleDriver<F = unknown, P extends HostPlan = HostPlan> {
  readonly role: RoleName;
  /** the actions this driver runs */
  readonly actions: readonly Action[];
  /** read only: what one host is now */
  inspect(host: HostContext, request: OperationRequest): Promise<F>;
  /** pure: every refusal, warning and the plan, from every host's facts */
  judge(facts: readonly HostFacts<F>[], request: OperationRequest, inventory: Inventory): Judgement<P>;
  /** pure: what a dry run prints for one host, in order */
  describe(plan: P, request: OperationRequest, inventory: Inventory): PlanLine[];
  /** read-only checks of a plan that need the host; a dry run runs them after describing */
  rehearse?(host: HostContext, plan: P): Promise<void>;
  /** build what the change needs on this machine before any host changes (an rsync tree) */
  prepare?(plans: readonly P[], request: OperationRequest, workspace: ReleaseWorkspace, inventory: Inventory): Promise<void>;
  change(host: HostContext, plan: P, request: OperationRequest): HostChange;
  /** warnings once every host is done (a single-host outage, an inventory that now differs) */
  afterwards?(plans: readonly P[], results: ReadonlyMap<string, HostResult>, request: OperationRequest, inventory: Inventory): Note[];
}

// A registry holds drivers of different fact and plan types; each is only ever run with its own.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyDriver = RoleDriver<any, any>;

/** What `voxops status` shows of a host, beyond the lock and last-known-good the engine reads. */
export interface RoleStatus {
  tag: string | null;
  health?: 'ok' | 'unhealthy' | 'unreachable';
  workers?: WorkerStatus[];
  capacity?: { healthy: number; configured: number };
  /** ingress only: the fleet backends in the live haproxy.cfg, and HAProxy's view of each */
  backends?: IngressBackend[];
  workersSetting?: { variable: string; value: number | null; enabledUnits: number; matches: boolean };
  problems: string[];
}

export interface WorkerStatus {
  index: number;
  unit: string;
  active: string;
  socket: boolean;
  health: 'ok' | 'unhealthy' | 'unreachable';
  version: string | null;
  activeCalls: number | null;
}

export interface IngressBackend {
  name: string;
  address: string;
  /** HAProxy's view: UP, DOWN, DRAIN, MAINT… (unknown when the runtime API does not answer) */
  status: string;
  /** live sessions (calls) now */
  sessions: number | null;
  maxconn: number | null;
}

/** The read-only side of a role: what status, history, logs and rollback need to know. */
export interface RoleObserver {
  /** the deployed tag as the host records it (null when it is not at a release tag) */
  readTag(host: HostContext): Promise<string | null>;
  status(host: HostContext): Promise<RoleStatus>;
  /** the unit whose journal `voxops logs` shows */
  logUnit(inventory: Inventory, host: Host, worker: number | undefined): string;
}

/** Everything voxops knows about one role: one folder under src/roles and one line in the registry. */
export interface RoleDefinition {
  role: RoleName;
  /** the drivers of this role's operations (the fleet: rolling deploy/rollback/restart, and scale) */
  drivers: readonly AnyDriver[];
  observer: RoleObserver;
}
