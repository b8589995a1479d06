import { parseFleetServers, type FleetServer } from '../../../src/commands/haproxy.js';
import { upstreamSockets } from '../../../src/commands/nginx.js';
import { RELEASE_MARKER } from '../../../src/commands/git.js';
import type { VirtualClock } from './clock.js';
import { SimFs } from './fs.js';
import type { Clone, Origin, ReleaseSpec } from './git.js';

/** One command voxops sent to a host, as it was sent, and what came back. */
export interface SentCommand {
  step: string;
  /** renderCommand(step.command): the string SSH would carry */
  command: string;
  readOnly: boolean;
  stdin?: string;
  /** every argv of the tree that actually ran (sh semantics), rendered */
  ran: string[];
  exitCode: number;
}

/** A running process: a fleet worker, a service (api, dialler), or haproxy's worker. */
export interface Proc {
  pid: number;
  unit: string;
  version: string;
  spec: ReleaseSpec;
  alive: boolean;
  /** connection attempts still refused before it listens (slowboot); Infinity: never (nosocket) */
  refuseFor: number;
  /** accepts connections but never answers (curl exit 28) */
  hung: boolean;
  /** worker: its /health leaves out active_calls (an app that does not count its calls) */
  countless?: boolean;
  /** worker: the socket path it binds; uvicorn unlinks this path when it stops */
  socket?: string;
  /** worker: its live call, which ends after `remaining` more probes over the moved socket */
  call?: Call;
  /** worker: a call nginx hands it between voxops' idle check and the move of its socket */
  incoming?: Call;
  /** worker: VOXCORE_WORKERS as it was when the process started */
  workers?: number;
  /** dialler: leases held, released after `remaining` more /health probes */
  leased?: { count: number; remaining: number };
}

/** A live call on a single-call worker. */
export interface Call {
  /** probes still to come before it ends (Infinity: never) */
  remaining: number;
  /** every probe counts, on the live socket path too (a call ending while nobody drains the worker); else only probes over the moved path */
  anyPath?: boolean;
  /** when it began (epoch ms): reported as /health's call_started_at, as an app that knows it would */
  startedAt?: number;
}

export interface Unit {
  name: string;
  enabled: boolean;
  state: 'active' | 'inactive' | 'failed';
  pid?: number;
  /** fault: how the next starts go, one entry per start (['ok', 'fail']: the second fails); then they work */
  nextStarts?: ('ok' | 'fail')[];
  journal: string[];
}

export type HttpAnswer = { status: number; body: string } | { error: 'refused' | 'timeout' };

/** What a role put on this host: where its files are and how its units start. */
export interface FleetSetup {
  origin: Origin;
  path: string;
  envFile: string;
  countVariable: string;
  unitPattern: string;
  socketPattern: string;
  nginxConfig: string;
  upstream: string;
}

export interface ServiceSetup {
  role: 'api' | 'dialler';
  origin: Origin;
  path: string;
  unit: string;
  url: string;
}

export interface ConsoleSetup {
  origin: Origin;
  path: string;
  current: string;
  verifyUrl: string;
  /** fault: what the URL serves instead of `current/index.html` (a stale cache in front) */
  serveOverride?: string;
}

export interface HaproxySetup {
  config: string;
  adminSocket: string;
  unit: string;
  backend: string;
  fleetPort: number;
  /** the running worker's pid (changes on reload) */
  pid: number;
  running: boolean;
  /** the fleet list the running process loaded */
  loaded: FleetServer[];
  drained: Set<string>;
  /** servers whose health check fails whatever their fleet host answers */
  down: Set<string>;
  /** live sessions per server: each `show stat` after a drain ends one */
  sessions: Map<string, number>;
  /** servers whose sessions never end (calls that outlast any drain) */
  holding: Set<string>;
  /** fault: how the next reloads go, one entry per reload: 'fail' (the unit's reload fails), 'lost' (it succeeds but no new worker starts) */
  nextReloads?: ('ok' | 'fail' | 'lost')[];
  /** fault: haproxy -c rejects a config for which this returns the [ALERT] reason */
  rejects?: (text: string) => string | undefined;
}

export interface NginxSetup {
  /** files `nginx -T` dumps, in order */
  files: string[];
  /** the fleet upstream's sockets as of the last (re)load */
  loadedSockets: string[];
  /** fault: `nginx -t` fails with this [emerg] line when it returns one */
  rejects?: (files: Map<string, string>) => string | undefined;
  /** fault: how the next `systemctl reload nginx` go, one entry per reload ('fail': nginx keeps its old config) */
  nextReloads?: ('ok' | 'fail')[];
}

export interface Estate {
  readonly clock: VirtualClock;
  nextPid(): number;
  hostByAddress(address: string): SimHost | undefined;
}

/** where nginx logs when `nginx -T` names no error_log */
export const NGINX_ERROR_LOG = '/var/log/nginx/error.log';

const json = (status: number, body: unknown): HttpAnswer => ({ status, body: JSON.stringify(body) });

/**
 * One simulated host: its files, units, processes, git clones, nginx/haproxy, and the log of every
 * command voxops sent it. Behaviour lives here; commands.ts maps argv onto it.
 */
export class SimHost {
  readonly fs = new SimFs();
  readonly units = new Map<string, Unit>();
  readonly procs = new Map<number, Proc>();
  readonly clones = new Map<string, Clone>();
  readonly log: SentCommand[] = [];
  /** called after every command voxops sent, with the host as that command left it */
  readonly watchers: ((sent: SentCommand) => void)[] = [];
  /** calls cut by a stop or restart (a worker restarted under its call): stays empty unless forced */
  readonly dropped: string[] = [];
  /** dialler leases held across a restart */
  readonly stranded: string[] = [];
  fleet?: FleetSetup;
  services: ServiceSetup[] = [];
  console?: ConsoleSetup;
  nginx?: NginxSetup;
  haproxy?: HaproxySetup;
  freeMb = 20_000;
  /** fault switches of the connection itself */
  readonly link = { unreachable: false, lostAfterCommands: undefined as number | undefined, commands: 0 };
  /** fault: the next run of the step with this name exits with this code (stderr says it is simulated) */
  readonly failSteps = new Map<string, number>();

  constructor(
    readonly estate: Estate,
    readonly name: string,
    readonly address: string,
  ) {
    this.fs.now = () => estate.clock.now();
    this.fs.mkdir('/tmp', true);
    this.fs.mkdir('/var/lib', true);
  }

  // ---- releases in checkouts -------------------------------------------------------------

  /** the release a checkout holds: the rsync marker's tag, else the tag at HEAD */
  releaseIn(path: string): string | undefined {
    const marker = `${path}/${RELEASE_MARKER}`;
    if (this.fs.stat(marker)?.kind === 'file') {
      const first = this.fs.read(marker).split('\n')[0]?.trim().split(/\s+/)[0];
      if (first) return first;
    }
    return this.clones.get(path)?.tagAtHead();
  }

  cloneAt(path: string): Clone | undefined {
    return this.clones.get(this.fs.normalize(path));
  }

  // ---- units and processes ---------------------------------------------------------------

  unit(name: string): Unit | undefined {
    const known = this.units.get(name);
    if (known) return known;
    // template instances (voxcore@7) exist as soon as they are named
    if (this.fleet && this.workerIndex(name) !== undefined) {
      const unit: Unit = { name, enabled: false, state: 'inactive', journal: [] };
      this.units.set(name, unit);
      return unit;
    }
    return undefined;
  }

  defineUnit(name: string, enabled = true): Unit {
    const unit: Unit = { name, enabled, state: 'inactive', journal: [] };
    this.units.set(name, unit);
    return unit;
  }

  workerIndex(unit: string): number | undefined {
    if (!this.fleet) return undefined;
    const [before, after] = this.fleet.unitPattern.split('{i}') as [string, string];
    const name = unit.replace(/\.service$/, '');
    if (!name.startsWith(before) || !name.endsWith(after)) return undefined;
    const middle = name.slice(before.length, name.length - after.length);
    return /^[1-9]\d*$/.test(middle) ? Number(middle) : undefined;
  }

  socketOf(index: number): string {
    return this.fleet!.socketPattern.replace('{i}', String(index));
  }

  workerUnit(index: number): Unit {
    return this.unit(this.fleet!.unitPattern.replace('{i}', String(index)))!;
  }

  /** the process a unit runs now */
  procOf(unit: Unit | string): Proc | undefined {
    const u = typeof unit === 'string' ? this.unit(unit) : unit;
    const proc = u?.pid !== undefined ? this.procs.get(u.pid) : undefined;
    return proc?.alive ? proc : undefined;
  }

  /** fleet worker `index`'s running process */
  worker(index: number): Proc | undefined {
    return this.procOf(this.workerUnit(index));
  }

  journal(unit: Unit, line: string): void {
    unit.journal.push(line);
  }

  stopUnit(unit: Unit): void {
    const proc = this.procOf(unit);
    if (proc) {
      if (proc.call) this.dropped.push(`${unit.name} (pid ${proc.pid})`);
      if (proc.leased && proc.leased.count > 0) this.stranded.push(`${unit.name} (pid ${proc.pid}, ${proc.leased.count} leases)`);
      // uvicorn unlinks its socket path at shutdown, whatever is there now (the drain's placeholder)
      if (proc.socket && this.fs.lstat(proc.socket) && this.fs.lstat(proc.socket)?.kind !== 'dir') this.fs.remove(proc.socket, false);
      proc.alive = false;
      this.journal(unit, `Stopped ${unit.name} (pid ${proc.pid}).`);
    }
    unit.pid = undefined;
    unit.state = 'inactive';
  }

  /** start (or restart) a unit; false when it fails to start */
  startUnit(unit: Unit): boolean {
    if (this.procOf(unit)) this.stopUnit(unit);
    if (unit.nextStarts?.shift() === 'fail') {
      unit.state = 'failed';
      this.journal(unit, `${unit.name}: Main process exited, code=exited, status=1/FAILURE`);
      this.journal(unit, `${unit.name}: Failed with result 'exit-code'.`);
      return false;
    }
    const proc = this.spawn(unit);
    unit.state = 'active';
    if (proc) {
      this.procs.set(proc.pid, proc);
      unit.pid = proc.pid;
      this.journal(unit, `Started ${unit.name}: pid ${proc.pid}, ${proc.version}`);
      if (proc.spec.flavour === 'badhealth') this.journal(unit, `ERROR health check fails: RELEASE_FLAVOUR=badhealth (${proc.version})`);
      if (proc.spec.flavour === 'nosocket')
        this.journal(unit, `worker ${proc.version} started but has not bound ${proc.socket ?? 'its port'}`);
    }
    return true;
  }

  private newProc(unit: Unit, origin: Origin, path: string): Proc {
    const version = this.releaseIn(path) ?? 'unknown';
    const spec = origin.spec(version);
    const refuseFor = spec.flavour === 'nosocket' ? Infinity : spec.flavour === 'slowboot' ? (spec.bootProbes ?? 3) : 0;
    return { pid: this.estate.nextPid(), unit: unit.name, version, spec, alive: true, refuseFor, hung: false };
  }

  private spawn(unit: Unit): Proc | undefined {
    const index = this.workerIndex(unit.name);
    if (index !== undefined) {
      const fleet = this.fleet!;
      const proc = this.newProc(unit, fleet.origin, fleet.path);
      proc.socket = this.socketOf(index);
      proc.workers = Number(this.envValue(fleet.envFile, fleet.countVariable) ?? 1);
      // run_worker.sh: rm -f "$VOXCORE_SOCKET", then uvicorn binds it
      if (this.fs.lstat(proc.socket)) this.fs.remove(proc.socket, false);
      if (proc.refuseFor === 0) this.fs.socket(proc.socket, proc.pid, 'voxcore');
      return proc;
    }
    const service = this.services.find((s) => s.unit === unit.name);
    if (service) {
      const proc = this.newProc(unit, service.origin, service.path);
      if (service.role === 'dialler') proc.leased = { count: 0, remaining: 0 };
      return proc;
    }
    if (this.haproxy && unit.name === this.haproxy.unit) {
      this.haproxy.pid = this.estate.nextPid();
      this.haproxy.running = true;
      return undefined;
    }
    return undefined;
  }

  envValue(file: string, name: string): string | undefined {
    if (!this.fs.exists(file)) return undefined;
    const line = this.fs
      .read(file)
      .split('\n')
      .find((l) => l.startsWith(`${name}=`));
    return line?.slice(name.length + 1).replace(/["']/g, '');
  }

  // ---- HTTP ------------------------------------------------------------------------------

  /** a process answers (or not) an HTTP request: the shared rules of every app on the hosts */
  private answerFrom(proc: Proc, path: string, quiet: boolean): HttpAnswer {
    if (proc.hung) return { error: 'timeout' };
    if (proc.refuseFor > 0) {
      if (!quiet) proc.refuseFor -= 1;
      if (proc.refuseFor > 0 || quiet) return { error: 'refused' };
      if (proc.socket) this.fs.socket(proc.socket, proc.pid, 'voxcore');
    }
    const healthy = proc.spec.flavour !== 'badhealth';
    if (proc.socket !== undefined) {
      if (path === '/health/fleet') return json(200, this.fleetView(proc.workers ?? 1));
      if (path !== '/health') return json(404, { detail: 'Not Found' });
      const started = proc.call?.startedAt !== undefined ? { call_started_at: proc.call.startedAt / 1000 } : {};
      const body = {
        status: healthy ? 'ok' : 'error',
        version: proc.version,
        ...(proc.countless ? {} : { active_calls: proc.call ? 1 : 0 }),
        max_calls: 1,
        max_seen_calls: proc.call ? 1 : 0,
        pid: proc.pid,
        workers: proc.workers,
        ...started,
      };
      return json(healthy ? 200 : 500, body);
    }
    if (proc.leased && !quiet) {
      if (proc.leased.count > 0 && proc.leased.remaining <= 0) proc.leased.count = 0;
      else proc.leased.remaining -= 1;
    }
    const body = {
      status: healthy ? 'ok' : 'error',
      version: proc.version,
      pid: proc.pid,
      ...(proc.leased ? { leased_calls: proc.leased.count } : {}),
    };
    return json(healthy ? 200 : 500, body);
  }

  /** GET over a Unix socket path (curl --unix-socket) */
  answerSocket(path: string, httpPath: string, quiet = false): HttpAnswer {
    const node = this.fs.lstat(path);
    if (node?.kind !== 'socket') {
      // a slow-booting worker binds only after some attempts to connect to its path
      const booting = [...this.procs.values()].find(
        (p) => p.alive && p.socket === this.fs.normalize(path) && p.refuseFor > 0 && p.refuseFor !== Infinity,
      );
      return booting ? this.answerFrom(booting, httpPath, quiet) : { error: 'refused' };
    }
    const proc = this.procs.get(node.pid);
    if (!proc?.alive) return { error: 'refused' };
    // the drained worker's call goes on over the moved path; each probe there brings its end nearer
    if (!quiet && proc.call && (proc.call.anyPath || this.fs.normalize(path) !== proc.socket)) {
      if (proc.call.remaining <= 0) proc.call = undefined;
      else proc.call.remaining -= 1;
    }
    return this.answerFrom(proc, httpPath, quiet);
  }

  /** what a worker's /health/fleet reports: every worker socket 1..count, probed */
  private fleetView(count: number): Record<string, unknown> {
    const workers = Array.from({ length: count }, (_, n) => {
      const answer = this.answerSocket(this.socketOf(n + 1), '/health', true);
      const body = 'status' in answer ? (JSON.parse(answer.body) as Record<string, unknown>) : {};
      const healthy = 'status' in answer && answer.status === 200 && body.status === 'ok';
      return {
        worker: n + 1,
        socket: this.socketOf(n + 1),
        healthy,
        version: body.version,
        pid: body.pid,
        active_calls: body.active_calls,
        max_calls: body.max_calls,
      };
    });
    const healthy = workers.filter((w) => w.healthy);
    const active = healthy.reduce((sum, w) => sum + Number(w.active_calls ?? 0), 0);
    return {
      status: healthy.length === count ? 'ok' : 'degraded',
      expected_workers: count,
      capacity: healthy.length,
      healthy: healthy.length,
      busy: healthy.filter((w) => Number(w.active_calls) >= 1).length,
      active_calls: active,
      free: healthy.length - active,
      versions: [...new Set(healthy.map((w) => String(w.version)))].sort(),
      workers,
    };
  }

  /** GET a URL from this host (curl URL): its own services, or another host by address */
  answerUrl(raw: string): HttpAnswer {
    const url = new URL(raw);
    if (url.hostname !== '127.0.0.1' && url.hostname !== 'localhost') {
      const other = this.estate.hostByAddress(url.hostname);
      return other ? other.answerUrl(`${url.protocol}//127.0.0.1${url.port ? `:${url.port}` : ''}${url.pathname}`) : { error: 'timeout' };
    }
    const service = this.services.find((s) => s.url === `${url.protocol}//${url.host}${url.pathname}`);
    if (service) {
      const proc = this.procOf(service.unit);
      return proc ? this.answerFrom(proc, url.pathname, false) : { error: 'refused' };
    }
    if (url.port === '' || url.port === '80') {
      if (this.console && raw === this.console.verifyUrl) return this.serveConsole(this.console);
      if (this.nginx && this.fleet) return this.proxyToWorker(url.pathname);
    }
    return { error: 'refused' };
  }

  private serveConsole(console: ConsoleSetup): HttpAnswer {
    if (console.serveOverride !== undefined) return { status: 200, body: console.serveOverride };
    const index = `${console.current}/index.html`;
    return this.fs.stat(index)?.kind === 'file'
      ? { status: 200, body: this.fs.read(index) }
      : { status: 404, body: '<html>404 Not Found</html>' };
  }

  /** nginx: the first upstream socket that connects, answers and has no call (max_conns=1); nginx never asks whether it is healthy */
  private proxyToWorker(path: string): HttpAnswer {
    for (const socket of this.nginx!.loadedSockets) {
      const probe = this.answerSocket(socket, '/health', true);
      if (!('status' in probe) || (JSON.parse(probe.body) as { active_calls?: number }).active_calls) continue;
      return this.answerSocket(socket, path, true);
    }
    return { status: 502, body: '<html><head><title>502 Bad Gateway</title></head></html>' };
  }

  // ---- nginx and haproxy -----------------------------------------------------------------

  nginxFiles(): Map<string, string> {
    return new Map(this.nginx!.files.map((f) => [f, this.fs.exists(f) ? this.fs.read(f) : '']));
  }

  /** `nginx -t`: undefined when the files on disk are accepted, else nginx's error lines */
  nginxTest(): string | undefined {
    const files = this.nginxFiles();
    const missing = [...files].find(([path]) => !this.fs.exists(path));
    if (missing) return `nginx: [emerg] open() "${missing[0]}" failed (2: No such file or directory)`;
    return this.nginx!.rejects?.(files);
  }

  nginxReload(): string | undefined {
    const problem = this.nginxTest();
    if (problem) return problem;
    if (this.fleet) {
      const text = [...this.nginxFiles().values()].join('\n');
      this.nginx!.loadedSockets = upstreamSockets(text, this.fleet.upstream) ?? [];
    }
    return undefined;
  }

  /**
   * HAProxy's health check of one fleet server, as `show stat` reports it: its fleet host's
   * /health/fleet through nginx must answer 200 with a free worker; `down` fails it whatever it answers.
   */
  haproxyCheckOf(server: FleetServer): { status: 'UP' | 'DOWN'; check: string; code: string } {
    const fleet = this.estate.hostByAddress(server.host);
    const answer = this.haproxy!.down.has(server.name)
      ? { error: 'refused' as const }
      : fleet
        ? fleet.answerUrl(`http://127.0.0.1:${server.port}/health/fleet`)
        : { error: 'timeout' as const };
    // the rendered config's `http-check expect rstring "free": *[1-9]`: a host with no free worker fails it
    if ('status' in answer) {
      if (answer.status !== 200) return { status: 'DOWN', check: 'L7STS', code: String(answer.status) };
      return /"free": *[1-9]/.test(answer.body)
        ? { status: 'UP', check: 'L7OK', code: '200' }
        : { status: 'DOWN', check: 'L7RSP', code: '200' };
    }
    return { status: 'DOWN', check: answer.error === 'timeout' ? 'L4TOUT' : 'L4CON', code: '' };
  }

  /** `haproxy -c`: undefined when valid, else the [ALERT] reason */
  haproxyCheck(text: string): string | undefined {
    const h = this.haproxy!;
    if (!/^backend\s/m.test(text)) return `config : parsing [${h.config}] : no backend section`;
    return h.rejects?.(text);
  }

  haproxyReload(): string | undefined {
    const h = this.haproxy!;
    const text = this.fs.exists(h.config) ? this.fs.read(h.config) : '';
    const problem = this.haproxyCheck(text);
    if (problem) return problem;
    const fault = h.nextReloads?.shift();
    const unit = this.unit(h.unit)!;
    if (fault === 'fail') {
      this.journal(unit, `haproxy.service: Control process exited, code=exited, status=1/FAILURE`);
      this.journal(unit, `Reload failed for haproxy.service - HAProxy Load Balancer.`);
      return 'reload failed';
    }
    if (fault === 'lost') return undefined;
    h.pid = this.estate.nextPid();
    h.loaded = parseFleetServers(text, h.backend, h.fleetPort) ?? [];
    // a new process starts with fresh server state: nothing drained
    h.drained.clear();
    return undefined;
  }

  // ---- faults a test switches on ---------------------------------------------------------

  /**
   * worker `index` takes a call that ends after `probes` probes over its drained socket (Infinity:
   * never); `anyPath`: after `probes` probes wherever they come in (the call ends on its own while
   * the worker serves); `startedAt`: the app reports when it began
   */
  startCall(index: number, probes: number, options: Omit<Call, 'remaining'> = {}): Proc {
    const proc = this.worker(index);
    if (!proc) throw new Error(`simulator setup: ${this.name} worker ${index} is not running`);
    if (proc.call) throw new Error(`simulator setup: ${this.name} worker ${index} already holds a call (max_conns=1)`);
    proc.call = { remaining: probes, ...options };
    return proc;
  }

  /**
   * nginx offers worker `index` a call: it takes it only if nginx can reach it (a live socket at its
   * real path, not moved aside) and it holds none (max_conns=1). Whether it took the call.
   */
  offerCall(index: number, probes: number, options: Omit<Call, 'remaining'> = {}): boolean {
    const proc = this.worker(index);
    const node = this.fs.lstat(this.socketOf(index));
    if (!proc || proc.call || node?.kind !== 'socket' || node.pid !== proc.pid) return false;
    proc.call = { remaining: probes, ...options };
    return true;
  }

  /** worker `index` is handed a call the moment before its socket is moved aside (after voxops saw it idle) */
  slipIn(index: number, probes: number, options: Omit<Call, 'remaining'> = {}): Proc {
    const proc = this.worker(index);
    if (!proc) throw new Error(`simulator setup: ${this.name} worker ${index} is not running`);
    proc.incoming = { remaining: probes, ...options };
    return proc;
  }

  /** a call reaching a socket that is about to move: the process behind it takes the call it was handed */
  beforeSocketMove(path: string): void {
    const node = this.fs.lstat(path);
    const proc = node?.kind === 'socket' ? this.procs.get(node.pid) : undefined;
    if (!proc?.incoming) return;
    if (proc.call) throw new Error(`simulator setup: ${this.name} pid ${proc.pid} was handed a second call`);
    proc.call = proc.incoming;
    proc.incoming = undefined;
  }

  /** nginx failed to connect to a worker's socket (it was moved aside): the line its error log gets */
  nginxFailedConnect(socket: string, log = NGINX_ERROR_LOG): void {
    if (!this.fs.exists(log)) this.fs.put(log, '');
    this.fs.write(
      log,
      `2025/06/02 09:00:00 [error] 812#812: *${this.log.length} connect() to unix:${socket} failed (111: Connection refused) while connecting to upstream, client: 10.0.0.5, server: , request: "GET /attach HTTP/1.1", upstream: "http://unix:${socket}:/attach", host: "fleet"\n`,
      { append: true },
    );
  }

  /** the unit's process dies on its own: the unit is failed, a bound socket stays behind (stale) */
  crash(unit: Unit): void {
    const proc = this.procOf(unit);
    if (proc) proc.alive = false;
    unit.pid = undefined;
    unit.state = 'failed';
    this.journal(unit, `${unit.name}: Main process exited, code=killed, status=9/KILL`);
  }

  /** the dialler holds `count` leases, released after `probes` more /health probes (Infinity: never) */
  lease(count: number, probes: number): void {
    const service = this.services.find((s) => s.role === 'dialler');
    const proc = service && this.procOf(service.unit);
    if (!proc?.leased) throw new Error(`simulator setup: ${this.name} runs no dialler`);
    proc.leased = { count, remaining: probes };
  }

  // ---- assertions' view ------------------------------------------------------------------

  /** every argv that ran on this host (rendered), in order */
  ran(): string[] {
    return this.log.flatMap((c) => c.ran);
  }

  /** the commands that may change the host (steps not marked readOnly) */
  changes(): SentCommand[] {
    return this.log.filter((c) => !c.readOnly);
  }

  /** each fleet worker as a health probe on its real socket path sees it */
  workers(): {
    index: number;
    pid: number | undefined;
    version: string | undefined;
    status: number | 'refused' | 'timeout';
    activeCalls: number | undefined;
    workers: number | undefined;
  }[] {
    const count = Number(this.envValue(this.fleet!.envFile, this.fleet!.countVariable));
    return Array.from({ length: count }, (_, n) => {
      const answer = this.answerSocket(this.socketOf(n + 1), '/health', true);
      const body =
        'status' in answer ? (JSON.parse(answer.body) as { pid?: number; version?: string; active_calls?: number; workers?: number }) : {};
      return {
        index: n + 1,
        pid: body.pid,
        version: body.version,
        status: 'status' in answer ? answer.status : answer.error,
        activeCalls: body.active_calls,
        workers: body.workers,
      };
    });
  }

  /** paths a drain may leave behind: moved sockets and placeholders */
  drainLeftovers(): string[] {
    return this.fs.paths().filter((p) => p.endsWith('.draining') || (p.startsWith('/tmp/') && this.fs.lstat(p)?.kind === 'file'));
  }
}
