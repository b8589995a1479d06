import { beforeAll, describe, expect, it } from 'vitest';
import { releaseName } from '../../../src/commands/console.js';
import { lockFile } from '../../../src/commands/state.js';
import { eventsOf, voxops, type Run } from '../support/cli.js';
import { consoleIndex } from '../support/commands.js';
import { CONSOLE, Sim } from '../support/sim.js';

function consoleHost(options: { release?: string; kept?: string[] } = {}) {
  const sim = new Sim();
  const console1 = sim.addConsoleHost('console1', options);
  const dir = (tag: string) => `${CONSOLE.path}/releases/${releaseName(tag, sim.origins.console.commit(tag))}`;
  return { sim, console1, dir };
}

describe('deploy console', () => {
  it('builds, keeps the build as a release, flips `current` to it and checks what is served', async () => {
    const { sim, console1, dir } = consoleHost();

    const run = await voxops(sim, ['deploy', 'console', '--tag', 'v1.5.0', '--json']);

    expect(run.exitCode, run.stderr).toBe(0);
    expect(console1.fs.lstat(CONSOLE.current)).toMatchObject({ kind: 'symlink', target: dir('v1.5.0') });
    expect(console1.fs.read(`${CONSOLE.current}/index.html`)).toBe(consoleIndex('v1.5.0'));
    // the previous build stays beside it, for a rollback by flip
    expect(console1.fs.exists(`${dir('v1.4.2')}/index.html`)).toBe(true);
    expect(console1.ran()).toEqual(expect.arrayContaining(['npm ci', 'npm run build', 'nginx -t -q', 'systemctl reload nginx']));
    expect(console1.ran().filter((c) => c.startsWith('systemctl restart'))).toEqual([]);
    // a static deploy is no outage: no downtime warning
    expect(eventsOf(run, 'warning')).toEqual([]);
    expect(sim.historyOf('console1')).toMatchObject([{ role: 'console', from: 'v1.4.2', to: 'v1.5.0', outcome: 'success' }]);
    expect(console1.fs.exists(lockFile)).toBe(false);
  });

  it('rolls back to a kept build with a flip alone: no checkout, no build', async () => {
    const { sim, console1, dir } = consoleHost({ release: 'v1.5.0', kept: ['v1.4.2'] });
    sim.history('console1', [{ from: 'v1.4.2', to: 'v1.5.0' }]);

    const run = await voxops(sim, ['rollback', 'console', '--json']);

    expect(run.exitCode, run.stderr).toBe(0);
    expect(console1.fs.lstat(CONSOLE.current)).toMatchObject({ kind: 'symlink', target: dir('v1.4.2') });
    expect(console1.ran().filter((c) => /^(git -C \S+ (fetch|checkout)|npm|cp -a)/.test(c))).toEqual([]);
    expect(eventsOf(run, 'info').map((e) => e.message)).toContain('console on v1.5.0, 20000 MiB free; going back to the kept build v1.4.2-' + sim.origins.console.commit('v1.4.2').slice(0, 12));
    expect(sim.historyOf('console1').at(-1)).toMatchObject({ action: 'rollback', from: 'v1.5.0', to: 'v1.4.2', outcome: 'success' });
  });

  describe('when the URL does not serve the new build', () => {
    // one run (real time today: 10 s, VERIFY_TIMEOUT_MS in src/recipes/console.ts is measured with
    // Date.now), two sets of assertions: what works, and the bug
    let run: Run;
    const { sim, console1, dir } = consoleHost();
    beforeAll(async () => {
      // a cache in front of nginx keeps serving the old page
      console1.console!.serveOverride = consoleIndex('v1.4.2');
      run = await voxops(sim, ['deploy', 'console', '--tag', 'v1.5.0', '--json']);
    }, 30_000);

    it('flips `current` back to the previous build (exit 4)', () => {
      expect(run.exitCode).toBe(4);
      expect(run.error).toMatch(
        `voxops: console1: http://127.0.0.1/ does not serve ${dir('v1.5.0').split('/').pop()}/index.html after the flip; ${CONSOLE.current} points back at ${dir('v1.4.2')}`,
      );
      expect(console1.fs.lstat(CONSOLE.current)).toMatchObject({ kind: 'symlink', target: dir('v1.4.2') });
      expect(console1.ran().filter((c) => c === 'systemctl reload nginx')).toHaveLength(2);
      expect(sim.historyOf('console1')).toMatchObject([{ to: 'v1.5.0', outcome: 'rolled-back' }]);
      expect(console1.fs.exists(lockFile)).toBe(false);
    });

    // BUG (src/recipes/console.ts activate, and src/deploy/role-operation.ts runHost for a recipe that
    // restoresItself): the HealthGateError is rethrown without `next`, so the one error line has no
    // "Next:" hint, unlike every other exit 4 (README: "what to run next").
    it.fails('says what to run next', () => {
      expect(run.error).toMatch(/\. Next: \S/);
    });
  });
});
