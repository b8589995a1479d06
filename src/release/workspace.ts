import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { simpleGit } from 'simple-git';
import { argv, type Command } from '../exec/command.js';
import { renderSshConfig, rsyncPushArgv } from '../commands/rsync.js';
import { resolvePath, type Host, type Inventory } from '../config/inventory.js';
import { lastLine, PreflightError, RemoteCommandError } from '../errors.js';
import { runLocal } from '../exec/local.js';
import { redactUrl } from '../redact.js';
import { renderCommand } from '../exec/render.js';

/** A role's repository, and the local clone the rsync fallback builds from. */
export interface ReleaseRepo {
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
      await simpleGit()
        .clone(config.repo, repo, ['--mirror', '--quiet'])
        .catch((e: Error) => problems.push(`cannot clone ${redactUrl(config.repo)}: ${lastLine(e.message)}`));
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
    const dir = join(this.ensureRoot(), `${role}-${tag}`, 'tree');
    const tar = join(this.ensureRoot(), `${role}-${tag}`, 'release.tar');
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

  private ensureRoot(): string {
    this.root ??= mkdtempSync(join(tmpdir(), 'voxops-release-'));
    return this.root;
  }

  private async local(command: Command, what: string, timeoutMs = 120_000): Promise<string> {
    const rendered = renderCommand(command);
    const result = await runLocal(rendered, undefined, timeoutMs);
    if (result.exitCode !== 0) {
      throw new RemoteCommandError({ host: 'localhost', step: what, command: rendered, exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr });
    }
    return result.stdout;
  }

  /** rsync the tree into the host's checkout; returns how many paths changed. */
  async push(host: Host, tree: LocalTree, path: string, preserve: readonly string[], timeoutMs: number): Promise<number> {
    const sshConfig = join(this.ensureRoot(), 'ssh_config');
    if (!existsSync(sshConfig)) writeFileSync(sshConfig, renderSshConfig(this.inventory.ssh), { mode: 0o600 });
    const target = { address: host.address, port: host.port, path, ssh: this.inventory.ssh };
    const words = rsyncPushArgv(tree.dir, target, preserve, sshConfig);
    const what = `rsync ${tree.tag} to ${host.name}:${path}`;
    const output = await this.local(argv(...(words as [string, ...string[]])), what, timeoutMs).catch((error: unknown) => {
      if (error instanceof RemoteCommandError) {
        throw new RemoteCommandError({ ...error.facts, host: host.name }, { next: `check that ${host.name} is reachable over SSH and has rsync installed` });
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
