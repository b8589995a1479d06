/** What an operation tells its reporter. Reporters (TTY, plain, JSON) only format these. */
export type WorkerPhase = 'drained' | 'idle' | 'restarted' | 'healthy' | 'skipped' | 'forced' | 'undrained' | 'started' | 'removed';

export type OperationEvent =
  | { type: 'start'; operation: string; role: string; tag?: string; hosts: string[]; dryRun: boolean }
  | { type: 'host'; host: string; phase: 'start' | 'done' | 'failed' | 'rolling-back' | 'rolled-back' | 'skipped'; message?: string }
  | { type: 'step'; host: string; step: string; status: 'start' | 'done'; durationMs?: number }
  | { type: 'worker'; host: string; worker: number; phase: WorkerPhase; message?: string }
  | { type: 'command'; host: string; step: string; command: string }
  | { type: 'warning'; host?: string; message: string }
  | { type: 'info'; host?: string; message: string }
  | { type: 'progress'; host: string; progress: HostProgress }
  | { type: 'summary'; summary: OperationSummary };

/** Where one host's call-aware roll stands: what "how long?" needs. */
export interface HostProgress {
  /** the release being rolled to */
  tag: string;
  done: number;
  total: number;
  /** workers out of rotation now (moved aside or restarting) */
  out: number;
  /** idle workers in nginx's rotation now */
  free: number;
  /** the calls the roll waits for: which worker, and how long each has run */
  waitingOn: { worker: number; callMs: number }[];
  /** an estimate of the time left, once enough calls were seen to end */
  etaMs?: number;
}

export interface WorkerTimeline {
  host: string;
  worker: number;
  unit: string;
  drainedAt?: number;
  idleAt?: number;
  restartedAt?: number;
  healthyAt?: number;
  /** when nginx routes calls to it again (healthy + nginx fail_timeout) */
  inRotationAt?: number;
  /** drained -> back in nginx's rotation: the worker took no new calls */
  outOfRotationMs?: number;
  /** restart -> healthy: no process served this slot */
  downtimeMs?: number;
  /** version the worker ended on */
  version?: string;
  outcome: 'rolled' | 'skipped' | 'failed' | 'rolled-back' | 'untouched';
}

export interface HostOutcome {
  host: string;
  role: string;
  from: string | null;
  to: string;
  outcome: 'success' | 'rolled-back' | 'failed' | 'interrupted' | 'not-started' | 'planned';
  durationMs: number;
  /** epoch ms when this host's change began (absent when it never started) */
  startedAt?: number;
  /** a role with one process per host: how long nothing served (restart -> healthy) */
  downMs?: number;
  message?: string;
}

/** Why an operation failed, as the one error line the CLI prints: what happened and what to run next. */
export interface OperationError {
  message: string;
  next?: string;
  /** every problem, for refusals that list them (preflight, inventory) */
  problems?: string[];
}

export interface OperationSummary {
  operation: string;
  role: string;
  tag?: string;
  startedAt: string;
  durationMs: number;
  exitCode: number;
  /** present whenever exitCode is not 0 */
  error?: OperationError;
  hosts: HostOutcome[];
  workers: WorkerTimeline[];
}

export interface Reporter {
  emit(event: OperationEvent): void;
  /** flush and stop any live display */
  close(): Promise<void>;
}
