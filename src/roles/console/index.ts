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
} from '../../commands/console.js';
import { nginxErrorLines, reloadNginx, testNginxConfig } from '../../commands/nginx.js';
import { probeHealthUrl } from '../../commands/worker.js';
import type { ConsoleRoleConfig } from '../../config/schema.js';
import { ConfigRejectedError, HealthGateError } from '../../errors.js';
import { poll } from '../../wait.js';
import type { HostContext, RoleDefinition, RoleObserver } from '../contract.js';
import { checkoutDriver, configOf, type CheckoutRecipe } from '../shared/checkout.js';
import { probe } from '../shared/health.js';
import { checkoutTag } from '../shared/tag.js';

const VERIFY_TIMEOUT_MS = 10_000;
const VERIFY_POLL_MS = 200;

export function consoleCurrent(config: ConsoleRoleConfig): string {
  return config.current ?? `${config.path}/current`;
}

async function servedTarget(host: HostContext, current: string): Promise<string | undefined> {
  const r = await host.run(readCurrent(current));
  return r.exitCode === 0 ? r.stdout.trim() : undefined;
}

/**
 * Static files: the build is copied into releases/<tag>-<commit>, and nginx's `current` symlink is
 * flipped to it in one rename. The previous release stays beside it, so a rollback is one more flip.
 */
const consoleRecipe: CheckoutRecipe<ConsoleRoleConfig> = {
  role: 'console',
  config: (inventory) => inventory.roles.console,
  preserve(config) {
    const current = consoleCurrent(config);
    const inCheckout = (p: string) => (p.startsWith(`${config.path}/`) ? [`/${p.slice(config.path.length + 1)}`] : []);
    return [
      ...config.preserve,
      `/${config.output}/`,
      ...inCheckout(current),
      ...inCheckout(consoleReleasesDir(current)).map((p) => `${p}/`),
    ];
  },
  restoresItself: true,
  async readTag(host, config) {
    const served = await servedTarget(host, consoleCurrent(config));
    const tag = served ? tagOfRelease(served) : undefined;
    // before the first voxops deploy, `current` points at the checkout's own build
    return tag ?? checkoutTag(host, config.path);
  },
  async inspect(host, config) {
    const problems: string[] = [];
    const tested = await host.run(testNginxConfig());
    if (tested.exitCode !== 0) problems.push(`${host.host.name}: nginx -t fails before any change: ${nginxErrorLines(tested.stderr)}`);
    const current = consoleCurrent(config);
    if (!(await servedTarget(host, current)))
      problems.push(`${host.host.name}: ${current} is not a symlink: nginx must serve the console from it`);
    return { problems, warnings: [] };
  },
  async keptRelease(host, config, tag) {
    const listing = await host.run(listConsoleReleases(consoleCurrent(config)));
    return listing.stdout
      .split('\n')
      .map((l) => l.trim())
      .filter((name) => tagOfRelease(name) === tag)
      .pop();
  },
  describeActivate(config, tag) {
    const current = consoleCurrent(config);
    const name = releaseName(tag, '<commit>');
    const dir = `${consoleReleasesDir(current)}/${name}`;
    return [
      copyBuild(config.path, config.output, current, name),
      testNginxConfig(),
      flipCurrent(current, dir),
      reloadNginx(),
      servedAndBuiltDigests(config.verifyUrl, dir),
    ];
  },
  async activate(host, config, release) {
    const name = host.host.name;
    const current = consoleCurrent(config);
    const previous = await servedTarget(host, current);
    const build = release.kept ?? releaseName(release.tag, release.commit!);
    if (!release.kept) await host.step(copyBuild(config.path, config.output, current, build));
    const tested = await host.step(testNginxConfig());
    if (tested.exitCode !== 0) {
      throw new ConfigRejectedError(`${name}: nginx -t fails, so the console was not switched: ${nginxErrorLines(tested.stderr)}`, {
        next: `fix nginx on ${name} (nginx -t), then re-run`,
      });
    }
    const dir = `${consoleReleasesDir(current)}/${build}`;
    let served = '';
    try {
      await host.step(flipCurrent(current, dir));
      await host.step(reloadNginx());
      const verified = await poll({
        clock: host.clock,
        timeoutMs: VERIFY_TIMEOUT_MS,
        intervalMs: VERIFY_POLL_MS,
        probe: async () =>
          (await host.run(servedAndBuiltDigests(config.verifyUrl, dir))).stdout.split('\n').map((l) => l.split(' ')[0] ?? ''),
        until: ([servedDigest, builtDigest]) => (servedDigest && servedDigest === builtDigest ? servedDigest : undefined),
      });
      if (verified.outcome !== 'done')
        throw new HealthGateError(`${name}: ${config.verifyUrl} does not serve ${build}/index.html after the flip`, { host: name });
      served = verified.result;
    } catch (error) {
      // whatever failed after the flip (verify, reload, Ctrl-C), nginx serves the previous build again
      if (previous) {
        await host.run(flipCurrent(current, previous));
        await host.run(reloadNginx()).catch(() => undefined);
      }
      if (error instanceof HealthGateError && previous)
        throw new HealthGateError(`${error.message}; ${current} points back at ${previous}`, error.details);
      throw error;
    }
    const listing = await host.run(listConsoleReleases(current));
    const old = consoleReleasesToPrune(listing.stdout, config.keep, [build, ...(previous ? [previous.split('/').pop()!] : [])]);
    if (old.length > 0) await host.run(removeConsoleReleases(current, old));
    const kept = previous && tagOfRelease(previous) ? `; ${previous.split('/').pop()} is kept for rollback` : '';
    return { downMs: 0, message: `${config.verifyUrl} serves ${build} (index.html sha256 ${served.slice(0, 12)})${kept}` };
  },
};

const consoleObserver: RoleObserver = {
  readTag: (host) => consoleRecipe.readTag(host, configOf(consoleRecipe, host.inventory)),
  async status(host) {
    const config = configOf(consoleRecipe, host.inventory);
    const [tag, p] = await Promise.all([consoleRecipe.readTag(host, config), probe(host, probeHealthUrl(config.verifyUrl))]);
    // the console answers HTML, not a health document: 200 is all it can say
    const health = p.httpStatus === 200 ? 'ok' : p.httpStatus === 0 ? 'unreachable' : 'unhealthy';
    return { tag, health, problems: health === 'ok' ? [] : [`${host.host.name}: console ${config.verifyUrl} is ${health}`] };
  },
  // the console is static files: its log is nginx's
  logUnit: () => 'nginx.service',
};

export const consoleDefinition: RoleDefinition = {
  role: 'console',
  drivers: [checkoutDriver(consoleRecipe, ['deploy', 'rollback'])],
  observer: consoleObserver,
};
