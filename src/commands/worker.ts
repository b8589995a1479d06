import { lastLine } from '../errors.js';
import { sanitizeRemoteText } from '../text.js';
import { all, any, argv, type Step } from '../exec/command.js';

/** Fleet worker builders. Unit and socket names come from inventory patterns, never from constants. */
export function workerUnit(pattern: string, index: number): string {
  return pattern.replace('{i}', String(index));
}

export function workerSocket(pattern: string, index: number): string {
  return pattern.replace('{i}', String(index));
}

/** Where a drained worker's socket is moved; the old process keeps serving its live call there. */
export function drainedSocket(socket: string): string {
  return `${socket}.draining`;
}

/**
 * GET the health path over a Unix socket. Prints the body, a newline and the HTTP status.
 * Any curl exit is an answer here (7: nothing listening, 28: timeout), so nothing throws.
 */
export function probeHealth(socket: string, healthPath: string, timeoutSeconds = 2): Step {
  return {
    name: `GET ${healthPath} over ${socket}`,
    command: argv(
      'curl',
      '-sS',
      '--max-time',
      String(timeoutSeconds),
      '-w',
      '\\n%{http_code}',
      '--unix-socket',
      socket,
      `http://localhost${healthPath}`,
    ),
    okExitCodes: 'any',
    readOnly: true,
  };
}

/** The same probe for a TCP service (api, dialler). */
export function probeHealthUrl(url: string, timeoutSeconds = 2): Step {
  return {
    name: `GET ${url}`,
    command: argv('curl', '-sS', '--max-time', String(timeoutSeconds), '-w', '\\n%{http_code}', url),
    okExitCodes: 'any',
    readOnly: true,
  };
}

/**
 * Drain by moving the socket aside: nginx can no longer connect to the worker, so no new call reaches
 * it, no reload resets max_conns counters, and the live call goes on over the moved path.
 * A placeholder with the socket's owner takes the old path, so uvicorn's unconditional unlink of its
 * socket at shutdown succeeds instead of failing the unit's stop. A socket already moved aside (a run
 * killed mid-drain) counts as drained, so its call is still waited for.
 *
 * This runs as root in a directory anyone may write to (/tmp): nothing after the move may follow a
 * symlink someone else plants at the old path. Only a real socket is moved (a symlink is not ours),
 * the placeholder is created exclusively (dd conv=excl: O_CREAT|O_EXCL, which fails on any existing
 * path, a symlink included), and chown -h never dereferences. If something took the path between
 * the move and the placeholder, dd fails, nothing is written, and the worker is still drained.
 *
 * Exit 0: drained (the socket is at the moved path). Exit 1: there is no socket (none at the path,
 * none moved aside, or only a symlink at the path).
 */
export function drainWorker(socket: string): Step {
  const moved = drainedSocket(socket);
  return {
    name: `drain ${socket}`,
    command: any(
      all(
        argv('test', '-S', socket),
        argv('test', '!', '-L', socket),
        argv('mv', '-T', '--', socket, moved),
        argv('dd', 'if=/dev/null', `of=${socket}`, 'conv=excl', 'status=none'),
        argv('chown', '-h', `--reference=${moved}`, '--', socket),
      ),
      argv('test', '-S', moved),
    ),
    okExitCodes: [1],
  };
}

/**
 * Put a drained worker that was not restarted back in rotation (rename over the placeholder). If a
 * new process already serves on the real path (systemd restarted the worker meanwhile), the moved
 * socket is garbage: it is removed, never renamed over the live one.
 */
export function undrainWorker(socket: string): Step {
  const moved = drainedSocket(socket);
  return {
    name: `undrain ${socket}`,
    command: any(
      all(argv('test', '-S', socket), argv('test', '!', '-L', socket), argv('rm', '-f', '--', moved)),
      argv('mv', '-T', '--', moved, socket),
    ),
  };
}

/** After the new process serves on the real path, the old socket file is garbage. */
export function removeDrainedSocket(socket: string): Step {
  return { name: `remove ${drainedSocket(socket)}`, command: argv('rm', '-f', '--', drainedSocket(socket)) };
}

/** Is the path a live socket (exit 0) or not (exit 1)? */
export function socketExists(socket: string): Step {
  return { name: `test -S ${socket}`, command: argv('test', '-S', socket), okExitCodes: [1], readOnly: true };
}

/** Reads only the one variable's line of an env file: the rest of it holds secrets. */
export function readEnvVariable(file: string, name: string): Step {
  return {
    name: `read ${name} from ${file}`,
    command: argv('grep', '-E', '-m', '1', `^${name}=`, '--', file),
    okExitCodes: [1, 2],
    readOnly: true,
  };
}

export interface HealthProbe {
  /** 0 when nothing answered */
  httpStatus: number;
  body?: HealthBody;
  error?: string;
}

export interface HealthBody {
  status?: string;
  version?: string;
  active_calls?: number;
  max_calls?: number;
  max_seen_calls?: number;
  pid?: number;
  workers?: number;
  [key: string]: unknown;
}

const COUNTS = ['active_calls', 'max_calls', 'max_seen_calls', 'workers', 'leased_calls'] as const;

/**
 * A host's /health body reaches logs, reports and the terminal: keep each known field only when it
 * has its type (a count a non-negative integer, a pid positive, a string short and printable), so a
 * broken or hostile worker cannot print escapes or pass `"1"` for a count.
 */
function wellTyped(raw: Record<string, unknown>): HealthBody {
  const body: HealthBody = {};
  for (const [key, value] of Object.entries(raw)) {
    if (key === 'status' || key === 'version') {
      if (typeof value === 'string' && value.length <= 100) body[key] = sanitizeRemoteText(value);
    } else if ((COUNTS as readonly string[]).includes(key)) {
      if (Number.isSafeInteger(value) && (value as number) >= 0) body[key] = value;
    } else if (key === 'pid') {
      if (Number.isSafeInteger(value) && (value as number) > 0) body.pid = value as number;
    } else if (key !== '__proto__') {
      body[key] = value;
    }
  }
  return body;
}

export function parseHealthProbe(stdout: string, stderr = ''): HealthProbe {
  const cut = stdout.lastIndexOf('\n');
  const status = Number(stdout.slice(cut + 1).trim());
  const text = cut >= 0 ? stdout.slice(0, cut) : '';
  if (!Number.isInteger(status) || status === 0) {
    return { httpStatus: 0, error: lastLine(stderr) || 'no answer' };
  }
  try {
    const body = JSON.parse(text) as unknown;
    if (body && typeof body === 'object' && !Array.isArray(body))
      return { httpStatus: status, body: wellTyped(body as Record<string, unknown>) };
  } catch {
    // a non-JSON answer is still an answer; the status code says how it went
  }
  return { httpStatus: status, error: `not JSON: ${sanitizeRemoteText(text).slice(0, 120)}` };
}
