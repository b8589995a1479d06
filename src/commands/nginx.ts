import { argv, type Step } from './command.js';

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
