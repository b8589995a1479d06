import { argv, type Step } from '../exec/command.js';
import { parseHealthProbe, type HealthProbe } from './worker.js';

const MARK = '--voxops-probe';

/**
 * One exec per round for every worker of a host: GET the health path over each socket, then the
 * new lines of nginx's error log from byte `logOffset` on (only its failed connects to Unix
 * sockets), then the log's size for the next round. Polling 16 workers every 200 ms this way is 5
 * execs a second over one connection, not 80.
 */
export function probeRound(sockets: readonly string[], healthPath: string, errorLog: string, logOffset: number, timeoutSeconds = 1): Step {
  const script = [
    'p=$1; t=$2; log=$3; from=$4; shift 4',
    'for s do',
    `  body=$(curl -sS --max-time "$t" -w '\\n%{http_code}' --unix-socket "$s" "http://localhost$p" 2>/dev/null); rc=$?`,
    `  printf '%s %s\\n%s\\n' '${MARK}' "$rc" "$body"`,
    'done',
    `printf '%s log\\n' '${MARK}'`,
    `[ -r "$log" ] && tail -c +"$((from + 1))" -- "$log" | grep -F 'connect() to unix:' | tail -n 200`,
    `printf '%s size %s\\n' '${MARK}' "$(stat -c %s -- "$log" 2>/dev/null || echo 0)"`,
  ].join('\n');
  return {
    name: `probe ${sockets.length} workers`,
    command: argv('sh', '-c', script, 'voxops-probe', healthPath, String(timeoutSeconds), errorLog, String(logOffset), ...sockets),
    okExitCodes: 'any',
    readOnly: true,
    // the curls run one after another: a round of hung workers takes each one's whole timeout
    timeoutMs: (sockets.length * timeoutSeconds + 5) * 1000,
  };
}

export interface RoundAnswer {
  /** one per socket, in order; exitCode is curl's */
  probes: (HealthProbe & { exitCode: number })[];
  /** sockets nginx failed to connect to since the last round */
  failedConnects: string[];
  /** where the next round reads the log from */
  logSize: number;
}

export function parseRound(stdout: string, sockets: number): RoundAnswer {
  const probes: RoundAnswer['probes'] = [];
  const failedConnects: string[] = [];
  let logSize = 0;
  const sections = stdout.split(`${MARK} `).slice(1);
  for (const section of sections) {
    const newline = section.indexOf('\n');
    const head = newline < 0 ? section : section.slice(0, newline);
    const rest = newline < 0 ? '' : section.slice(newline + 1);
    if (head === 'log') {
      for (const m of rest.matchAll(/connect\(\) to unix:(\S+?) failed/g)) failedConnects.push(m[1]!);
    } else if (head.startsWith('size ')) {
      logSize = Number(head.slice(5)) || 0;
    } else {
      const exitCode = Number(head);
      probes.push({ ...parseHealthProbe(rest.replace(/\n$/, '')), exitCode: Number.isInteger(exitCode) ? exitCode : -1 });
    }
  }
  while (probes.length < sockets) probes.push({ httpStatus: 0, error: 'no answer', exitCode: -1 });
  return { probes: probes.slice(0, sockets), failedConnects: [...new Set(failedConnects)], logSize };
}

/**
 * Sockets a killed run left moved aside: `moved` when the worker still serves only on the moved
 * path (the real one holds a placeholder), `stale` when a new process serves on the real path and
 * the moved file is garbage. `symlink`: a socket path that is a link, which a drain cannot move
 * aside (the link would move, not the socket). One line per finding; nothing when there is none.
 */
export function movedAsideSockets(sockets: readonly string[]): Step {
  const script = [
    'for s do',
    '  if [ -L "$s" ] && [ ! -e "$s.draining" ]; then echo "symlink $s"; continue; fi',
    '  if [ -e "$s.draining" ]; then if [ -S "$s" ] && [ ! -L "$s" ]; then echo "stale $s"; else echo "moved $s"; fi; fi',
    'done',
  ].join('\n');
  return { name: 'look for sockets left moved aside', command: argv('sh', '-c', script, 'voxops-leftovers', ...sockets), readOnly: true };
}

export function parseMovedAside(stdout: string): { moved: string[]; stale: string[]; symlinks: string[] } {
  const lines = stdout.split('\n').map((l) => l.trim().split(' '));
  const of = (kind: string) => lines.filter(([k, s]) => k === kind && s).map(([, s]) => s!);
  return { moved: of('moved'), stale: of('stale'), symlinks: of('symlink') };
}

/** The error log's size now: where reading its new lines starts. */
export function errorLogSize(errorLog: string): Step {
  return {
    name: `size of ${errorLog}`,
    command: argv('sh', '-c', 'stat -c %s -- "$1" 2>/dev/null || echo 0', 'voxops-log-size', errorLog),
    readOnly: true,
  };
}

/** The error log nginx writes its failed connects to: the first `error_log` of `nginx -T`. */
export function nginxErrorLog(dump: string, fallback = '/var/log/nginx/error.log'): string {
  const match = /^\s*error_log\s+(\/[^\s;]+)/m.exec(
    dump
      .split('\n')
      .filter((l) => !l.trimStart().startsWith('#'))
      .join('\n'),
  );
  return match?.[1] ?? fallback;
}
