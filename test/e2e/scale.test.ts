import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCalls, type CallStats } from '../lab/calls.js';
import { labExec } from '../lab/lab.js';
import { inventoryFile, lastHistory, voxops, type VoxopsRun } from './helpers.js';

/**
 * `voxops scale fleet` on fleet2 only (other suites and people use the other hosts). The suite
 * leaves fleet2 as it found it: 4 workers, the same nginx file and the same env file.
 */
const host = 'fleet2';
const target = 'ws://10.231.0.12/ws/call';
const conf = '/etc/nginx/sites-enabled/voxcore-fleet.conf';
const envFile = '/opt/voxcore/.env';
const secret = 'lab-secret-do-not-print';
const envBackup = '/var/lib/voxops/e2e-scale-env.backup';
const broken = '/etc/nginx/conf.d/zz-broken.conf';

async function sh(script: string): Promise<string> {
  const r = await labExec(host, script, { timeoutMs: 120_000 });
  expect(r.code, `${script}\n${r.stderr}`).toBe(0);
  return r.stdout;
}

/** The env file is compared by hashes only: it holds a secret, so the test never reads it either. */
async function envState(): Promise<{ line: string; restHash: string; mode: string }> {
  const [line, restHash, mode] = (
    await sh(
      `grep '^VOXCORE_WORKERS=' ${envFile}; grep -v '^VOXCORE_WORKERS=' ${envFile} | sha256sum | cut -d' ' -f1; stat -c '%a %U %G' ${envFile}`,
    )
  )
    .trim()
    .split('\n');
  return { line: line!, restHash: restHash!, mode: mode! };
}

async function enabledUnits(): Promise<string[]> {
  const out = await labExec(host, `systemctl is-enabled ${Array.from({ length: 8 }, (_, k) => `voxcore@${k + 1}`).join(' ')}`);
  return out.stdout.trim().split('\n');
}

async function fleetHealth(): Promise<{ expected_workers: number; capacity: number; healthy: number }> {
  return JSON.parse(await sh('curl -s --max-time 5 http://127.0.0.1/health/fleet')) as {
    expected_workers: number;
    capacity: number;
    healthy: number;
  };
}

async function underLoad(
  concurrency: number,
  run: () => Promise<VoxopsRun>,
): Promise<{ run: VoxopsRun; calls: CallStats; seconds: number }> {
  const controller = new AbortController();
  const load = runCalls({
    targets: [target],
    capacity: concurrency,
    load: 1,
    durationSeconds: 400,
    holdSeconds: [1, 4],
    signal: controller.signal,
  });
  await new Promise((r) => setTimeout(r, 3_000));
  const started = Date.now();
  try {
    const result = await run();
    return { run: result, seconds: (Date.now() - started) / 1000, calls: await stopLoad() };
  } catch (error) {
    await stopLoad();
    throw error;
  }
  function stopLoad(): Promise<CallStats> {
    controller.abort();
    return load;
  }
}

function describeRun(what: string, r: { run: VoxopsRun; calls: CallStats; seconds: number }): string {
  const c = r.calls;
  return `${what}: exit ${r.run.code} in ${r.seconds.toFixed(1)}s; calls started ${c.started}, completed ${c.completed}, dropped ${c.dropped}, rejected ${c.rejected}, unavailable ${c.unavailable}, failed ${c.failed}`;
}

const scale = (workers: number, ...extra: string[]) =>
  voxops(['scale', 'fleet', '--host', host, '--workers', String(workers), '-i', inventoryFile, '--json', ...extra]);

let originalConf = '';
let originalEnv: Awaited<ReturnType<typeof envState>>;

/** Put fleet2 back to how the suite found it, whatever a failed test left behind. */
async function restoreFleet2(): Promise<void> {
  await labExec(host, `rm -f ${broken} /etc/nginx/conf.d/zz-voxops-e2e-clash.conf /var/lib/voxops/lock.json`);
  const conf_ = await labExec(host, ['cat', conf]);
  const env = await envState();
  const units = await enabledUnits();
  const changed =
    conf_.stdout !== originalConf ||
    env.line !== originalEnv.line ||
    env.restHash !== originalEnv.restHash ||
    units.slice(4).some((u) => u === 'enabled');
  if (!changed) return;
  await labExec(host, `cat > ${conf}`, { input: originalConf });
  await sh(
    `cp -p ${envBackup} ${envFile} && systemctl disable --now voxcore@5 voxcore@6 voxcore@7 voxcore@8 && nginx -t -q && systemctl reload nginx && systemctl restart voxcore@1 voxcore@2 voxcore@3 voxcore@4`,
  );
}

describe('voxops scale fleet (fleet2, in the lab)', () => {
  beforeAll(async () => {
    originalConf = (await labExec(host, ['cat', conf])).stdout;
    originalEnv = await envState();
    expect(originalEnv.line).toBe('VOXCORE_WORKERS=4');
    expect(await enabledUnits()).toEqual(['enabled', 'enabled', 'enabled', 'enabled', 'disabled', 'disabled', 'disabled', 'disabled']);
    await sh(`mkdir -p /var/lib/voxops && cp -p ${envFile} ${envBackup}`);
  });

  afterAll(async () => {
    await restoreFleet2();
    await labExec(host, ['rm', '-f', envBackup]);
  });

  it('--dry-run prints every command and changes nothing', async () => {
    const run = await scale(6, '--dry-run');
    expect(run.code, run.stderr).toBe(0);
    const commands = run.events.filter((e) => e.type === 'command').map((e) => String(e.command));
    expect(commands).toContain('systemctl enable --now -- voxcore@6');
    expect(commands).toContain('systemctl reload nginx');
    expect(commands).toContain('systemctl restart -- voxcore@4');
    expect((await labExec(host, ['cat', conf])).stdout).toBe(originalConf);
    expect(await envState()).toEqual(originalEnv);
    expect(await enabledUnits()).toEqual(['enabled', 'enabled', 'enabled', 'enabled', 'disabled', 'disabled', 'disabled', 'disabled']);
  });

  it('grows 4 -> 6 under call load with no call dropped and no secret printed', async () => {
    const grow = await underLoad(3, () => scale(6, '--verbose'));
    console.log(describeRun('scale 4 -> 6', grow));
    expect(grow.run.code, grow.run.stderr).toBe(0);
    expect(grow.calls.completed).toBeGreaterThan(5);
    expect(grow.calls.dropped, grow.calls.errors.join('\n')).toBe(0);
    expect(grow.run.stdout + grow.run.stderr).not.toContain(secret);
    // voxops never edits the inventory: it tells the operator to
    expect(grow.run.events).toContainEqual(
      expect.objectContaining({ type: 'warning', message: expect.stringMatching(/set workers: 6 for fleet2 in .*voxops\.yaml/) }),
    );

    expect(await fleetHealth()).toMatchObject({ expected_workers: 6, capacity: 6, healthy: 6 });
    expect(await enabledUnits()).toEqual(['enabled', 'enabled', 'enabled', 'enabled', 'enabled', 'enabled', 'disabled', 'disabled']);
    const env = await envState();
    expect(env).toEqual({ ...originalEnv, line: 'VOXCORE_WORKERS=6' });
    expect(
      await sh(
        `grep -c 'server unix:/tmp/voxcore_[0-9]*.sock max_conns=1 fail_timeout=10;' ${conf}; grep -c 'proxy_next_upstream_tries 6;' ${conf}`,
      ),
    ).toBe('6\n3\n');
    expect(await lastHistory(host)).toMatchObject({ action: 'scale', outcome: 'success', detail: 'workers 4 -> 6' });
  });

  it('shrinks 6 -> 3 under call load with no call dropped', async () => {
    const shrink = await underLoad(2, () => scale(3));
    console.log(describeRun('scale 6 -> 3', shrink));
    const idle = shrink.run.events
      .filter((e) => e.type === 'worker' && e.phase === 'idle' && Number(e.worker) > 3)
      .map((e) => `worker ${String(e.worker)} ${String(e.message)}`);
    console.log(`removed workers: ${idle.join('; ') || '(none waited)'}`);
    expect(shrink.run.code, shrink.run.stderr).toBe(0);
    expect(shrink.calls.dropped, shrink.calls.errors.join('\n')).toBe(0);
    expect(await fleetHealth()).toMatchObject({ expected_workers: 3, capacity: 3, healthy: 3 });
    expect(await enabledUnits()).toEqual(['enabled', 'enabled', 'enabled', 'disabled', 'disabled', 'disabled', 'disabled', 'disabled']);
    expect(await sh('systemctl is-active voxcore@4 voxcore@5 voxcore@6 || true')).toBe('inactive\ninactive\ninactive\n');
    expect(await envState()).toEqual({ ...originalEnv, line: 'VOXCORE_WORKERS=3' });
  });

  it('scales back to 4: the nginx file and the env file are byte for byte what they were', async () => {
    const back = await underLoad(2, () => scale(4));
    console.log(describeRun('scale 3 -> 4', back));
    expect(back.run.code, back.run.stderr).toBe(0);
    expect(back.calls.dropped, back.calls.errors.join('\n')).toBe(0);
    expect((await labExec(host, ['cat', conf])).stdout).toBe(originalConf);
    expect(await envState()).toEqual(originalEnv);
    expect(await sh(`cmp ${envFile} ${envBackup} && echo same`)).toBe('same\n');
    expect(await fleetHealth()).toMatchObject({ expected_workers: 4, capacity: 4, healthy: 4 });

    const again = await scale(4);
    expect(again.code, again.stderr).toBe(0);
    expect(again.events).toContainEqual(expect.objectContaining({ type: 'info', message: 'fleet2 already runs 4 workers; nothing to do' }));
  });

  it("refuses with exit 11 and nginx's own message when nginx rejects the configuration; nothing changes", async () => {
    try {
      await sh(`printf 'this_is_broken;\\n' > ${broken}`);
      const run = await scale(5);
      expect(run.code, run.stderr).toBe(11);
      expect(run.stderr).toMatch(/\[emerg\] \d+#\d+: unknown directive "this_is_broken" in \/etc\/nginx\/conf\.d\/zz-broken\.conf:1/);
      expect(run.stderr).toMatch(/nothing was changed/);
    } finally {
      await labExec(host, ['rm', '-f', broken]);
    }
    expect((await labExec(host, ['cat', conf])).stdout).toBe(originalConf);
    expect(await envState()).toEqual(originalEnv);
    expect(await sh('systemctl is-active voxcore@5 || true')).toBe('inactive\n');
    expect(await sh('nginx -t -q && echo ok')).toBe('ok\n');
  });

  it('a rendered upstream that nginx -t rejects is never loaded: the file is restored byte for byte, exit 11, no unit started', async () => {
    // Without a zone in the file voxops adds `zone voxcore_workers 64k;`, which clashes with a zone
    // of that name and another size declared elsewhere: the current config passes, the new one fails.
    const clash = '/etc/nginx/conf.d/zz-voxops-e2e-clash.conf';
    const zoneless = originalConf.replace(/^\s*zone voxcore_workers 64k;\n/m, '');
    expect(zoneless).not.toBe(originalConf);
    try {
      await labExec(host, `cat > ${conf}`, { input: zoneless });
      await sh(
        `printf 'upstream voxops_e2e_clash {\\n    zone voxcore_workers 32k;\\n    server unix:/tmp/voxops-e2e-none.sock;\\n}\\n' > ${clash} && nginx -t -q`,
      );
      const before = await sh(`sha256sum ${conf}; stat -c '%a %U %G' ${conf}`);
      const run = await scale(5);
      expect(run.code, run.stderr).toBe(11);
      expect(run.stderr).toMatch(/nginx -t rejected the 5-worker upstream: .*\[emerg\] .*shared memory zone "voxcore_workers" conflicts/);
      expect(run.stderr).toMatch(/is back as it was/);
      expect(await sh(`sha256sum ${conf}; stat -c '%a %U %G' ${conf}`)).toBe(before);
      expect(await sh('ls /var/lib/voxops/scale-nginx.conf.* 2>/dev/null | wc -l')).toBe('0\n');
      expect(await envState()).toEqual(originalEnv);
      expect(await sh('systemctl is-active voxcore@5 || true; systemctl is-enabled voxcore@5 || true')).toBe('inactive\ndisabled\n');
      expect(await lastHistory(host)).toMatchObject({ action: 'scale', outcome: 'failed' });
    } finally {
      await labExec(host, ['rm', '-f', clash]);
      await labExec(host, `cat > ${conf}`, { input: originalConf });
    }
    expect((await labExec(host, ['cat', conf])).stdout).toBe(originalConf);
    expect(await sh('nginx -t -q && echo ok')).toBe('ok\n');
  });
});
