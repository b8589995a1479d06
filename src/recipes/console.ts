import {
  consoleReleasesDir,
  consoleReleasesToPrune,
  copyBuild,
  flipCurrent,
  listConsoleReleases,
  readCurrent,
  releaseName,
  removeConsoleReleases,
  servedAndBuiltDigests,
  tagOfRelease,
} from '../commands/console.js';
import { currentTag, install } from '../commands/git.js';
import { nginxErrorLines, reloadNginx, testNginxConfig } from '../commands/nginx.js';
import type { ConsoleRoleConfig } from '../config/schema.js';
import { ConfigRejectedError, HealthGateError } from '../errors.js';
import type { HostSession } from '../exec/executor.js';
import type { Step } from '../commands/command.js';
import { sleep } from '../deploy/context.js';
import { runStep } from '../deploy/operation.js';
import type { RoleRecipe } from './recipe.js';

const VERIFY_TIMEOUT_MS = 10_000;

export function consoleCurrent(config: ConsoleRoleConfig): string {
  return config.current ?? `${config.path}/current`;
}

const nginxTest = testNginxConfig();
const nginxReload = reloadNginx();

/**
 * Static files: the build is copied into releases/<tag>-<commit>, and nginx's `current` symlink is
 * flipped to it in one rename. The previous release stays beside it, so a rollback is one more flip.
 */
export function consoleRecipe(config: ConsoleRoleConfig): RoleRecipe {
  const current = consoleCurrent(config);
  const releases = consoleReleasesDir(current);
  const inCheckout = (p: string) => (p.startsWith(`${config.path}/`) ? [`/${p.slice(config.path.length + 1)}`] : []);
  const target = async (session: HostSession) => {
    const r = await session.run(readCurrent(current));
    return r.exitCode === 0 ? r.stdout.trim() : undefined;
  };
  return {
    role: 'console',
    path: config.path,
    repo: config,
    install: install(config.path, config.install),
    preserve: [...config.preserve, `/${config.output}/`, ...inCheckout(current), ...inCheckout(releases).map((p) => `${p}/`)],
    minFreeDiskMb: config.minFreeDiskMb,
    restoresItself: true,
    async readTag(session) {
      const served = await target(session);
      const tag = served ? tagOfRelease(served) : undefined;
      if (tag) return tag;
      // before the first voxops deploy, `current` points at the checkout's own build
      const result = await session.run(currentTag(config.path));
      return result.exitCode === 0 ? result.stdout.trim() || null : null;
    },
    async inspect(session) {
      const problems: string[] = [];
      const t = await session.run(nginxTest);
      if (t.exitCode !== 0) problems.push(`${session.host.name}: nginx -t fails before any change: ${nginxErrorLines(t.stderr)}`);
      if (!(await target(session))) problems.push(`${session.host.name}: ${current} is not a symlink: nginx must serve the console from it`);
      return { problems, warnings: [] };
    },
    async keptRelease(session, tag) {
      const listing = await session.run(listConsoleReleases(current));
      return listing.stdout
        .split('\n')
        .map((l) => l.trim())
        .filter((name) => tagOfRelease(name) === tag)
        .pop();
    },
    planActivate(tag) {
      const name = releaseName(tag, '<commit>');
      return [copyBuild(config.path, config.output, current, name), nginxTest, flipCurrent(current, `${releases}/${name}`), nginxReload, servedAndBuiltDigests(config.verifyUrl, `${releases}/${name}`)];
    },
    async activate(ctx, session, release) {
      const host = session.host.name;
      const run = (step: Step) => runStep(ctx, session, step);
      const previous = await target(session);
      const name = release.kept ?? releaseName(release.tag, release.commit!);
      if (!release.kept) await run(copyBuild(config.path, config.output, current, name));
      const tested = await run(nginxTest);
      if (tested.exitCode !== 0) {
        throw new ConfigRejectedError(`${host}: nginx -t fails, so the console was not switched: ${nginxErrorLines(tested.stderr)}`, {
          next: `fix nginx on ${host} (nginx -t), then re-run`,
        });
      }
      const dir = `${releases}/${name}`;
      const flippedAt = Date.now();
      let served = '';
      try {
        await run(flipCurrent(current, dir));
        await run(nginxReload);
        for (;;) {
          const digests = await session.run(servedAndBuiltDigests(config.verifyUrl, dir));
          const lines = digests.stdout.split('\n').map((l) => l.split(' ')[0] ?? '');
          served = lines[0] ?? '';
          if (served && served === lines[1]) break;
          if (Date.now() - flippedAt > VERIFY_TIMEOUT_MS) {
            throw new HealthGateError(`${host}: ${config.verifyUrl} does not serve ${name}/index.html after the flip`, { host });
          }
          await sleep(200);
        }
      } catch (error) {
        // whatever failed after the flip (verify, reload, Ctrl-C), nginx serves the previous build again
        if (previous) {
          await session.run(flipCurrent(current, previous));
          await session.run(nginxReload).catch(() => undefined);
        }
        if (error instanceof HealthGateError && previous) {
          throw new HealthGateError(`${error.message}; ${current} points back at ${previous}`, error.details);
        }
        throw error;
      }
      await prune(session, current, config.keep, [name, ...(previous ? [previous.split('/').pop()!] : [])]);
      const kept = previous && tagOfRelease(previous) ? `; ${previous.split('/').pop()} is kept for rollback` : '';
      return { downtimeMs: 0, message: `${config.verifyUrl} serves ${name} (index.html sha256 ${served.slice(0, 12)})${kept}` };
    },
  };
}

async function prune(session: HostSession, current: string, keep: number, inUse: string[]): Promise<void> {
  const listing = await session.run(listConsoleReleases(current));
  const old = consoleReleasesToPrune(listing.stdout, keep, inUse);
  if (old.length > 0) await session.run(removeConsoleReleases(current, old));
}
