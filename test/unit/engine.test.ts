import { describe, expect, it } from 'vitest';
import type { Step } from '../../src/exec/command.js';
import type { HistoryEntry } from '../../src/commands/state.js';
import type { Host, Inventory } from '../../src/config/inventory.js';
import type { OperationContext } from '../../src/engine/context.js';
import { runOperation } from '../../src/engine/runner.js';
import { ConfigRejectedError, HealthGateError, InterruptedError, RemoteCommandError, UnreachableError } from '../../src/errors.js';
import type { OperationEvent } from '../../src/events.js';
import type { CommandResult, Executor, HostSession } from '../../src/exec/executor.js';
import type { HostChange, HostPlan, OperationRequest, RoleDefinition, RoleDriver } from '../../src/roles/contract.js';
import { VirtualClock } from './support/clock.js';

/** A host that knows only the engine's own state: the lock file and the history file. */
class StateHost {
  lock: string | undefined;
  history: HistoryEntry[] = [];
  commands: string[] = [];
  constructor(readonly host: Host) {}
  async run(step: Step): Promise<CommandResult> {
    this.commands.push(step.name);
    const ok = (stdout = ''): CommandResult => ({ exitCode: 0, stdout, stderr: '', durationMs: 0 });
    const no: CommandResult = { exitCode: 1, stdout: '', stderr: '', durationMs: 0 };
    switch (step.name) {
      case 'read the deploy lock':
        return this.lock ? ok(this.lock) : no;
      case 'take the deploy lock':
        if (this.lock) return no;
        this.lock = step.stdin;
        return ok();
      case 'release the deploy lock': {
        const id = (JSON.parse(this.lock ?? '{}') as { id?: string }).id;
        if (!this.lock || !JSON.stringify(step.command).includes(id ?? '-')) return no;
        this.lock = undefined;
        return ok();
      }
      case 'record history':
        this.history.push(JSON.parse(step.stdin!) as HistoryEntry);
        return ok();
      case 'read history':
        return ok(this.history.map((e) => JSON.stringify(e)).join('\n'));
      default:
        return ok();
    }
  }
}

const hostOf = (name: string): Host => ({ name, address: `${name}.test`, port: 22, role: 'api' });

function setup(names = ['app-1', 'app-2'], unreachable: string[] = []) {
  const states = new Map(names.map((n) => [n, new StateHost(hostOf(n))]));
  const executor: Executor = {
    async connect(host) {
      if (unreachable.includes(host.name))
        throw new UnreachableError(`${host.name} (${host.address}:22) is unreachable: connect ECONNREFUSED`);
      const state = states.get(host.name)!;
      return { host, run: (step) => state.run(step), close: async () => {} } satisfies HostSession;
    },
  };
  const inventory = {
    file: '/inv.yaml',
    environment: 'test',
    environments: ['test'],
    lock: { leaseSeconds: 120 },
    roles: {},
    hosts: names.map(hostOf),
  } as unknown as Inventory;
  const events: OperationEvent[] = [];
  const controller = new AbortController();
  const ctx: OperationContext = {
    inventory,
    executor,
    reporter: { emit: (e) => events.push(e), close: async () => {} },
    signal: controller.signal,
    dryRun: false,
    env: { USER: 'tester' },
    clock: new VirtualClock(),
  };
  return { ctx, states, events, controller, summary: () => events.filter((e) => e.type === 'summary').at(-1)?.summary };
}

type Behaviour = (host: string) => HostChange;

function definition(
  behaviour: Behaviour,
  overrides: Partial<RoleDriver<{ tag: string }, HostPlan>> = {},
  readTag = 'v1.5.0',
): RoleDefinition {
  const driver: RoleDriver<{ tag: string }, HostPlan> = {
    role: 'api',
    actions: ['deploy', 'rollback'],
    inspect: async () => ({ tag: 'v1.4.2' }),
    judge: (all, request) => ({
      plans: all.map(({ host, facts }) => ({ host, from: facts.tag, to: request.tag! })),
      problems: [],
      warnings: [],
      notes: [],
    }),
    describe: (plan) => [{ note: `would change ${plan.host.name}` }],
    change: (host) => behaviour(host.host.name),
    ...overrides,
  };
  return {
    role: 'api',
    drivers: [driver],
    observer: { readTag: async () => readTag, status: async () => ({ tag: null, problems: [] }), logUnit: () => 'x' },
  };
}

const deploy: OperationRequest = {
  action: 'deploy',
  role: 'api',
  tag: 'v1.5.0',
  source: 'auto',
  force: false,
  parallel: 1,
  batch: 1,
  allowUnhealthy: false,
};
const succeed: Behaviour = () => ({ apply: async () => ({ message: 'done' }) });

describe('the engine: one operation runner', () => {
  it('locks every host, changes them in order, writes one history line per host, releases the locks', async () => {
    const { ctx, states, events, summary } = setup();
    const order: string[] = [];
    await runOperation(
      ctx,
      deploy,
      definition((host) => ({ apply: async () => (order.push(host), { message: 'ok' }) })),
    );
    expect(order).toEqual(['app-1', 'app-2']);
    for (const state of states.values()) {
      expect(state.lock).toBeUndefined();
      expect(state.history).toEqual([
        expect.objectContaining({ action: 'deploy', from: 'v1.4.2', to: 'v1.5.0', outcome: 'success', user: 'tester' }),
      ]);
      expect(state.commands.indexOf('take the deploy lock')).toBeLessThan(state.commands.indexOf('record history'));
    }
    expect(events[0]).toMatchObject({ type: 'start', hosts: ['app-1', 'app-2'] });
    expect(events.at(-1)).toMatchObject({ type: 'summary' });
    expect(summary()).toMatchObject({ exitCode: 0, hosts: [{ outcome: 'success' }, { outcome: 'success' }] });
    expect(summary()!.error).toBeUndefined();
  });

  it('stops at the first failure: the lock is released everywhere, later hosts never start, the summary carries the error', async () => {
    const { ctx, states, summary } = setup();
    const failing: Behaviour = (host) => ({
      apply: async () => {
        throw new RemoteCommandError({
          host,
          step: 'install',
          command: 'sh install.sh',
          exitCode: 2,
          stdout: '',
          stderr: 'no space left on device',
        });
      },
    });
    await expect(runOperation(ctx, deploy, definition(failing))).rejects.toThrow('app-1: install failed (exit 2): no space left on device');
    expect([...states.values()].map((s) => s.lock)).toEqual([undefined, undefined]);
    expect(states.get('app-1')!.history).toEqual([
      expect.objectContaining({ outcome: 'failed', detail: expect.stringContaining('no space left') }),
    ]);
    expect(states.get('app-2')!.history).toEqual([]);
    expect(summary()).toMatchObject({
      exitCode: 5,
      error: { message: expect.stringContaining('no space left') },
      hosts: [{ outcome: 'failed' }, { outcome: 'not-started' }],
    });
  });

  it('lets the driver undo a failed gate: rolled back, the message says so, the next command is the driver’s', async () => {
    const { ctx, states, summary } = setup(['app-1']);
    const gateFails: Behaviour = (host) => ({
      apply: async () => {
        throw new HealthGateError(`${host}: api did not come up on v1.5.0`, { host });
      },
      undo: async () => ({ to: 'v1.4.2', next: 'voxops logs api --host app-1' }),
    });
    const run = runOperation(ctx, deploy, definition(gateFails));
    await expect(run).rejects.toThrow('app-1: api did not come up on v1.5.0; app-1 was rolled back to v1.4.2');
    await expect(run).rejects.toMatchObject({ exitCode: 4, next: 'voxops logs api --host app-1' });
    expect(states.get('app-1')!.history[0]).toMatchObject({ outcome: 'rolled-back' });
    expect(summary()).toMatchObject({ exitCode: 4, hosts: [{ outcome: 'rolled-back' }] });
  });

  it('an undo that fails too is exit 8: the host needs a human', async () => {
    const { ctx, states } = setup(['app-1']);
    const worst: Behaviour = (host) => ({
      apply: async () => {
        throw new HealthGateError(`${host}: gate`, { host });
      },
      undo: async () => {
        throw new Error('git checkout failed');
      },
    });
    await expect(runOperation(ctx, deploy, definition(worst))).rejects.toMatchObject({
      exitCode: 8,
      next: 'check the host now: voxops status --host app-1',
    });
    expect(states.get('app-1')!.lock).toBeUndefined();
  });

  it('stops between hosts on Ctrl-C or SIGTERM, releases every lock, and exits as that signal would (130, 143)', async () => {
    for (const [signal, code] of [
      ['SIGINT', 130],
      ['SIGTERM', 143],
    ] as const) {
      const { ctx, states, controller } = setup();
      const run = runOperation(
        ctx,
        deploy,
        definition((host) => ({ apply: async () => (host === 'app-1' && controller.abort(signal), {}) })),
      );
      await expect(run).rejects.toMatchObject({
        exitCode: code,
        message: expect.stringMatching(/interrupted before app-2 started; every host is serving, some may run v1\.5\.0 and some v1\.4\.2/),
      });
      await expect(run).rejects.toMatchObject({ next: 'finish: voxops deploy api --tag v1.5.0, or undo: voxops rollback api --to v1.4.2' });
      expect([...states.values()].map((s) => s.lock)).toEqual([undefined, undefined]);
      expect(states.get('app-2')!.history).toEqual([]);
    }
  });

  it('a dry run takes no lock, writes no history, changes nothing, and prints each plan through one printer', async () => {
    const { ctx, states, events, summary } = setup();
    let rehearsed = 0;
    let applied = 0;
    const def = definition(() => ({ apply: async () => (applied++, {}) }), { rehearse: async () => void rehearsed++ });
    await runOperation({ ...ctx, dryRun: true }, deploy, def);
    expect(applied).toBe(0);
    expect(rehearsed).toBe(2);
    for (const state of states.values()) expect(state.commands).toEqual(['read the deploy lock', 'read progress']);
    const printed = events.filter((e) => e.type === 'command').map((e) => (e as { step: string }).step);
    expect(printed).toEqual([
      'take the deploy lock',
      'record history',
      'release the deploy lock',
      'take the deploy lock',
      'record history',
      'release the deploy lock',
    ]);
    expect(events.some((e) => e.type === 'info' && e.message === 'would change app-2')).toBe(true);
    expect(summary()).toMatchObject({ exitCode: 0, hosts: [{ outcome: 'planned' }, { outcome: 'planned' }] });
  });

  it('refuses a held lock before anything changes (exit 3), and only warns about it in a dry run', async () => {
    const { ctx, states, events } = setup();
    states.get('app-2')!.lock = JSON.stringify({
      id: 'x',
      user: 'alice',
      machine: 'jenkins-7',
      pid: 4242,
      startedAt: '2026-12-03T08:00:00Z',
      action: 'deploy api',
    });
    let applied = 0;
    await expect(
      runOperation(
        ctx,
        deploy,
        definition(() => ({ apply: async () => (applied++, {}) })),
      ),
    ).rejects.toMatchObject({ exitCode: 3, message: expect.stringContaining('alice@jenkins-7') });
    expect(applied).toBe(0);
    expect(states.get('app-1')!.lock).toBeUndefined();
    await runOperation({ ...ctx, dryRun: true }, deploy, definition(succeed));
    expect(events.some((e) => e.type === 'warning' && e.message === 'lock is held by alice@jenkins-7')).toBe(true);
  });

  it('refuses on any judged problem (exit 7, every problem listed), or with the judge’s own refusal', async () => {
    const { ctx, states } = setup();
    const problems = definition(succeed, {
      judge: () => ({ plans: [], problems: ['app-1: disk', 'app-2: tag'], warnings: [], notes: [], next: 'look' }),
    });
    await expect(runOperation(ctx, deploy, problems)).rejects.toMatchObject({
      exitCode: 7,
      problems: ['app-1: disk', 'app-2: tag'],
      next: 'look',
    });
    const refusal = definition(succeed, {
      judge: () => ({ plans: [], problems: [], warnings: [], notes: [], refusal: new ConfigRejectedError('nginx -t fails') }),
    });
    await expect(runOperation(ctx, deploy, refusal)).rejects.toMatchObject({ exitCode: 11 });
    for (const state of states.values()) expect(state.commands).not.toContain('take the deploy lock');
  });

  it('neither locks nor changes a host whose plan is a no-op', async () => {
    const { ctx, states, summary } = setup(['app-1']);
    const noop = definition(succeed, {
      judge: (all) => ({
        plans: all.map(({ host }) => ({ host, from: 'v1', to: 'v1', noop: 'already there' })),
        problems: [],
        warnings: [],
        notes: [],
      }),
    });
    await runOperation(ctx, deploy, noop);
    expect(states.get('app-1')!.commands).toEqual(['read the deploy lock', 'read progress']);
    expect(summary()).toMatchObject({ hosts: [{ outcome: 'success', message: 'already there' }] });
  });

  it('records every attempt, a rejected config too, but no line for a change that had nothing to do', async () => {
    const { ctx, states } = setup(['app-1', 'app-2']);
    const def = definition((host) => ({
      apply: async () => {
        if (host === 'app-2') throw new ConfigRejectedError('haproxy -c rejected the rendered config');
        return { history: false };
      },
    }));
    await expect(runOperation(ctx, deploy, def)).rejects.toMatchObject({ exitCode: 11 });
    expect(states.get('app-1')!.history).toEqual([]);
    expect(states.get('app-2')!.history).toEqual([
      expect.objectContaining({ outcome: 'failed', detail: 'haproxy -c rejected the rendered config' }),
    ]);
  });

  it('a bare rollback goes to the last-known-good every host agrees on, and refuses when they disagree', async () => {
    const { ctx, states } = setup(['app-1', 'app-2']);
    const entry = (from: string): HistoryEntry => ({
      at: 'now',
      host: 'h',
      role: 'api',
      action: 'deploy',
      from,
      to: 'v1.5.0',
      outcome: 'success',
      durationMs: 1,
      user: 'u',
    });
    states.get('app-1')!.history.push(entry('v1.4.2'));
    states.get('app-2')!.history.push(entry('v1.4.2'));
    let target = '';
    const def = definition(succeed, {
      judge: (all, request) => ((target = request.tag!), { plans: [], problems: [], warnings: [], notes: [] }),
    });
    const { tag: _unset, ...lkg } = deploy;
    await runOperation(ctx, { ...lkg, action: 'rollback' }, def);
    expect(target).toBe('v1.4.2');
    states.get('app-2')!.history.push(entry('v1.3.0'));
    const { tag: _none, ...bare } = deploy;
    await expect(runOperation(ctx, { ...bare, action: 'rollback' }, def)).rejects.toMatchObject({
      exitCode: 7,
      message: expect.stringContaining('disagree on last-known-good'),
    });
    const fresh = setup(['app-1']);
    await expect(runOperation(fresh.ctx, { ...bare, action: 'rollback' }, def)).rejects.toMatchObject({ name: 'NoLastKnownGoodError' });
  });

  it('an unreachable host stops the operation before any change, and the summary says why', async () => {
    const { ctx, states, summary } = setup(['app-1', 'app-2'], ['app-2']);
    await expect(runOperation(ctx, deploy, definition(succeed))).rejects.toMatchObject({ exitCode: 6 });
    expect(states.get('app-1')!.commands).toEqual([]);
    expect(summary()).toMatchObject({ exitCode: 6, error: { message: expect.stringContaining('app-2 (app-2.test:22) is unreachable') } });
  });

  it('takes every lock or none: a host that refuses its lock releases the ones already taken', async () => {
    const { ctx, states } = setup();
    const def = definition(succeed, {
      inspect: async (host) => {
        // somebody else takes app-2's lock between preflight and the lock
        if (host.host.name === 'app-2')
          states.get('app-2')!.lock = JSON.stringify({
            id: 'other',
            user: 'bob',
            machine: 'm',
            pid: 1,
            startedAt: 'then',
            action: 'deploy',
          });
        return { tag: 'v1.4.2' };
      },
    });
    states.get('app-2')!.lock = undefined;
    await expect(runOperation(ctx, deploy, def)).rejects.toMatchObject({ exitCode: 3 });
    expect(states.get('app-1')!.lock).toBeUndefined();
  });

  it('takes every lock or none: a host lost while its lock is taken releases the ones already taken', async () => {
    const { ctx, states } = setup();
    const app2 = states.get('app-2')!;
    const run = app2.run.bind(app2);
    app2.run = async (step) => {
      if (step.name === 'take the deploy lock') throw new UnreachableError('app-2: SSH connection lost (read ECONNRESET)');
      return run(step);
    };
    await expect(runOperation(ctx, deploy, definition(succeed))).rejects.toMatchObject({ exitCode: 6 });
    expect(states.get('app-1')!.lock).toBeUndefined();
  });

  it('with hosts in parallel, ends with the failure that leaves the fleet worst off, not the first', async () => {
    const { ctx } = setup(['app-1', 'app-2', 'app-3']);
    const failing: Behaviour = (host) => ({
      apply: async () => {
        if (host === 'app-1') throw new InterruptedError('interrupted: app-1 stopped');
        if (host === 'app-2')
          throw new RemoteCommandError({ host, step: 'install', command: 'npm ci', exitCode: 1, stdout: '', stderr: 'npm ERR!' });
        throw new HealthGateError(`${host}: gate failed`, { host });
      },
    });
    await expect(runOperation(ctx, { ...deploy, parallel: 3 }, definition(failing))).rejects.toMatchObject({ exitCode: 4 });
  });
});

describe('the engine: what else can happen', () => {
  it('a bug in a driver is an internal error (exit 1): the summary says so and what to do', async () => {
    const { ctx, states, summary } = setup(['app-1']);
    const buggy: Behaviour = () => ({
      apply: async () => {
        throw new TypeError("Cannot read properties of undefined (reading 'pid')");
      },
    });
    await expect(runOperation(ctx, deploy, definition(buggy))).rejects.toThrow(TypeError);
    expect(summary()).toMatchObject({
      exitCode: 1,
      error: {
        message: "internal error: Cannot read properties of undefined (reading 'pid')",
        next: 're-run with --verbose and report it',
      },
      hosts: [{ outcome: 'failed' }],
    });
    expect(states.get('app-1')!.lock).toBeUndefined();
  });

  it('several unreachable hosts are named in one error; a connect that fails oddly is still "unreachable" (exit 6)', async () => {
    const { ctx, summary } = setup(['app-1', 'app-2', 'app-3'], ['app-1']);
    const flaky: OperationContext = {
      ...ctx,
      executor: {
        connect: async (host) => {
          if (host.name === 'app-3') throw new Error('getaddrinfo ENOTFOUND app-3.test');
          return ctx.executor.connect(host);
        },
      },
    };
    await expect(runOperation(flaky, deploy, definition(succeed))).rejects.toMatchObject({
      exitCode: 6,
      message: '2 hosts unreachable: app-1 (app-1.test:22) is unreachable: connect ECONNREFUSED; app-3: getaddrinfo ENOTFOUND app-3.test',
    });
    expect(summary()).toMatchObject({ exitCode: 6 });
  });

  it('refuses an action the role has no driver for, and a role with no hosts in the environment', async () => {
    const { ctx } = setup(['app-1']);
    await expect(runOperation(ctx, { ...deploy, action: 'scale' }, definition(succeed))).rejects.toMatchObject({
      exitCode: 2,
      message: 'api has no scale',
      next: 'voxops --help',
    });
    await expect(runOperation(ctx, { ...deploy, role: 'dialler' }, definition(succeed))).rejects.toMatchObject({
      exitCode: 2,
      message: 'environment test has no dialler hosts',
      next: 'list them under environments.test.hosts.dialler, then: voxops config check',
    });
  });

  it('a judged problem without a hint of its own gets the default one', async () => {
    const { ctx } = setup(['app-1']);
    const problems = definition(succeed, { judge: () => ({ plans: [], problems: ['app-1: disk'], warnings: [], notes: [] }) });
    await expect(runOperation(ctx, deploy, problems)).rejects.toMatchObject({
      exitCode: 7,
      next: 'fix the problems above (voxops status api shows the hosts), then re-run',
    });
  });

  it('a dry run does not rehearse a host with nothing to do, and prints a host without a tag as such', async () => {
    const { ctx, events } = setup(['app-1', 'app-2']);
    const rehearsed: string[] = [];
    const def = definition(succeed, {
      judge: (all) => ({
        plans: all.map(({ host }) => ({
          host,
          from: host.name === 'app-1' ? 'v1.5.0' : null,
          to: 'v1.5.0',
          ...(host.name === 'app-1' ? { noop: 'already on v1.5.0' } : {}),
        })),
        problems: [],
        warnings: [],
        notes: [],
      }),
      rehearse: async (host) => void rehearsed.push(host.host.name),
    });
    await runOperation({ ...ctx, dryRun: true }, deploy, def);
    expect(rehearsed).toEqual(['app-2']);
    const messages = events.filter((e) => e.type === 'info').map((e) => e.message);
    expect(messages).toEqual(
      expect.arrayContaining(['plan: v1.5.0 -> v1.5.0', 'nothing to do: already on v1.5.0', 'plan: (no tag) -> v1.5.0']),
    );
  });

  it('records who and which build: the Jenkins user and BUILD_URL go into the lock and the history', async () => {
    const { ctx, states } = setup(['app-1']);
    let holder = '';
    const def = definition(() => ({ apply: async () => ((holder = states.get('app-1')!.lock!), {}) }), {
      judge: (all) => ({ plans: all.map(({ host }) => ({ host, from: null, to: 'v1.5.0' })), problems: [], warnings: [], notes: [] }),
    });
    await runOperation(
      { ...ctx, env: { BUILD_USER_ID: 'jenkins-bob', SUDO_USER: 'root', USER: 'jenkins', BUILD_URL: 'https://ci/job/7/' } },
      deploy,
      def,
    );
    expect(JSON.parse(holder)).toMatchObject({ user: 'jenkins-bob', buildUrl: 'https://ci/job/7/' });
    expect(states.get('app-1')!.history).toEqual([
      expect.objectContaining({ from: null, user: 'jenkins-bob', buildUrl: 'https://ci/job/7/' }),
    ]);
    await runOperation({ ...ctx, env: { SUDO_USER: 'alice', USER: 'root' } }, deploy, def);
    expect(states.get('app-1')!.history[1]).toMatchObject({ user: 'alice' });
  });

  it('an undo that fails after a failure whose message does not name the host names it once, and a host without a tag goes back to "the previous release"', async () => {
    const { ctx } = setup(['app-1']);
    const def = definition(
      () => ({
        apply: async () => {
          throw new HealthGateError('gate timed out', { host: 'app-1' });
        },
        undo: async () => {
          throw new Error('checkout failed');
        },
      }),
      { judge: (all) => ({ plans: all.map(({ host }) => ({ host, from: null, to: 'v1.5.0' })), problems: [], warnings: [], notes: [] }) },
    );
    await expect(runOperation(ctx, deploy, def)).rejects.toMatchObject({
      exitCode: 8,
      message: 'app-1: gate timed out; then going back to the previous release failed too: checkout failed',
    });
  });

  it('a rollback whose undo gives no hint keeps the gate error without one', async () => {
    const { ctx } = setup(['app-1']);
    const def = definition(() => ({
      apply: async () => {
        throw new HealthGateError('app-1: gate', { host: 'app-1' });
      },
      undo: async () => ({ to: 'v1.4.2' }),
    }));
    const error = await runOperation(ctx, deploy, def).catch((e: unknown) => e);
    expect(error).toMatchObject({ exitCode: 4, message: 'app-1: gate; app-1 was rolled back to v1.4.2' });
    expect((error as HealthGateError).next).toBeUndefined();
  });

  it('an interruption says how to finish: restart again, or look at the status when there is no tag; SIGTERM keeps its exit code', async () => {
    for (const [request, next] of [
      [{ ...deploy, action: 'restart' as const, tag: undefined }, 'finish: voxops restart api'],
      [{ ...deploy, tag: undefined }, 'voxops status api'],
    ] as const) {
      const { ctx, controller } = setup(['app-1', 'app-2']);
      const { tag: _t, ...untagged } = request;
      const def = definition((host) => ({ apply: async () => (host === 'app-1' && controller.abort('SIGINT'), {}) }), {
        actions: ['deploy', 'restart'],
      });
      await expect(runOperation(ctx, untagged, def)).rejects.toMatchObject({ exitCode: 130, next });
    }
    // a driver's own interruption with its own hint: SIGTERM's exit code, the driver's hint
    const { ctx, controller } = setup(['app-1']);
    const def = definition(() => ({
      apply: async () => {
        controller.abort('SIGTERM');
        throw new InterruptedError('interrupted while app-1 drained', { next: 'voxops deploy api' });
      },
    }));
    await expect(runOperation(ctx, deploy, def)).rejects.toMatchObject({
      exitCode: 143,
      next: 'voxops deploy api',
      message: 'interrupted while app-1 drained',
    });
  });

  it('--parallel auto changes every host at once (up to its cap)', async () => {
    const { ctx } = setup(['app-1', 'app-2', 'app-3']);
    let running = 0;
    let most = 0;
    const def = definition(() => ({
      apply: async () => {
        running += 1;
        most = Math.max(most, running);
        await new Promise((resolve) => setImmediate(resolve));
        running -= 1;
        return {};
      },
    }));
    await runOperation(ctx, { ...deploy, parallel: 'auto' }, def);
    expect(most).toBe(3);
    most = 0;
    await runOperation(ctx, { ...deploy, parallel: 1 }, def);
    expect(most).toBe(1);
  });

  it('an unknown role is a configuration error', async () => {
    const { ctx } = setup(['app-1']);
    await expect(runOperation(ctx, { ...deploy, role: 'database' as never })).rejects.toMatchObject({
      exitCode: 2,
      message: 'unknown role database',
    });
  });
});
