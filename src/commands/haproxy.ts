import { createHash } from 'node:crypto';
import { MAX_SECONDS } from '../config/schema.js';
import { ConfigError, shownRemoteText } from '../errors.js';
import { isConfigWord, printableQuoted, sanitizeRemoteText } from '../text.js';
import { all, any, argv, type Step } from '../exec/command.js';

/**
 * The WSS ingress: HAProxy in front of every fleet host's nginx. A pure renderer of the whole
 * haproxy.cfg, a parser of the fleet list it wrote, and the Step builders that install, check,
 * reload and drive it through its runtime API (the admin socket).
 */

/** What the renderer needs from the inventory's `roles.ingress` (every field has a default there). */
export interface IngressSettings {
  config: string;
  unit: string;
  backend: string;
  bind: string;
  fleetPort: number;
  adminSocket: string;
  health: { path: string; intervalMilliseconds: number };
  tunnelTimeoutSeconds: number;
}

/** One fleet host behind the ingress. */
export interface FleetServer {
  /** HAProxy server name (letters, digits, `.`, `_`, `-`) */
  name: string;
  /** IPv4 address, DNS name, or IPv6 address without brackets */
  host: string;
  port: number;
  /** concurrent calls HAProxy sends this host at most: its worker count */
  maxconn?: number;
}

export class FleetUrlError extends Error {}

const ipv4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const dnsLabel = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const ipv6 = /^[0-9a-f:.]+$/;

/** A host name or IP as HAProxy and curl read it; lower-cased. Throws FleetUrlError. */
export function validateFleetHost(raw: string): string {
  const host = raw.toLowerCase();
  if (ipv4.test(host)) return host;
  if (host.includes(':')) {
    if (ipv6.test(host) && host.split(':').length >= 3 && host.split(':').length <= 8 && !/:::/.test(host)) return host;
    throw new FleetUrlError(`"${raw}" is not an IPv6 address`);
  }
  const labels = host.split('.');
  // a dotted all-numeric name that is not a valid IPv4 (999.1.1.1) would be read as an address by some resolvers
  if (labels.every((l) => /^\d+$/.test(l))) throw new FleetUrlError(`"${raw}" is not a valid IPv4 address`);
  if (host.length > 253 || !labels.every((l) => dnsLabel.test(l))) throw new FleetUrlError(`"${raw}" is not a host name or IP address`);
  return host;
}

/**
 * Strict: `http://HOST[:PORT][/]`, nothing else (no user, path, query, fragment, whitespace, other
 * scheme). Throws FleetUrlError with the reason.
 */
export function parseFleetUrl(url: string, defaultPort: number): { host: string; port: number } {
  const match = /^http:\/\/(\[[^\]/]*\]|[^/:[\]]+)(?::(\d{1,5}))?\/?$/.exec(url);
  if (!match) {
    throw new FleetUrlError(`"${printable(url)}" is not a fleet URL: expected http://HOST[:PORT] (scheme http, a host name or IP, an optional port, nothing after it)`);
  }
  const rawHost = match[1]!;
  const bracketed = rawHost.startsWith('[');
  const host = validateFleetHost(bracketed ? rawHost.slice(1, -1) : rawHost);
  if (bracketed !== host.includes(':')) throw new FleetUrlError(`"${printable(url)}": an IPv6 address goes in brackets, nothing else does`);
  const port = match[2] === undefined ? defaultPort : Number(match[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new FleetUrlError(`"${printable(url)}": port must be 1-65535`);
  return { host, port };
}

function printable(text: string): string {
  return printableQuoted(text.slice(0, 200)).slice(1, -1);
}

export function serverAddress(server: { host: string; port: number }): string {
  return server.host.includes(':') ? `[${server.host}]:${server.port}` : `${server.host}:${server.port}`;
}

export function fleetUrl(server: { host: string; port: number }): string {
  return `http://${serverAddress(server)}`;
}

export function sameServer(a: { host: string; port: number }, b: { host: string; port: number }): boolean {
  return a.host.toLowerCase() === b.host.toLowerCase() && a.port === b.port;
}

/** A server name from a host that is not in the inventory: only safe characters, unique among `taken`. */
export function deriveServerName(server: { host: string; port: number }, defaultPort: number, taken: readonly string[] = []): string {
  const base = `fleet-${server.host.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '')}${server.port === defaultPort ? '' : `-${server.port}`}`;
  let name = base;
  for (let n = 2; taken.includes(name); n++) name = `${base}-${n}`;
  return name;
}

const serverNameShape = /^[A-Za-z0-9._-]+$/;

export function isValidServerName(name: string): boolean {
  return serverNameShape.test(name) && !name.startsWith('-');
}

/** A host's maxconn is its worker count; anything near this is a typo or a bad report, not a fleet host. */
const MAX_SERVER_MAXCONN = 100_000;

/**
 * One word of haproxy.cfg: HAProxy splits a line on whitespace and reads quotes, backslashes, `#`
 * (a comment) and `$` (a variable) itself, so a value with any of them would be read as other
 * words, or cut short, instead of as itself.
 */
function haproxyWord(what: string, value: string): string {
  if (!isConfigWord(value) || /[#'"\\$]/.test(value)) throw new ConfigError(`${what} cannot go into haproxy.cfg as one word: ${JSON.stringify(value)}`);
  return value;
}

/** HAProxy reads whole numbers; 1e300 would be written as 1e+300. */
function haproxyNumber(what: string, value: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < 1 || value > max) throw new ConfigError(`${what} must be a whole number in 1..${max} to go into haproxy.cfg, not ${value}`);
  return value;
}

/**
 * The whole haproxy.cfg. `maxconn` per server = the host's worker count (one call per worker), and
 * the health check asks the fleet host's `/health/fleet` for at least one free worker, so a full
 * host leaves the rotation instead of answering 502. 3600 s timeouts: a call is a WebSocket that
 * may last an hour.
 */
export function renderHaproxyConfig(settings: IngressSettings, servers: readonly FleetServer[]): string {
  const setting = (key: string) => `roles.ingress.${key}`;
  const t = `${haproxyNumber(setting('tunnelTimeoutSeconds'), settings.tunnelTimeoutSeconds, MAX_SECONDS)}s`;
  const inter = `${haproxyNumber(setting('health.intervalMilliseconds'), settings.health.intervalMilliseconds, MAX_SECONDS * 1000)}ms`;
  const adminSocket = haproxyWord(setting('adminSocket'), settings.adminSocket);
  const bind = haproxyWord(setting('bind'), settings.bind);
  const backend = haproxyWord(setting('backend'), settings.backend);
  const healthPath = haproxyWord(setting('health.path'), settings.health.path);
  const lines = servers.map((s) => {
    const name = s.name;
    if (!isValidServerName(name)) throw new ConfigError(`server name ${JSON.stringify(name)} cannot go into haproxy.cfg: letters, digits, dot, dash or underscore`);
    const address = serverAddress({ host: haproxyWord(`the host of server ${name}`, s.host), port: haproxyNumber(`the port of server ${name}`, s.port, 65_535) });
    const maxconn = s.maxconn === undefined ? '' : ` maxconn ${haproxyNumber(`the maxconn of server ${name}`, s.maxconn, MAX_SERVER_MAXCONN)}`;
    return `    server ${name} ${address}${maxconn}`;
  });
  return `# Rendered by voxops (voxops deploy ingress / ingress add-fleet / remove-fleet).
# Hand edits are undone by the next render; the fleet list is environments.<env>.hosts.fleet.
global
    log /dev/log local0
    maxconn 4096
    stats socket ${adminSocket} mode 660 level admin
    user haproxy
    group haproxy
    daemon

defaults
    mode http
    log global
    option httplog
    timeout connect 5s
    timeout queue 5s
    timeout check 2s
    timeout client ${t}
    timeout server ${t}
    timeout tunnel ${t}

frontend calls
    bind ${bind}
    default_backend ${backend}

backend ${backend}
    balance leastconn
    # a refused connect or a 502/503 (no free worker on that host) is tried once more on another host
    retries 2
    option redispatch 1
    retry-on conn-failure 502 503
    # capacity-aware: a fleet host without a free worker leaves the rotation until one frees up
    option httpchk GET ${healthPath}
    http-check expect rstring "\\"free\\": *[1-9]"
    default-server check inter ${inter} rise 1 fall 1
${lines.join('\n')}

listen stats
    bind 127.0.0.1:8404
    stats enable
    stats uri /stats
`;
}

const sectionKeyword = /^(global|defaults|frontend|backend|listen|resolvers|peers|userlist|mailers|program|cache|ring|http-errors)\b/;

/**
 * The fleet list of a live haproxy.cfg: the `server` lines of `backend <name>`. Reads what the
 * renderer writes and hand-written configs alike (a server without a port gets `defaultPort`).
 * Undefined when the backend is missing.
 */
export function parseFleetServers(config: string, backend: string, defaultPort: number): FleetServer[] | undefined {
  let inside = false;
  let found = false;
  const servers: FleetServer[] = [];
  for (const raw of config.split('\n')) {
    const line = raw.replace(/(^|\s)#.*$/, '').trimEnd();
    if (!line.trim()) continue;
    if (sectionKeyword.test(line)) {
      const [keyword, name] = line.trim().split(/\s+/);
      inside = keyword === 'backend' && name === backend;
      found ||= inside;
      continue;
    }
    if (!inside) continue;
    const words = line.trim().split(/\s+/);
    if (words[0] !== 'server' || words.length < 3) continue;
    const address = parseServerAddress(words[2]!, defaultPort);
    if (!address) continue;
    const maxconn = words.indexOf('maxconn');
    const limit = maxconn > 0 ? Number(words[maxconn + 1]) : NaN;
    servers.push({ name: words[1]!, ...address, ...(Number.isInteger(limit) && limit > 0 ? { maxconn: limit } : {}) });
  }
  return found ? servers : undefined;
}

function parseServerAddress(word: string, defaultPort: number): { host: string; port: number } | undefined {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(word);
  if (bracketed) return { host: bracketed[1]!.toLowerCase(), port: bracketed[2] ? Number(bracketed[2]) : defaultPort };
  const plain = /^([^:]+)(?::(\d+))?$/.exec(word);
  if (plain) return { host: plain[1]!.toLowerCase(), port: plain[2] ? Number(plain[2]) : defaultPort };
  return undefined;
}

/**
 * A haproxy.cfg (or a diff -u of one) as it may be shown in a dry run, --json or a CI log: the
 * credentials of `stats auth` (everything after `auth`), userlist `password`/`insecure-password`
 * values, Authorization header values and passwords in URLs become `***`. Realms, user and group
 * names and the rest stay. The text came from a host, so escapes go first (shownRemoteText): one
 * could otherwise split a keyword from its credential.
 */
export function redactHaproxyConfig(text: string): string {
  return shownRemoteText(text)
    .replace(/(\bstats\s+auth\s+).*$/gm, '$1***')
    .replace(/(\b(?:insecure-)?password\s+)\S+/gm, '$1***')
    .replace(/(\bauthorization["']?\s+).*$/gim, '$1***');
}

/** Short fingerprint of a config, for history lines ("sha256:0123456789ab"). */
export function configDigest(text: string): string {
  return `sha256:${createHash('sha256').update(text).digest('hex').slice(0, 12)}`;
}

// ---- Step builders --------------------------------------------------------------------------

export const candidatePath = (config: string) => `${config}.voxops-new`;
export const backupPath = (config: string) => `${config}.voxops-prev`;

export function readHaproxyConfig(config: string): Step {
  return { name: `read ${config}`, command: argv('cat', '--', config), okExitCodes: [1], readOnly: true };
}

/** The rendered config against the live one (`diff -u`; exit 1 = they differ). */
export function diffHaproxyConfig(config: string, rendered: string): Step {
  return {
    name: `diff ${config}`,
    command: argv('diff', '-u', '--label', config, '--label', `${config} (rendered)`, '--', config, '-'),
    stdin: rendered,
    okExitCodes: [1, 2],
    readOnly: true,
  };
}

/** The candidate goes beside the live file (same filesystem, so the later mv is an atomic rename). */
export function writeCandidate(config: string, rendered: string): Step {
  return {
    name: 'write the candidate config',
    command: argv('dd', `of=${candidatePath(config)}`, 'status=none'),
    stdin: rendered,
  };
}

/** `haproxy -c`: exit 0 valid, anything else rejected (its reasons on stderr). */
export function checkCandidate(config: string): Step {
  return { name: 'haproxy -c the candidate', command: argv('haproxy', '-c', '-f', candidatePath(config)), okExitCodes: 'any', readOnly: true };
}

/** The same check on text fed to stdin: writes nothing, so dry runs use it. */
export function checkRendered(rendered: string): Step {
  return { name: 'haproxy -c the rendered config', command: argv('haproxy', '-c', '-f', '/dev/stdin'), stdin: rendered, okExitCodes: 'any', readOnly: true };
}

export function removeCandidate(config: string): Step {
  return { name: 'remove the rejected candidate', command: argv('rm', '-f', '--', candidatePath(config)) };
}

/**
 * Keep the live file as the backup, then rename the checked candidate over it with the live
 * file's owner and mode. A missing live file (first deploy) is fine.
 */
export function installCandidate(config: string): Step {
  const candidate = candidatePath(config);
  return {
    name: `install ${config}`,
    command: all(
      any(
        all(
          argv('test', '-e', config),
          argv('cp', '-p', '--', config, backupPath(config)),
          argv('chown', `--reference=${config}`, '--', candidate),
          argv('chmod', `--reference=${config}`, '--', candidate),
        ),
        argv('chmod', '644', '--', candidate),
      ),
      argv('mv', '-f', '--', candidate, config),
    ),
  };
}

/** Put the backup back (a reload that failed after the install). */
export function restoreBackup(config: string): Step {
  return { name: `restore ${config} from ${backupPath(config)}`, command: argv('cp', '-p', '--', backupPath(config), config) };
}

/** Debian's unit re-checks the file, then signals the master: old workers keep their live calls. */
export function reloadHaproxy(unit: string): Step {
  return { name: `reload ${unit}`, command: argv('systemctl', 'reload', '--', unit), timeoutMs: 60_000 };
}

/**
 * A one-shot client for HAProxy's runtime API on a Unix socket (the ingress host has python3, not
 * socat). Exit 2 when nothing listens there.
 */
const socketClient = [
  'import socket, sys',
  's = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)',
  's.settimeout(5)',
  'try:',
  '    s.connect(sys.argv[1])',
  'except OSError as e:',
  '    sys.stderr.write("cannot connect to %s: %s\\n" % (sys.argv[1], e))',
  '    sys.exit(2)',
  's.sendall((sys.argv[2] + "\\n").encode())',
  'out = []',
  'while True:',
  '    d = s.recv(65536)',
  '    if not d:',
  '        break',
  '    out.append(d)',
  'sys.stdout.write(b"".join(out).decode("utf-8", "replace"))',
].join('\n');

const runtimeCommandShape = /^[A-Za-z0-9 ._/-]+$/;

/** One runtime API command (`show stat`, `set server b/s state drain`...). No `;`: one command only. */
export function runtimeCommand(socket: string, command: string, readOnly: boolean): Step {
  if (!runtimeCommandShape.test(command)) throw new Error(`unsafe HAProxy runtime command: ${JSON.stringify(command)}`);
  return {
    name: `haproxy: ${command}`,
    command: argv('python3', '-c', socketClient, socket, command),
    okExitCodes: [2],
    readOnly,
    timeoutMs: 15_000,
  };
}

export const showStat = (socket: string) => runtimeCommand(socket, 'show stat', true);
export const showInfo = (socket: string) => runtimeCommand(socket, 'show info', true);

export function setServerState(socket: string, backend: string, server: string, state: 'drain' | 'ready'): Step {
  return runtimeCommand(socket, `set server ${backend}/${server} state ${state}`, false);
}

export interface ServerStat {
  backend: string;
  server: string;
  /** UP, DOWN, DRAIN, MAINT, "UP 1/2", "no check"... */
  status: string;
  /** current sessions (live calls and requests) */
  sessions: number;
  /** sessions since this haproxy process started */
  totalSessions: number;
  checkStatus: string;
  lastCheck: string;
}

/** `show stat` CSV -> one entry per server (not FRONTEND/BACKEND rows). */
export function parseShowStat(csv: string): ServerStat[] {
  const lines = csv.split('\n').filter((l) => l.trim());
  const header = lines[0]?.replace(/^#\s*/, '').split(',');
  if (!header) return [];
  const col = (name: string) => header.indexOf(name);
  const [px, sv, scur, stot, status, chk, last] = ['pxname', 'svname', 'scur', 'stot', 'status', 'check_status', 'last_chk'].map(col);
  return lines
    .slice(1)
    .map((line) => line.split(','))
    .filter((f) => f[sv!] !== 'FRONTEND' && f[sv!] !== 'BACKEND')
    .map((f) => ({
      backend: f[px!] ?? '',
      server: f[sv!] ?? '',
      status: f[status!] ?? '',
      sessions: Number(f[scur!] ?? 0) || 0,
      totalSessions: Number(f[stot!] ?? 0) || 0,
      checkStatus: f[chk!] ?? '',
      lastCheck: f[last!] ?? '',
    }));
}

/** The worker pid from `show info`: it changes when a reload has started a new worker. */
export function parseInfoPid(text: string): number | undefined {
  const pid = /^Pid:\s*(\d+)/m.exec(text)?.[1];
  return pid ? Number(pid) : undefined;
}

/** haproxy's own reason for a rejection: its ALERT lines, without the timestamp/pid prefix. */
export function haproxyAlerts(output: string): string[] {
  return sanitizeRemoteText(output)
    .split('\n')
    .filter((l) => l.includes('[ALERT]'))
    .map((l) => l.replace(/^.*?\[ALERT\]\s*(\(\d+\)\s*)?:\s*/, '').trim())
    .filter(Boolean);
}
