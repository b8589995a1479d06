import { execFileSync } from 'node:child_process';
import { readFileSync, realpathSync } from 'node:fs';
import { dirname } from 'node:path';
import { describe, expect, it } from 'vitest';

/** What the Groovy stub recorded: each DSL call, its arguments, and the calls made inside it. */
interface Call {
  name: string;
  args: unknown[];
  children: Call[];
  value?: unknown;
}

const java = () => ({ ...process.env, JAVA_HOME: dirname(dirname(realpathSync('/usr/bin/java'))) });

/** The Jenkinsfile run against the stub of the pipeline DSL with these build parameters. */
function pipeline(params: Record<string, string> = {}): Call {
  const json = execFileSync(
    'groovy',
    ['test/jenkins/check-jenkinsfile.groovy', 'Jenkinsfile', ...Object.entries(params).map(([k, v]) => `${k}=${v}`)],
    { env: java(), encoding: 'utf8' },
  );
  const calls = JSON.parse(json) as Call[];
  expect(calls.map((c) => c.name)).toEqual(['pipeline']);
  return calls[0]!;
}

const flat = (calls: Call[]): Call[] => calls.flatMap((c) => [c, ...flat(c.children)]);
/** every call with the calls it sits inside, outermost first */
const withAncestors = (calls: Call[], above: Call[] = []): { call: Call; above: Call[] }[] =>
  calls.flatMap((c) => [{ call: c, above }, ...withAncestors(c.children, [...above, c])]);
const section = (p: Call, name: string) => p.children.find((c) => c.name === name)!;
const stage = (p: Call, name: string) => section(p, 'stages').children.find((s) => s.args[0] === name)!;
const shells = (calls: Call[]) =>
  flat(calls)
    .filter((c) => c.name === 'sh')
    .map((c) => String(c.args[0]));
const timeoutOf = (p: Call) =>
  flat(stage(p, 'deploy').children).find((c) => c.name === 'timeout')!.args[0] as { time: number; unit: string };

describe('the Jenkinsfile, run against a stub of the pipeline DSL', () => {
  const production = pipeline();
  const all = flat([production]);

  it('is valid Groovy and declares the stages, parameters and options we rely on', () => {
    expect(section(production, 'stages').children.map((s) => s.args[0])).toEqual(['plan', 'approval', 'deploy', 'verify']);
    expect(section(production, 'agent').args).toEqual(['${none}']);
    const params = section(production, 'parameters').children.map((c) => (c.args[0] as { name: string }).name);
    expect(params).toEqual(['ACTION', 'ROLE', 'TAG', 'ENV', 'FLEET_HOSTS', 'FLEET_GROUPS', 'TIMEOUT_MINUTES']);
    expect(section(production, 'options').children.map((c) => c.name)).toEqual(
      expect.arrayContaining(['timestamps', 'ansiColor', 'buildDiscarder', 'disableConcurrentBuilds', 'skipDefaultCheckout']),
    );
  });

  it('checks out once, in plan, and later stages unstash what was planned', () => {
    expect(all.filter((c) => c.name === 'checkout')).toHaveLength(1);
    expect(flat(stage(production, 'plan').children).some((c) => c.name === 'checkout')).toBe(true);
    expect(flat(stage(production, 'plan').children).some((c) => c.name === 'stash')).toBe(true);
    for (const name of ['deploy', 'verify'])
      expect(flat(stage(production, name).children).find((c) => c.name === 'unstash')?.args).toEqual(['voxops']);
  });

  it('runs no tests: CI does that elsewhere', () => {
    for (const script of shells([production])) expect(script).not.toMatch(/vitest|npm (run )?test|lint/);
  });

  it('every voxops command goes through the wrapper with exec, and no shell expands a parameter', () => {
    const voxops = shells([production, ...flat([pipeline({ ROLE: 'fleet', FLEET_GROUPS: 'fleet-1;fleet-2' })])]).filter((s) =>
      s.includes('voxops'),
    );
    expect(voxops.length).toBeGreaterThanOrEqual(5);
    for (const script of voxops) expect(script).toMatch(/^exec scripts\/jenkins-voxops\.sh (config-check|plan|run|health)$/);
    for (const script of shells([production])) expect(script).not.toMatch(/\$\(|`|bin\/voxops/);
  });

  it('the inventory comes from the Config File Provider, and the key from sshagent, for every voxops command', () => {
    expect(readFileSync('Jenkinsfile', 'utf8')).not.toContain('inventory/voxops.yaml"');
    const runs = withAncestors([production]).filter(({ call }) => call.name === 'sh' && String(call.args[0]).includes('jenkins-voxops.sh'));
    expect(runs.length).toBe(4);
    for (const { call, above } of runs) {
      const provider = above.find((c) => c.name === 'configFileProvider');
      expect(provider, String(call.args[0])).toBeDefined();
      const files = (provider!.args[0] as { name: string; args: Record<string, string>[] }[]).map((f) => f.args[0]!);
      expect(files).toContainEqual({
        fileId: 'voxops-inventory',
        targetLocation: 'voxops-inventory/voxops.yaml',
        variable: 'VOXOPS_INVENTORY',
      });
      expect(files).toContainEqual({ fileId: 'voxops-known-hosts', targetLocation: 'voxops-inventory/known_hosts' });
      expect(
        above.map((c) => c.name),
        String(call.args[0]),
      ).toContain('sshagent');
      expect(above.map((c) => c.name)).not.toContain('input');
    }
  });

  it('the approval holds no agent: agent none, the input directive with a submitter, a timeout, decided before the input', () => {
    const approval = stage(production, 'approval');
    expect(approval.children.find((c) => c.name === 'agent')!.args).toEqual(['${none}']);
    const input = approval.children.find((c) => c.name === 'input')!;
    expect(input.children.map((c) => c.name)).toEqual(expect.arrayContaining(['message', 'ok', 'submitter']));
    expect(input.children.find((c) => c.name === 'submitter')!.args).toEqual(['voxops-approvers']);
    expect(flat(approval.children.filter((c) => c.name === 'options')).find((c) => c.name === 'timeout')!.args[0]).toEqual({
      time: 4,
      unit: 'HOURS',
    });
    const when = approval.children.find((c) => c.name === 'when')!;
    expect(when.children.find((c) => c.name === 'beforeInput')!.args).toEqual([true]);
    expect(when.children.find((c) => c.name === 'expression')!.value).toBe(true);
    expect(flat(pipeline({ ENV: 'staging' }).children).find((c) => c.name === 'expression')!.value).toBe(false);
    // the only input anywhere is this one
    expect(all.filter((c) => c.name === 'input')).toEqual([input]);
  });

  it('deploys inside lock(voxops-<env>), with the timeout inside the lock, and publishes the reports whatever happened', () => {
    const deploy = stage(production, 'deploy');
    const lock = flat(deploy.children).find((c) => c.name === 'lock')!;
    expect(lock.args[0]).toEqual({ resource: 'voxops-production' });
    const run = withAncestors([lock]).find(({ call }) => call.name === 'sh')!;
    expect(run.call.args).toEqual(['exec scripts/jenkins-voxops.sh run']);
    expect(run.above.map((c) => c.name)).toEqual(expect.arrayContaining(['lock', 'timeout', 'configFileProvider', 'sshagent']));
    expect(flat(lock.children).some((c) => c.name === 'parallel')).toBe(false);
    const always = flat(deploy.children.filter((c) => c.name === 'post')).find((c) => c.name === 'always')!;
    expect(always.children.map((c) => c.name)).toEqual(['junit', 'archiveArtifacts']);
    expect(always.children[0]!.args[0]).toMatchObject({ testResults: 'reports/**/voxops-junit.xml' });
  });

  it('FLEET_GROUPS: one parallel branch per group, failFast, each its own hosts and reports; the plan covers them all', () => {
    const p = pipeline({ ROLE: 'fleet', FLEET_GROUPS: 'fleet-1, fleet-2; fleet-3' });
    const parallel = flat([p]).find((c) => c.name === 'parallel')!;
    expect(parallel.args[0]).toEqual({ 'fleet group 1': '<closure>', 'fleet group 2': '<closure>', failFast: true });
    const envs = parallel.children.map((b) => flat(b.children).find((c) => c.name === 'withEnv')!.args[0]);
    expect(envs).toEqual([
      ['FLEET_HOSTS=fleet-1,fleet-2', 'REPORTS=reports/group-1'],
      ['FLEET_HOSTS=fleet-3', 'REPORTS=reports/group-2'],
    ]);
    const plan = withAncestors(stage(p, 'plan').children).find(
      ({ call }) => call.name === 'sh' && call.args[0] === 'exec scripts/jenkins-voxops.sh plan',
    )!;
    expect(plan.above.find((c) => c.name === 'withEnv')!.args[0]).toEqual(['FLEET_HOSTS=fleet-1,fleet-2,fleet-3']);
  });

  it('FLEET_GROUPS with another role, or with FLEET_HOSTS, stops in plan before anything runs', () => {
    for (const [params, message] of [
      [{ ROLE: 'api', FLEET_GROUPS: 'fleet-1;fleet-2' }, 'FLEET_GROUPS splits a fleet deploy: it needs ROLE=fleet'],
      [{ FLEET_HOSTS: 'fleet-1', FLEET_GROUPS: 'fleet-1;fleet-2' }, 'FLEET_GROUPS and FLEET_HOSTS both name hosts: use one of them'],
    ] as const) {
      const calls = flat([pipeline(params)]);
      expect(calls.filter((c) => c.name === 'error').map((c) => c.args[0])).toEqual([message]);
      expect(calls.filter((c) => ['checkout', 'sh', 'lock'].includes(c.name))).toEqual([]);
    }
  });

  it('the deploy timeout follows from the parameters (budget per host in the Jenkinsfile), or TIMEOUT_MINUTES', () => {
    expect(timeoutOf(production)).toEqual({ time: 130, unit: 'MINUTES' }); // 2 production fleet hosts x 60 + 10
    expect(timeoutOf(pipeline({ ENV: 'staging' })).time).toBe(70);
    expect(timeoutOf(pipeline({ FLEET_HOSTS: 'fleet-1' })).time).toBe(70);
    expect(timeoutOf(pipeline({ FLEET_GROUPS: 'fleet-1,fleet-2,fleet-3;fleet-4' })).time).toBe(190); // the largest group
    expect(timeoutOf(pipeline({ ROLE: 'api' })).time).toBe(20);
    expect(timeoutOf(pipeline({ ROLE: 'all' })).time).toBe(10 + 10 + 15 + 2 * 60 + 15 + 5);
    expect(timeoutOf(pipeline({ TIMEOUT_MINUTES: '45' })).time).toBe(45);
    const bad = flat([pipeline({ TIMEOUT_MINUTES: '2h' })]);
    expect(bad.filter((c) => c.name === 'error').map((c) => c.args[0])).toEqual([
      "TIMEOUT_MINUTES must be a whole number of minutes, not '2h'",
    ]);
    expect(bad.some((c) => c.name === 'timeout' && (c.args[0] as { unit: string }).unit === 'MINUTES' && c.children.length > 0)).toBe(
      false,
    );
  });
});
