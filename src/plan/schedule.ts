/**
 * The call-aware schedule of one fleet host, as pure decisions over what was last seen of its
 * workers. Busy workers are left alone (nginx's max_conns=1 already keeps calls off them); the
 * moment a worker is idle it may be taken (moved aside, checked, restarted, gated). One worker may
 * always be out; more only while the host keeps `minFree` idle workers in nginx's rotation. A call
 * older than `maxCallAgeMs` is hung, and the operator's policy decides what happens to it.
 */
export type WorkerStage =
  /** the old release, in rotation */
  | 'old'
  /** its socket is moved aside: no new call reaches it; waiting for a call that slipped in to end */
  | 'draining'
  /** restarted, waiting for the new process to pass its gate */
  | 'restarting'
  /** the new release, in rotation (nginx may still shut it out for a while) */
  | 'new'
  /** left on the old release: its call outlived the wait (policy skip) */
  | 'skipped'
  | 'failed';

export interface WorkerView {
  index: number;
  stage: WorkerStage;
  /** calls it holds as last seen; undefined when it did not answer */
  calls?: number;
  /** when its current call began: the app's own figure, else when voxops first saw it busy */
  busySince?: number;
  /** nginx failed to connect to it: out of rotation until then (its fail_timeout) */
  shutOutUntil?: number;
}

export type HungCallPolicy = 'wait' | 'skip' | 'force';

export interface ScheduleLimits {
  /** idle workers the host keeps in rotation (capped at all but one worker, so a roll can proceed) */
  minFree: number;
  /** workers moved aside or restarting at once; shut-out ones too while the host holds a call */
  maxOut: number;
  /** a call older than this is hung */
  maxCallAgeMs: number;
  onHungCall: HungCallPolicy;
}

export interface ScheduleDecision {
  /** idle workers to move aside and restart now, lowest index first */
  take: number[];
  /** busy workers whose hung call is dropped now (policy force) */
  force: number[];
  /** busy workers left on the old release (policy skip) */
  skip: number[];
  /** busy workers whose hung call is still waited for (policy wait) */
  hung: number[];
  /** idle workers in rotation now */
  free: number;
  /** every worker is new, skipped or failed */
  done: boolean;
}

/**
 * Capacity lost to the roll: a worker restarting, or moved aside and idle. One moved aside with a
 * call that slipped in is busy like any worker in a call: it costs no free slot.
 */
const outOfRotation = (w: WorkerView) => w.stage === 'restarting' || (w.stage === 'draining' && !((w.calls ?? 0) > 0));

export function isShutOut(worker: WorkerView, now: number): boolean {
  return worker.shutOutUntil !== undefined && worker.shutOutUntil > now;
}

/** Idle workers nginx can give a new call to now. */
export function freeSlots(workers: readonly WorkerView[], now: number): number {
  return workers.filter((w) => (w.stage === 'old' || w.stage === 'new') && w.calls === 0 && !isShutOut(w, now)).length;
}

export function decide(workers: readonly WorkerView[], limits: ScheduleLimits, now: number): ScheduleDecision {
  const free = freeSlots(workers, now);
  const floor = Math.max(0, Math.min(limits.minFree, workers.length - 1));
  // a worker nginx shut out (a failed connect, read from its error log) serves nothing until its
  // fail_timeout has passed: it is out as much as one that is restarting
  const out = workers.filter((w) => outOfRotation(w) || isShutOut(w, now)).length;
  // On a host with no call, a shut-out worker (already on the new release) costs no one a slot, so
  // maxOut bounds only the restarts in flight. While calls run it is capacity the roll took, and it
  // counts: taking another then turned away 11 of 34 call starts in the lab, against 1-3.
  const idleHost = workers.every((w) => !((w.calls ?? 0) > 0));
  const inFlight = idleHost ? workers.filter(outOfRotation).length : out;
  // a call that slipped in after the idle check is waited for on the moved socket: it can hang too
  const hungOnes = workers.filter(
    (w) =>
      (w.stage === 'old' || w.stage === 'draining') &&
      (w.calls ?? 0) > 0 &&
      w.busySince !== undefined &&
      now - w.busySince >= limits.maxCallAgeMs,
  );
  const hungIndices = hungOnes.map((w) => w.index);
  const force = limits.onHungCall === 'force' ? hungIndices : [];
  const skip = limits.onHungCall === 'skip' ? hungIndices : [];
  const candidates = workers.filter((w) => w.stage === 'old' && w.calls === 0 && !isShutOut(w, now)).map((w) => w.index);
  // One worker may always be out: its restart is well under a second, and waiting for two idle
  // workers at once can take a whole call on a small, busy host. Beyond one, the floor holds.
  const room = out + force.length === 0 && free > 0 ? Math.max(1, free - floor) : free - floor;
  const budget = Math.max(0, Math.min(room, limits.maxOut - inFlight - force.length));
  const settled = workers.every((w) => w.stage === 'new' || w.stage === 'skipped' || w.stage === 'failed' || skip.includes(w.index));
  return {
    take: candidates.slice(0, budget),
    force,
    skip,
    hung: limits.onHungCall === 'wait' ? hungIndices : [],
    free,
    done: settled,
  };
}

/**
 * The default floor, from the host's live load: the calls expected to start on it during one
 * restart (the observed call-start rate times the restart time), twice over, and at least 1.
 */
export function defaultMinFree(startsPerSecond: number, restartSeconds: number): number {
  return Math.max(1, Math.ceil(2 * startsPerSecond * restartSeconds));
}

/** `--min-free`: a number of slots, or a percentage of the host's workers ("25%"). */
export function parseMinFree(value: string, workers: number): number | undefined {
  const percent = /^(\d{1,3})%$/.exec(value);
  if (percent) return Math.ceil((Number(percent[1]) / 100) * workers);
  return /^\d+$/.test(value) ? Number(value) : undefined;
}
