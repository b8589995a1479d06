import { createHash } from 'node:crypto';
import type { Command } from '../../../src/exec/command.js';
import { servedAndBuiltDigests } from '../../../src/commands/console.js';
import { setEnvVariable } from '../../../src/commands/env-file.js';
import { currentTag, writeReleaseMarker } from '../../../src/commands/git.js';
import { showStat } from '../../../src/commands/haproxy.js';
import { errorLogSize, movedAsideSockets, probeRound } from '../../../src/commands/probe.js';
import { forceReleaseLock, readLock, takeOverLock } from '../../../src/commands/state.js';
import { baseOf, describeFsError, FsError } from './fs.js';
import type { HttpAnswer, SimHost, Unit } from './host.js';
import { fail, ok, parseFlags, readStdin, unsupported, type Exec, type ShellContext } from './shell.js';

type Handler = (host: SimHost, argv: readonly string[], ctx: ShellContext) => Exec;

/** The argv of a builder's command (the known scripts are taken from the builders themselves). */
function argvOf(command: Command): readonly string[] {
  if (command.kind === 'argv') return command.argv;
  if (command.kind === 'all' || command.kind === 'any') return argvOf(command.commands[0]!);
  return argvOf(command.command);
}

/** Scripts voxops sends to `sh -c`, `awk` and `python3 -c`, exactly as its builders write them. */
const scripts = {
  marker: argvOf(writeReleaseMarker('/x', 'v0.0.0', '0').command)[2]!,
  setEnv: argvOf(setEnvVariable('/x', 'X', '1').command)[2]!,
  servedDigest: argvOf(servedAndBuiltDigests('http://x/', '/x').command)[2]!,
  markerAwk: argvOf(currentTag('/x').command)[1]!,
  runtimeClient: argvOf(showStat('/x').command)[2]!,
  logSize: argvOf(errorLogSize('/x').command)[2]!,
  movedAside: argvOf(movedAsideSockets(['/x']).command)[2]!,
  readLock: argvOf(readLock().command)[2]!,
  takeOver: argvOf(takeOverLock({ id: 'a', user: 'u', machine: 'm', pid: 1, startedAt: 's', action: 'a' }, 'b', 1).command)[2]!,
  forceUnlock: argvOf(forceReleaseLock().command)[2]!,
  probeRound: argvOf(probeRound(['/x'], '/health', '/x', 0).command)[2]!,
};

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const abs = (ctx: ShellContext, path: string) => (path.startsWith('/') ? path : `${ctx.cwd}/${path}`);

/** Run `work`; a file-system error becomes the tool's own message and exit status. */
function fsTool(
  tool: string,
  exitCode: number,
  work: () => Exec,
  describe = (e: FsError) => `cannot access '${e.path}': ${describeFsError(e)}`,
): Exec {
  try {
    return work();
  } catch (error) {
    if (error instanceof FsError) return fail(exitCode, `${tool}: ${describe(error)}`);
    throw error;
  }
}

function only(argv: readonly string[], shape: boolean): void {
  if (!shape) unsupported(argv);
}

// ---- coreutils ------------------------------------------------------------------------------

const test: Handler = (host, argv, ctx) => {
  const negate = argv[1] === '!';
  const [flag, path, extra] = argv.slice(negate ? 2 : 1);
  only(argv, path !== undefined && extra === undefined && ['-S', '-e', '-f', '-L'].includes(flag!));
  const node = flag === '-L' ? host.fs.lstat(abs(ctx, path!)) : host.fs.stat(abs(ctx, path!));
  const yes =
    flag === '-e'
      ? node !== undefined
      : flag === '-S'
        ? node?.kind === 'socket'
        : flag === '-L'
          ? node?.kind === 'symlink'
          : node?.kind === 'file';
  return yes !== negate ? ok() : fail(1, '');
};

const mv: Handler = (host, argv, ctx) => {
  const { flags, operands } = parseFlags(argv, ['-T', '-f', '-Tf']);
  only(argv, operands.length === 2);
  const [from, to] = operands.map((p) => abs(ctx, p)) as [string, string];
  const into = !flags.has('-T') && !flags.has('-Tf') && host.fs.stat(to)?.kind === 'dir';
  host.beforeSocketMove(from);
  return fsTool(
    'mv',
    1,
    () => {
      if (!host.fs.lstat(from)) throw new FsError('ENOENT', from);
      host.fs.rename(from, into ? `${to}/${baseOf(host.fs.normalize(from))}` : to);
      return ok();
    },
    (e) =>
      e.code === 'ENOENT' ? `cannot stat '${from}': ${describeFsError(e)}` : `cannot move '${from}' to '${to}': ${describeFsError(e)}`,
  );
};

const touch: Handler = (host, argv, ctx) => {
  // -c: do not create (a lease renewal touches only a lock that is there)
  const { flags, operands } = parseFlags(argv, ['-c']);
  only(argv, operands.length >= 1);
  return fsTool(
    'touch',
    1,
    () => {
      for (const p of operands) if (!flags.has('-c') || host.fs.exists(abs(ctx, p))) host.fs.touch(abs(ctx, p));
      return ok();
    },
    (e) => `cannot touch '${e.path}': ${describeFsError(e)}`,
  );
};

/** chown/chmod: --reference copies the owner/mode; chmod also takes an octal mode */
const attributes =
  (field: 'owner' | 'mode'): Handler =>
  (host, argv, ctx) => {
    const tool = field === 'owner' ? 'chown' : 'chmod';
    // -h: the link itself, never what it points at (chown only)
    const { flags, operands } = parseFlags(argv, field === 'owner' ? ['--reference', '-h'] : ['--reference']);
    const explicit = field === 'mode' && !flags.has('--reference') && /^[0-7]{3,4}$/.test(operands[0] ?? '') ? operands.shift() : undefined;
    only(argv, operands.length >= 1 && (flags.has('--reference') || explicit !== undefined));
    return fsTool(tool, 1, () => {
      let value = explicit;
      if (value === undefined) {
        const reference = host.fs.stat(abs(ctx, flags.get('--reference')!));
        if (!reference) return fail(1, `${tool}: failed to get attributes of '${flags.get('--reference')}': No such file or directory`);
        value = reference[field];
      }
      for (const p of operands) {
        const node = host.fs.lstat(abs(ctx, p));
        if (!node) throw new FsError('ENOENT', p);
        node[field] = value;
      }
      return ok();
    });
  };

const rm: Handler = (host, argv, ctx) => {
  const { flags, operands } = parseFlags(argv, ['-f', '-rf']);
  only(argv, flags.size === 1 && operands.length >= 1);
  for (const p of operands) {
    const path = abs(ctx, p);
    if (!host.fs.lstat(path)) continue;
    if (host.fs.lstat(path)?.kind === 'dir' && !flags.has('-rf')) return fail(1, `rm: cannot remove '${p}': Is a directory`);
    host.fs.remove(path, true);
  }
  return ok();
};

const mkdir: Handler = (host, argv, ctx) => {
  const { flags, operands } = parseFlags(argv, ['-p']);
  only(argv, flags.has('-p') && operands.length >= 1);
  return fsTool(
    'mkdir',
    1,
    () => {
      for (const p of operands) host.fs.mkdir(abs(ctx, p), true);
      return ok();
    },
    (e) => `cannot create directory '${e.path}': ${describeFsError(e)}`,
  );
};

const ln: Handler = (host, argv, ctx) => {
  const { flags, operands } = parseFlags(argv, ['-sfn']);
  only(argv, operands.length === 2);
  const [source, link] = operands as [string, string];
  const path = abs(ctx, link);
  if (flags.has('-sfn')) {
    if (host.fs.lstat(path)?.kind === 'dir') unsupported(argv, 'ln -sfn onto a directory');
    if (host.fs.lstat(path)) host.fs.remove(path, false);
    return fsTool('ln', 1, () => (host.fs.symlink(source, path), ok()));
  }
  // a hard link: link(2) fails when the name exists, so exactly one of two racing runs wins
  const node = host.fs.lstat(abs(ctx, source));
  if (node?.kind !== 'file') return fail(1, `ln: failed to access '${source}': No such file or directory`);
  if (host.fs.lstat(path)) return fail(1, `ln: failed to create hard link '${link}': File exists`);
  return fsTool('ln', 1, () => (host.fs.write(path, node.content), ok()));
};

const cat: Handler = (host, argv, ctx) => {
  const { operands } = parseFlags(argv, []);
  only(argv, operands.length === 1);
  return fsTool(
    'cat',
    1,
    () => ok(host.fs.read(abs(ctx, operands[0]!))),
    (e) => `${e.path}: ${describeFsError(e)}`,
  );
};

const cp: Handler = (host, argv, ctx) => {
  const { flags, operands } = parseFlags(argv, ['-p', '-a']);
  only(argv, flags.size === 1 && operands.length === 2);
  const [from, to] = operands.map((p) => abs(ctx, p)) as [string, string];
  const into = to.endsWith('/') || host.fs.stat(to)?.kind === 'dir';
  return fsTool('cp', 1, () => {
    if (!host.fs.stat(from)) return fail(1, `cp: cannot stat '${operands[0]}': No such file or directory`);
    if (flags.has('-p') && host.fs.stat(from)?.kind === 'dir') return fail(1, `cp: -r not specified; omitting directory '${operands[0]}'`);
    host.fs.copy(from, into ? `${host.fs.normalize(to)}/${baseOf(host.fs.normalize(from))}` : to);
    return ok();
  });
};

const dd: Handler = (host, argv, ctx) => {
  const options = new Map(argv.slice(1).map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)] as const));
  const known = new Set(['if', 'of', 'status', 'oflag', 'conv']);
  only(
    argv,
    argv.slice(1).every((w) => w.includes('=')) &&
      [...options.keys()].every((k) => known.has(k)) &&
      options.get('status') === 'none' &&
      options.has('of'),
  );
  only(argv, !options.has('if') || options.get('if') === '/dev/null');
  const append = options.get('oflag') === 'append';
  // conv=excl: create the file, and fail if anything (a symlink too) is already at the path
  const exclusive = options.get('conv') === 'excl';
  only(argv, exclusive || append === (options.get('conv') === 'notrunc'));
  const data = options.has('if') ? '' : readStdin(ctx);
  const target = abs(ctx, options.get('of')!);
  if (exclusive && host.fs.lstat(target)) return fail(1, `dd: failed to open '${options.get('of')}': File exists`);
  return fsTool(
    'dd',
    1,
    () => (host.fs.write(target, data, { append }), ok()),
    (e) => `failed to open '${e.path}': ${describeFsError(e)}`,
  );
};

const grep: Handler = (host, argv, ctx) => {
  const { flags, operands: words } = parseFlags(argv, ['-qF', '-E', '-m:']);
  // grep [options] PATTERN -- FILE: the pattern comes before the --
  const operands = words[1] === '--' ? [words[0]!, ...words.slice(2)] : words;
  only(argv, operands.length === 2 && (flags.has('-qF') ? flags.size === 1 : flags.has('-E') && flags.get('-m') === '1'));
  const [pattern, file] = operands as [string, string];
  if (!host.fs.exists(abs(ctx, file))) return fail(2, `grep: ${file}: No such file or directory`);
  const lines = host.fs.read(abs(ctx, file)).split('\n');
  if (flags.has('-qF')) return lines.some((l) => l.includes(pattern)) ? ok() : fail(1, '');
  only(argv, /^\^[A-Za-z_][A-Za-z0-9_]*=$/.test(pattern));
  const found = lines.find((l) => l.startsWith(pattern.slice(1)));
  return found !== undefined ? ok(`${found}\n`) : fail(1, '');
};

const tail: Handler = (host, argv, ctx) => {
  const { flags, operands } = parseFlags(argv, ['-n:']);
  only(argv, operands.length === 1 && /^\d+$/.test(flags.get('-n') ?? ''));
  const file = abs(ctx, operands[0]!);
  if (!host.fs.exists(file)) return fail(1, `tail: cannot open '${operands[0]}' for reading: No such file or directory`);
  const lines = host.fs.read(file).replace(/\n$/, '').split('\n');
  const text = lines.slice(-Number(flags.get('-n'))).join('\n');
  return ok(text ? `${text}\n` : '');
};

const df: Handler = (host, argv, ctx) => {
  const { flags, operands } = parseFlags(argv, ['-Pk']);
  only(argv, flags.has('-Pk') && operands.length === 1);
  if (!host.fs.exists(abs(ctx, operands[0]!))) return fail(1, `df: ${operands[0]}: No such file or directory`);
  const available = host.freeMb * 1024;
  const size = available + 8 * 1024 * 1024;
  return ok(
    `Filesystem     1024-blocks    Used Available Capacity Mounted on\n/dev/vda1         ${size} 8388608 ${available}      42% /\n`,
  );
};

const readlink: Handler = (host, argv, ctx) => {
  const { flags, operands } = parseFlags(argv, ['-e']);
  only(argv, operands.length === 1);
  const path = abs(ctx, operands[0]!);
  if (flags.has('-e')) {
    const real = host.fs.realpath(path);
    return real ? ok(`${real}\n`) : fail(1, '');
  }
  const node = host.fs.lstat(path);
  return node?.kind === 'symlink' ? ok(`${node.target}\n`) : fail(1, '');
};

const ls: Handler = (host, argv, ctx) => {
  const { flags, operands } = parseFlags(argv, ['-1t', '-1tr']);
  only(argv, flags.size === 1 && operands.length === 1);
  return fsTool('ls', 2, () => {
    const entries = host.fs.list(abs(ctx, operands[0]!)).sort((a, b) => b.node.mtime - a.node.mtime || a.name.localeCompare(b.name));
    if (flags.has('-1tr')) entries.reverse();
    return ok(entries.map((e) => `${e.name}\n`).join(''));
  });
};

const sha256sum: Handler = (host, argv, ctx) => {
  const { operands } = parseFlags(argv, []);
  only(argv, operands.length === 1);
  return fsTool(
    'sha256sum',
    1,
    () => ok(`${sha256(host.fs.read(abs(ctx, operands[0]!)))}  ${operands[0]}\n`),
    (e) => `${e.path}: ${describeFsError(e)}`,
  );
};

const awk: Handler = (host, argv, ctx) => {
  only(argv, argv.length === 3 && argv[1] === scripts.markerAwk);
  const file = abs(ctx, argv[2]!);
  if (!host.fs.exists(file)) return fail(2, `awk: cannot open "${argv[2]}" (No such file or directory)`);
  const first = host.fs.read(file).split('\n')[0]?.trim().split(/\s+/)[0];
  return first ? ok(`${first}\n`) : fail(1, '');
};

const diff: Handler = (host, argv, ctx) => {
  const { flags, operands } = parseFlags(argv, ['-u', '--label:']);
  only(argv, flags.has('-u') && operands.length === 2 && operands[1] === '-');
  const file = abs(ctx, operands[0]!);
  if (!host.fs.exists(file)) return fail(2, `diff: ${operands[0]}: No such file or directory`);
  const [a, b] = [host.fs.read(file), readStdin(ctx)];
  if (a === b) return ok();
  const before = a.split('\n');
  const after = b.split('\n');
  const lines = [
    ...before.filter((l) => !after.includes(l)).map((l) => `-${l}`),
    ...after.filter((l) => !before.includes(l)).map((l) => `+${l}`),
  ];
  return { exitCode: 1, stdout: `--- ${operands[0]}\n+++ ${operands[0]} (rendered)\n${lines.join('\n')}\n`, stderr: '' };
};

// ---- the known sh -c scripts ----------------------------------------------------------------

function curlAnswer(answer: HttpAnswer, target: string, maxTimeSeconds: number, host: SimHost): Exec {
  if ('status' in answer) return ok(`${answer.body}\n${answer.status}`);
  if (answer.error === 'timeout') {
    host.estate.clock.advance(maxTimeSeconds * 1000);
    return fail(28, `curl: (28) Operation timed out after ${maxTimeSeconds * 1000} milliseconds with 0 bytes received`, '\n000');
  }
  return fail(7, `curl: (7) Failed to connect to ${target} after 0 ms: Couldn't connect to server`, '\n000');
}

const sh: Handler = (host, argv, ctx) => {
  only(argv, argv[1] === '-c' && argv.length >= 4);
  const [script, , ...args] = argv.slice(2) as [string, string, ...string[]];
  if (script === scripts.marker && args.length === 1) {
    const data = readStdin(ctx);
    return fsTool(
      'sh',
      2,
      () => (host.fs.write(`${args[0]}.tmp`, data), host.fs.rename(`${args[0]}.tmp`, args[0]!), ok()),
      (e) => `1: cannot create ${e.path}: ${describeFsError(e)}`,
    );
  }
  if (script === scripts.setEnv && args.length === 3) {
    const [file, name, value] = args as [string, string, string];
    const target = host.fs.realpath(abs(ctx, file));
    if (!target) return fail(1, '');
    const lines = host.fs.read(target).replace(/\n$/, '').split('\n');
    let found = false;
    const out = lines.map((l) => (l.startsWith(`${name}=`) ? ((found = true), `${name}=${value}`) : l));
    if (!found) out.push(`${name}=${value}`);
    host.fs.write(target, `${out.join('\n')}\n`);
    return ok();
  }
  if (script === scripts.servedDigest && args.length === 1) {
    const answer = host.answerUrl(args[0]!);
    // curl -f prints nothing on an HTTP error; the pipeline's status is sha256sum's
    const served = 'status' in answer && answer.status < 400 ? answer.body : '';
    return { exitCode: 0, stdout: `${sha256(served)}  -\n`, stderr: 'status' in answer ? '' : 'curl: (7) Failed to connect\n' };
  }
  if (script === scripts.readLock && args.length === 1) {
    const node = host.fs.stat(args[0]!);
    if (node?.kind !== 'file') return fail(1, `cat: ${args[0]}: No such file or directory`);
    const idle = Math.floor(host.estate.clock.now() / 1000) - Math.floor(node.mtime / 1000);
    return ok(`${node.content}\n--voxops-lock-idle ${idle}\n`);
  }
  if (script === scripts.takeOver && args.length === 6) {
    const [lock, token, temp, holderMark, lease] = args as [string, string, string, string, string, string];
    const node = host.fs.stat(lock);
    if (node?.kind !== 'file' || host.fs.lstat(token)) return fail(1, '');
    const idle = Math.floor(host.estate.clock.now() / 1000) - Math.floor(node.mtime / 1000);
    if (idle < Number(lease) || !node.content.includes(holderMark)) return fail(1, '');
    host.fs.write(temp, readStdin(ctx));
    host.fs.rename(temp, lock);
    return ok();
  }
  if (script === scripts.forceUnlock && args.length === 2) {
    host.fs.remove(args[0]!, false);
    return ok();
  }
  if (script === scripts.movedAside) {
    const lines = args.flatMap((s) => {
      const node = host.fs.lstat(s);
      if (!host.fs.lstat(`${s}.draining`)) return node?.kind === 'symlink' ? [`symlink ${s}`] : [];
      return node?.kind === 'socket' ? [`stale ${s}`] : [`moved ${s}`];
    });
    return ok(lines.map((l) => `${l}\n`).join(''));
  }
  if (script === scripts.logSize && args.length === 1) {
    return ok(`${host.fs.exists(args[0]!) ? host.fs.read(args[0]!).length : 0}\n`);
  }
  if (script === scripts.probeRound && args.length >= 4) {
    // every worker's /health in one exec, then nginx's failed connects since the offset, then the log size
    const [path, timeout, log, from, ...sockets] = args as [string, string, string, string, ...string[]];
    const sections = sockets.map((socket) => {
      const answer = curlAnswer(host.answerSocket(socket, path), 'localhost port 80', Number(timeout), host);
      return `--voxops-probe ${answer.exitCode}\n${answer.stdout.replace(/\n$/, '')}\n`;
    });
    const text = host.fs.exists(log) ? host.fs.read(log) : '';
    const failed = text
      .slice(Number(from))
      .split('\n')
      .filter((line) => line.includes('connect() to unix:'));
    return ok(`${sections.join('')}--voxops-probe log\n${failed.map((l) => `${l}\n`).join('')}--voxops-probe size ${text.length}\n`);
  }
  return unsupported(argv, 'unknown sh -c script');
};

// ---- services ---------------------------------------------------------------------------------

const curl: Handler = (host, argv) => {
  const { flags, operands } = parseFlags(argv, ['-sS', '--max-time:', '-w:', '--unix-socket:']);
  only(
    argv,
    flags.has('-sS') && flags.get('-w') === '\\n%{http_code}' && operands.length === 1 && /^\d+$/.test(flags.get('--max-time') ?? ''),
  );
  const maxTime = Number(flags.get('--max-time'));
  const socket = flags.get('--unix-socket');
  if (socket !== undefined) {
    const url = new URL(operands[0]!);
    only(argv, url.hostname === 'localhost');
    return curlAnswer(host.answerSocket(socket, url.pathname), 'localhost port 80', maxTime, host);
  }
  const url = new URL(operands[0]!);
  return curlAnswer(host.answerUrl(operands[0]!), `${url.hostname} port ${url.port || 80}`, maxTime, host);
};

function unitJob(unit: string): string {
  const name = unit.endsWith('.service') ? unit : `${unit}.service`;
  return `Job for ${name} failed because the control process exited with error code.\nSee "systemctl status ${name}" and "journalctl -xeu ${name}" for details.`;
}

const systemctl: Handler = (host, argv) => {
  const [verb, ...rest] = argv.slice(1) as [string, ...string[]];
  const named = (units: readonly string[]): Unit[] | Exec => {
    const missing = units.find((u) => !host.unit(u));
    return missing ? fail(5, `Failed to ${verb} ${missing}: Unit ${missing} not found.`) : units.map((u) => host.unit(u)!);
  };
  if (verb === 'reload' && rest.length === 1 && rest[0] === 'nginx' && host.nginx) {
    if (host.nginx.nextReloads?.shift() === 'fail') return fail(1, unitJob('nginx'));
    const problem = host.nginxReload();
    return problem ? fail(1, unitJob('nginx')) : ok();
  }
  const { flags, operands } = parseFlags(argv, ['--now'], 2);
  if (operands.length === 0) unsupported(argv);
  if (verb === 'is-active' || verb === 'is-enabled') {
    const units = operands.map((u) => host.unit(u));
    const lines = units.map((u) => (verb === 'is-active' ? (u?.state ?? 'inactive') : u?.enabled ? 'enabled' : 'disabled'));
    const all = lines.every((l) => l === (verb === 'is-active' ? 'active' : 'enabled'));
    return { exitCode: all ? 0 : verb === 'is-active' ? 3 : 1, stdout: lines.map((l) => `${l}\n`).join(''), stderr: '' };
  }
  only(argv, operands.length === 1);
  const units = named(operands);
  if (!Array.isArray(units)) return units;
  const unit = units[0]!;
  switch (verb) {
    case 'restart':
      only(argv, flags.size === 0);
      return host.startUnit(unit) ? ok() : fail(1, unitJob(unit.name));
    case 'reset-failed':
      only(argv, flags.size === 0);
      if (unit.state === 'failed') unit.state = 'inactive';
      return ok();
    case 'enable':
      only(argv, flags.has('--now'));
      unit.enabled = true;
      return host.startUnit(unit) ? ok() : fail(1, unitJob(unit.name));
    case 'disable':
      only(argv, flags.has('--now'));
      unit.enabled = false;
      host.stopUnit(unit);
      return ok();
    case 'reload':
      only(argv, flags.size === 0 && unit.name === host.haproxy?.unit);
      return host.haproxyReload() ? fail(1, unitJob(unit.name)) : ok();
  }
  return unsupported(argv, 'unknown systemctl verb');
};

const journalctl: Handler = (host, argv) => {
  const { flags, operands } = parseFlags(argv, ['--no-pager', '--output', '-n:', '-u:']);
  only(argv, operands.length === 0 && flags.get('--output') === 'short-iso' && flags.has('-u'));
  const unit = host.unit(flags.get('-u')!);
  const lines = (unit?.journal ?? []).slice(-Number(flags.get('-n')));
  if (lines.length === 0) return ok('-- No entries --\n');
  return ok(lines.map((l) => `2025-06-02T09:00:00+0000 ${host.name} ${unit!.name}: ${l}\n`).join(''));
};

const nginx: Handler = (host, argv) => {
  only(argv, argv.length === 3 && argv[2] === '-q' && (argv[1] === '-t' || argv[1] === '-T') && host.nginx !== undefined);
  const problem = host.nginxTest();
  if (problem) return fail(1, `${problem}\nnginx: configuration file /etc/nginx/nginx.conf test failed`);
  if (argv[1] === '-t') return ok();
  return ok([...host.nginxFiles()].map(([file, text]) => `# configuration file ${file}:\n${text}\n`).join('\n'));
};

const haproxy: Handler = (host, argv, ctx) => {
  const { flags, operands } = parseFlags(argv, ['-c', '-f:']);
  only(argv, flags.has('-c') && flags.has('-f') && operands.length === 0 && host.haproxy !== undefined);
  const file = flags.get('-f')!;
  let text: string;
  if (file === '/dev/stdin') text = readStdin(ctx);
  else if (host.fs.exists(file)) text = host.fs.read(file);
  else return fail(1, `[ALERT]    (4242) : config : Cannot open configuration file/directory ${file} : No such file or directory`);
  const problem = host.haproxyCheck(text);
  return problem
    ? fail(1, `[ALERT]    (4242) : ${problem}\n[ALERT]    (4242) : config : Fatal errors found in configuration.`)
    : ok('Configuration file is valid\n');
};

/** HAProxy's runtime API through voxops' python3 client */
const python3: Handler = (host, argv) => {
  only(argv, argv.length === 5 && argv[1] === '-c' && argv[2] === scripts.runtimeClient);
  const [socket, command] = [argv[3]!, argv[4]!];
  const h = host.haproxy;
  if (!h || !h.running || socket !== h.adminSocket) return fail(2, `cannot connect to ${socket}: [Errno 2] No such file or directory`);
  if (command === 'show info') return ok(`Name: HAProxy\nVersion: 2.6.12-1+deb12u1\nPid: ${h.pid}\nUptime_sec: 42\n`);
  if (command === 'show stat') {
    const rows = h.loaded.map((s) => {
      const drained = h.drained.has(s.name);
      const sessions = h.sessions.get(s.name) ?? 0;
      if (drained && sessions > 0 && !h.holding.has(s.name)) h.sessions.set(s.name, sessions - 1);
      const check = host.haproxyCheckOf(s);
      const status = drained ? 'DRAIN' : check.status;
      return `${h.backend},${s.name},${sessions},${sessions + 10},${status},${check.check},${check.code}`;
    });
    return ok(
      [
        '# pxname,svname,scur,stot,status,check_status,last_chk',
        'calls,FRONTEND,0,0,OPEN,,',
        ...rows,
        `${h.backend},BACKEND,0,0,UP,,`,
        '',
      ].join('\n'),
    );
  }
  const set = /^set server ([^/ ]+)\/(\S+) state (drain|ready)$/.exec(command);
  if (set) {
    if (set[1] !== h.backend || !h.loaded.some((s) => s.name === set[2])) return ok('No such server.\n');
    if (set[3] === 'drain') h.drained.add(set[2]!);
    else h.drained.delete(set[2]!);
    return ok();
  }
  return unsupported(argv, 'unknown HAProxy runtime command');
};

// ---- git and installs ---------------------------------------------------------------------------

const unreachableOrigin = (error: string) =>
  fail(
    128,
    `${error}\r\nfatal: Could not read from remote repository.\n\nPlease make sure you have the correct access rights\nand the repository exists.`,
  );

const git: Handler = (host, argv) => {
  only(argv, argv[1] === '-C' && argv.length >= 4);
  const path = argv[2]!;
  const clone = host.cloneAt(path);
  if (!clone) return fail(128, `fatal: cannot change to '${path}': No such file or directory`);
  const args = argv.slice(3).join(' ');
  const tagRef = (ref: string | undefined) => /^refs\/tags\/(v[^^]+)(\^\{commit\})?$/.exec(ref ?? '')?.[1];
  const origin = clone.origin;
  if (args === 'fetch --quiet --tags --force origin') {
    if (!clone.reachable) return unreachableOrigin(origin.error);
    for (const [tag, { commit }] of origin.tags) clone.tags.set(tag, commit);
    return ok();
  }
  if (/^ls-remote --exit-code --tags origin refs\/tags\/\S+$/.test(args)) {
    if (!clone.reachable) return unreachableOrigin(origin.error);
    const tag = tagRef(argv[7]);
    const found = tag ? origin.tags.get(tag) : undefined;
    return found ? ok(`${found.commit}\trefs/tags/${tag}\n`) : fail(2, '');
  }
  if (/^rev-parse --quiet --verify refs\/tags\/\S+\^\{commit\}$/.test(args)) {
    const commit = clone.tags.get(tagRef(argv[6]) ?? '');
    return commit ? ok(`${commit}\n`) : fail(1, '');
  }
  if (/^rev-parse HEAD refs\/tags\/\S+\^\{commit\}$/.test(args)) {
    const commit = clone.tags.get(tagRef(argv[5]) ?? '');
    if (commit) return ok(`${clone.head}\n${commit}\n`);
    return fail(
      128,
      `fatal: ambiguous argument '${argv[5]}': unknown revision or path not in the working tree.`,
      `${clone.head}\n${argv[5]}\n`,
    );
  }
  if (/^checkout --quiet --force --detach refs\/tags\/\S+$/.test(args)) {
    const commit = clone.tags.get(tagRef(argv[7]) ?? '');
    if (!commit) return fail(1, `error: pathspec '${argv[7]}' did not match any file(s) known to git`);
    clone.head = commit;
    return ok();
  }
  if (args === 'describe --tags --exact-match HEAD') {
    const tag = clone.tagAtHead();
    return tag ? ok(`${tag}\n`) : fail(128, `fatal: no tag exactly matches '${clone.head}'`);
  }
  return unsupported(argv, 'unknown git command');
};

/** `uv sync --frozen`, `npm ci`, `npm run build` in a checkout: the inventory's install argv */
const install: Handler = (host, argv, ctx) => {
  const words = argv.join(' ');
  only(argv, ['uv sync --frozen', 'npm ci', 'npm run build'].includes(words));
  const clone = host.cloneAt(ctx.cwd);
  if (!clone) return unsupported(argv, `install outside a checkout (cwd ${ctx.cwd})`);
  const release = host.releaseIn(clone.path);
  if (clone.origin.spec(release).installFails) return fail(1, `error: ${words} failed for ${release}: No space left on device`);
  if (words === 'uv sync --frozen') host.fs.put(`${clone.path}/.venv/installed-version`, `${release}\n`);
  if (words === 'npm ci') host.fs.mkdir(`${clone.path}/node_modules`, true);
  if (words === 'npm run build') {
    host.fs.put(`${clone.path}/dist/index.html`, consoleIndex(release ?? 'unknown'));
    host.fs.put(`${clone.path}/dist/VERSION`, `${release}\n`);
  }
  return ok();
};

/** what the console's build writes (the lab's build.sh puts the version in it) */
export function consoleIndex(release: string): string {
  return `<!doctype html><html><head><title>voxconsole ${release}</title><meta name="voxconsole-version" content="${release}"></head><body><p id="version">${release}</p></body></html>\n`;
}

const handlers: Record<string, Handler> = {
  test,
  mv,
  touch,
  chown: attributes('owner'),
  chmod: attributes('mode'),
  rm,
  mkdir,
  ln,
  cat,
  cp,
  dd,
  grep,
  tail,
  df,
  readlink,
  ls,
  sha256sum,
  awk,
  diff,
  sh,
  curl,
  systemctl,
  journalctl,
  nginx,
  haproxy,
  python3,
  git,
  uv: install,
  npm: install,
  true: () => ok(),
  false: () => fail(1, ''),
};

/** Run one argv on the host; an argv the simulator has no handler for is a gap (it throws). */
export function dispatch(host: SimHost, argv: readonly string[], ctx: ShellContext): Exec {
  const handler = Object.hasOwn(handlers, argv[0]!) ? handlers[argv[0]!] : undefined;
  if (!handler) unsupported(argv, 'no handler for this command');
  return handler(host, argv, ctx);
}
