import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { simpleGit } from 'simple-git';
import { argv, type Step } from '../commands/command.js';
import { checkoutTag, fetchTags, headAndTagCommits, localTagExists, remoteTagExists, writeReleaseMarker } from '../commands/git.js';
import { HOST_OWNED_PATHS, renderSshConfig, rsyncPushArgv } from '../commands/rsync.js';
import { resolvePath, type Inventory } from '../config/inventory.js';
import { lastLine, PreflightError, RemoteCommandError } from '../errors.js';
import type { HostSession } from '../exec/executor.js';
import { runLocal } from '../exec/local.js';
import { renderCommand } from '../exec/render.js';
import type { ReleaseSource } from '../cli/args.js';
import type { OperationContext } from './context.js';
import { runStep, timed as timedWork } from './operation.js';

/** How a host gets a release: its own `git fetch`, or an rsync push from a clone on this machine. */
export type ResolvedSource = 'git' | 'rsync';

export interface TagLookup {
  /** the tag is already in the host's clone (a rollback needs no network) */
  tagLocally: boolean;
  origin: 'found' | 'missing' | 'unreachable' | 'not-asked';
  /** why origin could not be asked (git's last stderr line) */
  originError?: string;
}

/** Exit 2 from `ls-remote --exit-code` is an answer (no such tag); anything else non-zero means origin is out of reach. */
export async function lookUpTag(session: HostSession, path: string, tag: string, localFirst: boolean): Promise<TagLookup> {
  if (localFirst && (await session.run(localTagExists(path, tag))).exitCode === 0) return { tagLocally: true, origin: 'not-asked' };
  const remote = await session.run({ ...remoteTagExists(path, tag), okExitCodes: 'any' });
  if (remote.exitCode === 0) return { tagLocally: false, origin: 'found' };
  if (remote.exitCode === 2) return { tagLocally: false, origin: 'missing' };
  // git's first line says why (ssh: connect to host ... refused); the rest is boilerplate
  const why = remote.stderr.split('\n').map((l) => l.trim()).find(Boolean);
  return { tagLocally: false, origin: 'unreachable', originError: why?.slice(0, 200) ?? `git ls-remote exit ${remote.exitCode}` };
}

export interface SourceChoice {
  source: ResolvedSource;
  /** the tag is in the host's clone already: checkout without fetching */
  skipFetch: boolean;
  problem?: string;
  warning?: string;
}

/** Pure: what the operator asked for, and what the host could see, decide how the release gets there. */
export function chooseSource(host: string, tag: string, requested: ReleaseSource, lookup: TagLookup): SourceChoice {
  if (requested === 'rsync') return { source: 'rsync', skipFetch: true };
  if (lookup.tagLocally) return { source: 'git', skipFetch: true };
  if (lookup.origin === 'found' || lookup.origin === 'not-asked') return { source: 'git', skipFetch: false };
  if (lookup.origin === 'missing') return { source: 'git', skipFetch: false, problem: `${host}: tag ${tag} does not exist in origin` };
  const why = `${host} cannot fetch from origin (${lookup.originError ?? 'unreachable'})`;
  if (requested === 'git') return { source: 'git', skipFetch: false, problem: `${why}; --source rsync pushes the release from a local clone` };
  return { source: 'rsync', skipFetch: true, warning: `${why}: pushing ${tag} with rsync instead` };
}

interface ReleaseRepo {
  repo: string;
  localRepo?: string;
}

export interface LocalTree {
  tag: string;
  commit: string;
  dir: string;
}

/**
 * Release trees built on this machine for rsync pushes: `git archive` of the tag from a local
 * clone, extracted once per role and tag, deleted when the operation ends.
 */
export class ReleaseWorkspace {
  private readonly trees = new Map<string, Promise<LocalTree>>();
  private root: string | undefined;

  constructor(
    private readonly inventory: Inventory,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  tree(role: string, config: ReleaseRepo, tag: string): Promise<LocalTree> {
    const key = `${role}\n${tag}`;
    let tree = this.trees.get(key);
    if (!tree) {
      tree = this.build(role, config, tag);
      this.trees.set(key, tree);
    }
    return tree;
  }

  /** The clone rsync builds from: the inventory's localRepo, else a mirror in voxops' cache. */
  localRepo(role: string, config: ReleaseRepo): string {
    if (config.localRepo) return resolvePath(dirname(this.inventory.file), config.localRepo);
    const cache = this.env.XDG_CACHE_HOME ?? join(homedir(), '.cache');
    return join(cache, 'voxops', 'repos', `${this.inventory.environment}-${role}.git`);
  }

  private async build(role: string, config: ReleaseRepo, tag: string): Promise<LocalTree> {
    const repo = this.localRepo(role, config);
    const problems: string[] = [];
    if (!existsSync(repo)) {
      mkdirSync(dirname(repo), { recursive: true });
      await simpleGit().clone(config.repo, repo, ['--mirror', '--quiet']).catch((e: Error) => problems.push(`cannot clone ${config.repo}: ${lastLine(e.message)}`));
    }
    const git = simpleGit(repo);
    let commit = await this.commitOf(repo, tag);
    if (!commit && existsSync(repo) && (await git.getRemotes()).length > 0) {
      await git.fetch(['--tags', '--force', '--quiet']).catch((e: Error) => problems.push(`cannot update ${repo}: ${lastLine(e.message)}`));
      commit = await this.commitOf(repo, tag);
    }
    if (!commit) {
      throw new PreflightError(`the rsync fallback has no ${tag} for ${role}: it is not in ${repo}; nothing was changed`, problems, {
        next: `fetch the tag into that clone (git -C ${repo} fetch --tags), or set roles.${role}.localRepo in the inventory`,
      });
    }
    this.root ??= mkdtempSync(join(tmpdir(), 'voxops-release-'));
    const dir = join(this.root, `${role}-${tag}`, 'tree');
    const tar = join(this.root, `${role}-${tag}`, 'release.tar');
    mkdirSync(dir, { recursive: true });
    await git.raw(['archive', '--format=tar', '-o', tar, commit]);
    await this.local(argv('tar', '-xf', tar, '-C', dir), 'extract the release tree');
    return { tag, commit, dir };
  }

  private async commitOf(repo: string, tag: string): Promise<string | undefined> {
    if (!existsSync(repo)) return undefined;
    try {
      return (await simpleGit(repo).revparse(['--verify', '--quiet', `refs/tags/${tag}^{commit}`])).trim() || undefined;
    } catch {
      return undefined;
    }
  }

  private async local(command: Step['command'], what: string, timeoutMs = 120_000): Promise<string> {
    const rendered = renderCommand(command);
    const result = await runLocal(rendered, undefined, timeoutMs);
    if (result.exitCode !== 0) {
      throw new RemoteCommandError({ host: 'localhost', step: what, command: rendered, exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr });
    }
    return result.stdout;
  }

  /** rsync the tree into the host's checkout; returns how many paths changed. */
  async push(session: HostSession, tree: LocalTree, path: string, preserve: readonly string[], timeoutMs: number): Promise<number> {
    this.root ??= mkdtempSync(join(tmpdir(), 'voxops-release-'));
    const sshConfig = join(this.root, 'ssh_config');
    if (!existsSync(sshConfig)) writeFileSync(sshConfig, renderSshConfig(this.inventory.ssh), { mode: 0o600 });
    const words = rsyncPushArgv(tree.dir, { address: session.host.address, port: session.host.port, path, ssh: this.inventory.ssh }, preserve, sshConfig);
    const output = await this.local(argv(...(words as [string, ...string[]])), `rsync ${tree.tag} to ${session.host.name}:${path}`, timeoutMs).catch((error: unknown) => {
      if (error instanceof RemoteCommandError) {
        throw new RemoteCommandError({ ...error.facts, host: session.host.name }, { next: `check that ${session.host.name} is reachable over SSH and has rsync installed` });
      }
      throw error;
    });
    return output.split('\n').filter((line) => /^[<>ch*]/.test(line)).length;
  }

  cleanup(): void {
    if (this.root) rmSync(this.root, { recursive: true, force: true });
    this.root = undefined;
  }
}

export interface PlaceOptions {
  path: string;
  tag: string;
  choice: SourceChoice;
  workspace: ReleaseWorkspace;
  role: string;
  repo: ReleaseRepo;
  /** role-specific host-owned paths on top of HOST_OWNED_PATHS */
  preserve: readonly string[];
}

/**
 * Put the tag's files into the checkout, by git or by rsync, and return the commit now deployed.
 * A git checkout is verified (HEAD must be the tag's commit); an rsync push records the tag in the
 * release marker, as a checkout records it in HEAD.
 */
export async function placeRelease(ctx: OperationContext, session: HostSession, options: PlaceOptions): Promise<string> {
  const host = session.host.name;
  const timed = <T>(name: string, work: () => Promise<T>) => timedWork(ctx, host, name, work);
  const { path, tag } = options;
  if (options.choice.source === 'rsync') {
    const tree = await timed(`build ${tag} locally`, () => options.workspace.tree(options.role, options.repo, tag));
    const changed = await timed(`rsync ${tag}`, () => options.workspace.push(session, tree, path, options.preserve, 10 * 60_000));
    await timed(`record ${tag}`, () => session.run(writeReleaseMarker(path, tag, tree.commit)));
    ctx.reporter.emit({ type: 'info', host, message: `rsync pushed ${tag} (${tree.commit.slice(0, 12)}): ${changed} path(s) changed; ${HOST_OWNED_PATHS.join(' ')} ${options.preserve.join(' ')} untouched` });
    return tree.commit;
  }
  const run = (step: Step) => runStep(ctx, session, step);
  if (!options.choice.skipFetch) await run(fetchTags(path));
  await run(checkoutTag(path, tag));
  const verify = headAndTagCommits(path, tag);
  const verified = await run(verify);
  const [head, tagged] = verified.stdout.trim().split('\n');
  if (!head || head !== tagged) {
    throw new RemoteCommandError({
      host,
      step: verify.name,
      command: renderCommand(verify.command),
      exitCode: verified.exitCode,
      stdout: verified.stdout,
      stderr: `HEAD ${head ?? '?'} is not ${tag} (${tagged ?? '?'})`,
    });
  }
  return head;
}
