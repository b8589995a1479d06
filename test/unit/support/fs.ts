/**
 * The simulated host's file system: absolute paths to files, directories, symlinks and Unix
 * sockets. Just enough POSIX for what voxops sends: rename keeps a socket's identity (the process
 * still answers on the moved path), hard links copy content, mtimes order `ls -t`.
 */
export type FsNode =
  | { kind: 'file'; content: string; mtime: number; owner: string; mode: string }
  | { kind: 'dir'; mtime: number; owner: string; mode: string }
  | { kind: 'symlink'; target: string; mtime: number; owner: string; mode: string }
  /** a listening Unix socket: `pid` is the process that accepts on it */
  | { kind: 'socket'; pid: number; mtime: number; owner: string; mode: string };

export class FsError extends Error {
  constructor(
    readonly code: 'ENOENT' | 'EEXIST' | 'EISDIR' | 'ENOTDIR' | 'ENOTEMPTY',
    readonly path: string,
  ) {
    super(`${code}: ${path}`);
  }
}

const errorText: Record<FsError['code'], string> = {
  ENOENT: 'No such file or directory',
  EEXIST: 'File exists',
  EISDIR: 'Is a directory',
  ENOTDIR: 'Not a directory',
  ENOTEMPTY: 'Directory not empty',
};

/** strerror, as coreutils print it */
export function describeFsError(error: FsError): string {
  return errorText[error.code];
}

export function dirOf(path: string): string {
  const cut = path.lastIndexOf('/');
  return cut <= 0 ? '/' : path.slice(0, cut);
}

export function baseOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

export class SimFs {
  private readonly nodes = new Map<string, FsNode>();
  private clock = 0;

  constructor() {
    this.nodes.set('/', { kind: 'dir', mtime: 0, owner: 'root', mode: '755' });
  }

  /** absolute, no `.`/`..`, no trailing or doubled slash */
  normalize(path: string, cwd = '/'): string {
    const parts: string[] = [];
    for (const part of (path.startsWith('/') ? path : `${cwd}/${path}`).split('/')) {
      if (!part || part === '.') continue;
      if (part === '..') parts.pop();
      else parts.push(part);
    }
    return `/${parts.join('/')}`;
  }

  /** the host's clock, when there is one: mtimes are then virtual epoch ms (`stat -c %Y` reads them) */
  now: (() => number) | undefined;

  private tick(): number {
    // strictly increasing, so `ls -t` orders files written in one virtual instant
    this.clock = Math.max(this.clock + 1, this.now?.() ?? 0);
    return this.clock;
  }

  /** lstat: the node itself, a symlink not followed */
  lstat(path: string): FsNode | undefined {
    return this.nodes.get(this.normalize(path));
  }

  /** the path with every symlink resolved (readlink -e), undefined when it does not exist */
  realpath(path: string, depth = 0): string | undefined {
    if (depth > 20) return undefined;
    const parts = this.normalize(path).split('/').filter(Boolean);
    let current = '/';
    for (const [i, part] of parts.entries()) {
      const next = current === '/' ? `/${part}` : `${current}/${part}`;
      const node = this.nodes.get(next);
      if (!node) return undefined;
      if (node.kind === 'symlink') {
        const target = this.realpath(this.normalize(node.target, current), depth + 1);
        if (!target) return undefined;
        current = target;
      } else {
        if (node.kind !== 'dir' && i < parts.length - 1) return undefined;
        current = next;
      }
    }
    return current;
  }

  stat(path: string): FsNode | undefined {
    const real = this.realpath(path);
    return real ? this.nodes.get(real) : undefined;
  }

  exists(path: string): boolean {
    return this.stat(path) !== undefined;
  }

  read(path: string): string {
    const node = this.stat(path);
    if (!node) throw new FsError('ENOENT', path);
    if (node.kind === 'dir') throw new FsError('EISDIR', path);
    if (node.kind !== 'file') throw new FsError('ENOENT', path);
    return node.content;
  }

  private parentMustExist(path: string): void {
    const parent = this.stat(dirOf(path));
    if (!parent) throw new FsError('ENOENT', path);
    if (parent.kind !== 'dir') throw new FsError('ENOTDIR', path);
  }

  /** where a write to `path` lands: a symlink is written through to its target */
  private writeTarget(path: string): string {
    const node = this.lstat(path);
    if (node?.kind === 'symlink') return this.realpath(path) ?? this.normalize(node.target, dirOf(this.normalize(path)));
    return this.normalize(path);
  }

  /** create or truncate (or append to) a file; the parent directory must exist */
  write(path: string, content: string, options: { append?: boolean } = {}): void {
    const target = this.writeTarget(path);
    this.parentMustExist(target);
    const node = this.nodes.get(target);
    if (node?.kind === 'dir') throw new FsError('EISDIR', path);
    const before = node?.kind === 'file' && options.append ? node.content : '';
    this.nodes.set(target, {
      kind: 'file',
      content: before + content,
      mtime: this.tick(),
      owner: node?.owner ?? 'root',
      mode: node?.mode ?? '644',
    });
  }

  /** setup helper: write a file, creating its directories */
  put(path: string, content: string, owner = 'root'): void {
    this.mkdir(dirOf(this.normalize(path)), true);
    this.write(path, content);
    (this.nodes.get(this.normalize(path)) as { owner: string }).owner = owner;
  }

  touch(path: string): void {
    const node = this.stat(path);
    if (node) {
      node.mtime = this.tick();
      return;
    }
    this.write(path, '');
  }

  mkdir(path: string, parents: boolean): void {
    const target = this.normalize(path);
    const node = this.stat(target);
    if (node) {
      if (node.kind !== 'dir') throw new FsError('EEXIST', path);
      if (!parents) throw new FsError('EEXIST', path);
      return;
    }
    if (parents && target !== '/') this.mkdir(dirOf(target), true);
    this.parentMustExist(target);
    this.nodes.set(target, { kind: 'dir', mtime: this.tick(), owner: 'root', mode: '755' });
  }

  symlink(target: string, link: string): void {
    const path = this.normalize(link);
    this.parentMustExist(path);
    if (this.nodes.has(path)) throw new FsError('EEXIST', link);
    this.nodes.set(path, { kind: 'symlink', target, mtime: this.tick(), owner: 'root', mode: '777' });
  }

  socket(path: string, pid: number, owner: string): void {
    const target = this.normalize(path);
    this.parentMustExist(target);
    this.nodes.set(target, { kind: 'socket', pid, mtime: this.tick(), owner, mode: '755' });
  }

  /** the node and everything below it, keyed by path */
  private subtree(path: string): [string, FsNode][] {
    const root = this.normalize(path);
    const prefix = root === '/' ? '/' : `${root}/`;
    return [...this.nodes].filter(([p]) => p === root || p.startsWith(prefix));
  }

  /** unlink (or rm -r); a directory needs `recursive` */
  remove(path: string, recursive: boolean): void {
    const target = this.normalize(path);
    const node = this.nodes.get(target);
    if (!node) throw new FsError('ENOENT', path);
    if (node.kind === 'dir' && !recursive) throw new FsError('EISDIR', path);
    for (const [p] of this.subtree(target)) this.nodes.delete(p);
  }

  /** rename(2): a directory or socket moves with everything it is; replaces a non-directory target */
  rename(from: string, to: string): void {
    const source = this.normalize(from);
    const dest = this.normalize(to);
    const node = this.nodes.get(source);
    if (!node) throw new FsError('ENOENT', from);
    this.parentMustExist(dest);
    const existing = this.nodes.get(dest);
    if (existing?.kind === 'dir') {
      if (node.kind !== 'dir') throw new FsError('EISDIR', to);
      if (this.list(dest).length > 0) throw new FsError('ENOTEMPTY', to);
    } else if (existing && node.kind === 'dir') {
      throw new FsError('ENOTDIR', to);
    }
    if (source === dest) return;
    for (const [p] of this.subtree(dest)) this.nodes.delete(p);
    for (const [p, n] of this.subtree(source)) {
      this.nodes.delete(p);
      this.nodes.set(dest + p.slice(source.length), n);
    }
  }

  /** cp -a / cp -p: a copy of the node (and what is below it); a socket cannot be copied */
  copy(from: string, to: string): void {
    const source = this.realpath(from);
    if (!source) throw new FsError('ENOENT', from);
    const dest = this.normalize(to);
    this.parentMustExist(dest);
    if (this.nodes.get(dest)?.kind === 'dir' && this.nodes.get(source)?.kind !== 'dir') throw new FsError('EISDIR', to);
    for (const [p, n] of this.subtree(source)) this.nodes.set(dest + p.slice(source.length), { ...n });
  }

  /** names in a directory */
  list(path: string): { name: string; node: FsNode }[] {
    const dir = this.realpath(path);
    const node = dir ? this.nodes.get(dir) : undefined;
    if (!dir || !node) throw new FsError('ENOENT', path);
    if (node.kind !== 'dir') throw new FsError('ENOTDIR', path);
    const prefix = dir === '/' ? '/' : `${dir}/`;
    return [...this.nodes]
      .filter(([p]) => p.startsWith(prefix) && p !== dir && !p.slice(prefix.length).includes('/'))
      .map(([p, n]) => ({ name: p.slice(prefix.length), node: n }));
  }

  /** every path that exists, for assertions ("no .draining socket is left") */
  paths(): string[] {
    return [...this.nodes.keys()].sort();
  }
}
