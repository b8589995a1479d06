import { all, argv, type Step } from '../exec/command.js';
import { sanitizeRemoteText } from '../text.js';
import { stateDir } from './state.js';

/** The effective configuration, every included file expanded. */
export function dumpNginxConfig(): Step {
  return { name: 'read nginx config (nginx -T)', command: argv('nginx', '-T', '-q'), readOnly: true };
}

export interface NginxFinding {
  level: 'error' | 'warning';
  message: string;
}

/** Strip comments; keep everything else, so offsets are not needed. */
function stripComments(text: string): string {
  return text
    .split('\n')
    .filter((line) => !line.startsWith('# configuration file '))
    .map((line) => line.replace(/(^|\s)#.*$/, '$1'))
    .join('\n');
}

function findBlock(text: string, header: RegExp): string | undefined {
  const match = header.exec(text);
  if (!match) return undefined;
  let depth = 0;
  for (let i = match.index + match[0].length - 1; i < text.length; i++) {
    if (text[i] === '{') depth++;
    else if (text[i] === '}' && --depth === 0) return text.slice(match.index + match[0].length, i);
  }
  return undefined;
}

function durationSeconds(value: string): number {
  const units: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };
  let total = 0;
  for (const [, n, unit] of value.matchAll(/(\d+)(ms|s|m|h|d)?/g)) total += Number(n) * (units[unit ?? 's'] ?? 1);
  return total;
}

interface UpstreamServer {
  socket: string;
  params: string;
}

function upstreamServers(dump: string, upstream: string): UpstreamServer[] | undefined {
  const name = upstream.replace(/[^A-Za-z0-9_-]/g, '');
  const block = findBlock(stripComments(dump), new RegExp(`\\bupstream\\s+${name}\\s*\\{`));
  if (block === undefined) return undefined;
  return [...block.matchAll(/\bserver\s+unix:([^\s;]+)([^;]*);/g)].map((m) => ({ socket: m[1]!, params: m[2] ?? '' }));
}

/**
 * How long nginx keeps a worker out of rotation after a failed connect (its socket was moved aside
 * while draining): `fail_timeout` (default 10s) unless `max_fails=0`. Measured in the lab: without
 * pacing the roll by this, every worker of a host is shut out at once and calls get 502.
 */
export function upstreamFailTimeoutSeconds(dump: string, upstream: string): number {
  let longest = 0;
  for (const server of upstreamServers(dump, upstream) ?? []) {
    const maxFails = /\bmax_fails=(\d+)/.exec(server.params)?.[1];
    if (maxFails === '0') continue;
    const timeout = /\bfail_timeout=(\S+)/.exec(server.params)?.[1];
    longest = Math.max(longest, timeout ? durationSeconds(timeout) : 10);
  }
  return longest;
}

/**
 * What the socket-move drain needs from nginx (measured in the lab, see LAB-NOTES): no upstream
 * keepalive (cached connections still reach a moved socket), no worker_shutdown_timeout shorter
 * than a call (a reload would cut live calls), and a zone (without it max_conns is per nginx
 * worker process and single-call workers get two calls).
 */
export function checkNginxConfig(
  dump: string,
  upstream: string,
  expectedSockets: readonly string[],
  longestCallSeconds: number,
): NginxFinding[] {
  const text = stripComments(dump);
  const findings: NginxFinding[] = [];
  const name = upstream.replace(/[^A-Za-z0-9_-]/g, '');
  const block = findBlock(text, new RegExp(`\\bupstream\\s+${name}\\s*\\{`));
  const servers = upstreamServers(dump, upstream);
  if (block === undefined || servers === undefined) {
    return [{ level: 'error', message: `nginx has no upstream "${upstream}"` }];
  }
  if (/(^|[;\s{])keepalive\s+\d+/.test(block)) {
    findings.push({
      level: 'error',
      message: `upstream ${upstream} has keepalive: cached connections would keep reaching a drained worker`,
    });
  }
  if (!/(^|[;\s{])zone\s+\S+/.test(block)) {
    findings.push({
      level: 'warning',
      message: `upstream ${upstream} has no zone: max_conns=1 is counted per nginx worker process, so a worker can get two calls`,
    });
  }
  const listed = new Set(servers.map((s) => s.socket));
  const missing = expectedSockets.filter((s) => !listed.has(s));
  if (missing.length > 0) findings.push({ level: 'error', message: `upstream ${upstream} does not list ${missing.join(', ')}` });
  const extra = [...listed].filter((s) => !expectedSockets.includes(s));
  if (extra.length > 0) {
    findings.push({ level: 'warning', message: `upstream ${upstream} lists sockets beyond the configured workers: ${extra.join(', ')}` });
  }
  const unlimited = servers.filter((s) => !/\bmax_conns=1\b/.test(s.params)).map((s) => s.socket);
  if (unlimited.length > 0) findings.push({ level: 'warning', message: `no max_conns=1 on ${unlimited.join(', ')}` });
  const shutdown = /(^|[;\s{])worker_shutdown_timeout\s+([^;]+);/.exec(text);
  if (shutdown) {
    const limit = durationSeconds(shutdown[2]!.trim());
    if (limit < longestCallSeconds) {
      findings.push({
        level: 'error',
        message: `worker_shutdown_timeout ${shutdown[2]!.trim()} is shorter than a call (${longestCallSeconds}s): a reload would cut live calls`,
      });
    }
  }
  return findings;
}

/** The sockets an upstream lists, in order (from `nginx -T` or a single file). */
export function upstreamSockets(dump: string, upstream: string): string[] | undefined {
  return upstreamServers(dump, upstream)?.map((s) => s.socket);
}

export interface ScaledUpstream {
  upstream: string;
  /** the sockets the upstream must list, in order (from the inventory's socket pattern) */
  sockets: readonly string[];
  /** `proxy_next_upstream_tries` everywhere in the file: the 429-retry blocks retry every worker */
  tries: number;
}

export type RenderResult = { ok: true; text: string } | { ok: false; problem: string };

const code = (line: string) => line.replace(/(^|\s)#.*$/, '$1');
/** what may go into `server unix:<path>` without nginx reading it differently */
const safeSocket = /^\/[^\s;{}'"#$\\]+$/;

/**
 * Rewrite one upstream of a config file for a new worker count: its `server unix:` lines become one
 * line per socket (the first line's parameters kept, `max_conns=1` enforced), a `zone` is added if
 * missing (without one max_conns is per nginx worker process), and every `proxy_next_upstream_tries`
 * in the file becomes `tries`. Every other line is returned as it was. Pure: text in, text out.
 */
export function renderScaledUpstream(config: string, scaled: ScaledUpstream): RenderResult {
  const name = scaled.upstream;
  if (!/^[A-Za-z0-9_-]+$/.test(name)) return { ok: false, problem: `upstream name "${name}" is not a plain nginx name` };
  const bad = scaled.sockets.find((s) => !safeSocket.test(s));
  if (bad !== undefined) return { ok: false, problem: `socket path ${JSON.stringify(bad)} cannot go into an nginx server line` };
  if (scaled.sockets.length === 0) return { ok: false, problem: 'an upstream needs at least one server' };
  if (!Number.isInteger(scaled.tries) || scaled.tries < 1) return { ok: false, problem: `proxy_next_upstream_tries ${scaled.tries} is not a positive integer` };

  const lines = config.split('\n');
  const header = new RegExp(`^\\s*upstream\\s+${name}\\s*\\{(.*)$`);
  const start = lines.findIndex((line) => header.test(code(line)));
  if (start < 0) return { ok: false, problem: `the file has no "upstream ${name} {" line` };
  if (header.exec(code(lines[start]!))![1]!.trim() !== '') {
    return { ok: false, problem: `upstream ${name}: write one directive per line (nothing after "{")` };
  }
  let end = -1;
  let depth = 1;
  for (let i = start + 1; i < lines.length && end < 0; i++) {
    for (const ch of code(lines[i]!)) {
      if (ch === '{') depth++;
      else if (ch === '}' && --depth === 0) {
        end = i;
        break;
      }
    }
  }
  if (end < 0) return { ok: false, problem: `upstream ${name} is not closed` };
  if (code(lines[end]!).trim() !== '}') return { ok: false, problem: `upstream ${name}: put its closing "}" on a line of its own` };

  const serverLine = /^(\s*)server\s+unix:(\S+?)((?:\s+[^;]*)?);\s*$/;
  let first: { indent: string; params: string } | undefined;
  let hasZone = false;
  for (let i = start + 1; i < end; i++) {
    const text = code(lines[i]!);
    if (!text.trim()) continue;
    if ((text.match(/;/g) ?? []).length > 1) return { ok: false, problem: `upstream ${name}: write one directive per line (line ${i + 1})` };
    if (/^\s*zone\s+\S+/.test(text)) hasZone = true;
    if (!/^\s*server\s/.test(text)) continue;
    const m = serverLine.exec(text);
    if (!m) return { ok: false, problem: `upstream ${name}: line ${i + 1} is not a "server unix:<socket> ...;" line` };
    first ??= { indent: m[1]!, params: m[3] ?? '' };
  }
  if (!first) return { ok: false, problem: `upstream ${name} has no "server unix:" line to take the parameters from` };
  const { indent, params: kept } = first;
  const params = /\bmax_conns=\d+/.test(kept) ? kept.replace(/\bmax_conns=\d+/, 'max_conns=1') : ` max_conns=1${kept}`;
  const servers = scaled.sockets.map((socket) => `${indent}server unix:${socket}${params};`);

  const out: string[] = [];
  let placed = false;
  lines.forEach((line, i) => {
    if (i > start && i < end && /^\s*server\s/.test(code(line))) {
      if (!placed) out.push(...servers);
      placed = true;
      return;
    }
    const tries = /^(\s*proxy_next_upstream_tries\s+)\d+(\s*;.*)$/.exec(line);
    out.push(tries ? `${tries[1]}${scaled.tries}${tries[2]}` : line);
    if (i === start && !hasZone) out.push(`${indent}zone ${name} 64k;`);
  });
  return { ok: true, text: out.join('\n') };
}

/** Where the file is written (a symlinked config is written through to its target). Exit 1: no such file. */
export function resolveConfigFile(path: string): Step {
  return { name: `resolve ${path}`, command: argv('readlink', '-e', '--', path), okExitCodes: [1], readOnly: true };
}

/** The config file itself (no secrets in nginx site configs). */
export function readConfigFile(path: string): Step {
  return { name: `read ${path}`, command: argv('cat', '--', path), readOnly: true };
}

/** Kept outside every directory nginx includes, so `nginx -t` never reads the backup or the candidate. */
export const configBackup = `${stateDir}/scale-nginx.conf.backup`;
const configCandidate = `${stateDir}/scale-nginx.conf.new`;

/**
 * Back up the file, then put the new text in its place (same mode and owner). The text goes on
 * stdin, never on argv. Nothing is loaded: `nginx -t` and a reload are separate steps.
 */
export function installConfigFile(target: string, text: string): Step {
  return {
    name: `write ${target} (backup in ${configBackup})`,
    command: all(
      argv('mkdir', '-p', stateDir),
      argv('cp', '-p', '--', target, configBackup),
      argv('dd', `of=${configCandidate}`, 'status=none'),
      argv('chmod', `--reference=${target}`, '--', configCandidate),
      argv('chown', `--reference=${target}`, '--', configCandidate),
      argv('mv', '-f', '--', configCandidate, target),
    ),
    stdin: text,
  };
}

/** Put the backup back (byte for byte, mode and owner). */
export function restoreConfigFile(target: string): Step {
  return { name: `restore ${target} from ${configBackup}`, command: argv('mv', '-f', '--', configBackup, target) };
}

export function dropConfigBackup(): Step {
  return { name: `remove ${configBackup}`, command: argv('rm', '-f', '--', configBackup, configCandidate) };
}

/** Exit 1 is nginx's answer (the config is rejected; its own message is on stderr), not a failure. */
export function testNginxConfig(): Step {
  return { name: 'nginx -t', command: argv('nginx', '-t', '-q'), okExitCodes: [1], readOnly: true };
}

export function reloadNginx(): Step {
  return { name: 'reload nginx', command: argv('systemctl', 'reload', 'nginx') };
}

/** nginx's own error lines from `nginx -t` stderr (the `[emerg]` lines, else the whole tail). */
export function nginxErrorLines(stderr: string): string {
  const lines = sanitizeRemoteText(stderr).trim().split('\n').map((l) => l.trim()).filter(Boolean);
  const errors = lines.filter((l) => /\[(emerg|alert|crit|error)\]/.test(l));
  return (errors.length > 0 ? errors : lines.slice(-3)).join('; ') || 'no message';
}
