// The fault matrix: each fault an operator meets, and the end state it must leave: the fleet serving a
// known tag at full capacity, no lock left (or one that expires by itself), one error line that names
// the next command, and a distinct exit code.
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { readLabFile, runCalls } from '../lab/calls.js';
import { labExec, labFault, labRefreshKnownHosts } from '../lab/lab.js';
import { currentTagOf, fleetHosts, inventoryFile, lastHistory, resetFleetHost, voxops, workerHealth } from './helpers.js';

const [host, other] = fleetHosts() as [string, string];
const lease = 15;

/** The lab inventory with a short lease and gate, beside it (its relative paths stay right). */
const faultInventory = resolve('.lab/voxops-faults.yaml');
function writeFaultInventory(): void {
  const doc = parse(readFileSync(inventoryFile, 'utf8')) as Record<string, any>;
  doc.lock = { leaseSeconds: lease };
  doc.roles.fleet.health = { ...doc.roles.fleet.health, gateTimeoutSeconds: 3 };
  writeFileSync(faultInventory, stringify(doc));
}

const deploy = (tag: string, ...extra: string[]) => ['deploy', 'fleet', '--tag', tag, '--hosts', host, '-i', faultInventory, ...extra];

async function expectServing(h: string, tag: string): Promise<void> {
  const workers = await workerHealth(h);
  for (const w of workers) expect(w, `${h} worker ${w.index}`).toMatchObject({ httpStatus: 200, status: 'ok', version: tag });
  expect((await labExec(h, 'ls /tmp/voxcore_*.sock.draining 2>/dev/null | wc -l')).stdout.trim(), `${h}: sockets left moved aside`).toBe(
    '0',
  );
}

/** The reset restarts every worker at once, so nginx may shut them out for its fail_timeout: wait for it to pass one call again. */
async function nginxServing(h: string): Promise<void> {
  const wait = await labExec(
    h,
    'for i in $(seq 1 150); do [ "$(curl -s -o /dev/null -w %{http_code} --max-time 1 http://127.0.0.1/health/fleet)" = 200 ] && exit 0; sleep 0.1; done; exit 1',
    { timeoutMs: 30_000 },
  );
  expect(wait.code, `${h}: nginx did not pass /health/fleet to a worker within 15 s`).toBe(0);
}

const lockOf = async (h: string) => (await labExec(h, ['cat', '/var/lib/voxops/lock.json'])).stdout.trim();

describe('faults in the lab', () => {
  beforeEach(async () => {
    // whatever an earlier case left: the link down, the disk full
    await labFault({ kind: 'net-up', host });
    await labFault({ kind: 'free-disk', host });
    writeFaultInventory();
    await Promise.all([resetFleetHost(host, 'v1.4.2'), resetFleetHost(other, 'v1.4.2')]);
    await labExec(host, 'rm -f /var/lib/voxops/progress.json');
  });
  afterAll(async () => {
    await labFault({ kind: 'net-up', host }).catch(() => undefined);
    await labFault({ kind: 'free-disk', host }).catch(() => undefined);
  });

  it('a release that boots slower than the gate is rolled back (exit 4); one within the gate passes', async () => {
    const slow = await voxops(deploy('v1.5.1-slowboot'));
    expect(slow.code, slow.stderr).toBe(4);
    expect(slow.stderr).toMatch(
      /failed its health gate on v1\.5\.1-slowboot after 3s.*rolled back to v1\.4\.2\. Next: read the worker's log/,
    );
    await expectServing(host, 'v1.4.2');
    expect(await lockOf(host)).toBe('');
    const ok = await voxops(['deploy', 'fleet', '--tag', 'v1.5.1-slowboot', '--hosts', host, '-i', inventoryFile]);
    expect(ok.code, ok.stderr).toBe(0);
    await expectServing(host, 'v1.5.1-slowboot');
  });

  it('a host unreachable at preflight stops the deploy before any host changes (exit 6)', async () => {
    await labFault({ kind: 'net-down', host: other });
    try {
      const run = await voxops(['deploy', 'fleet', '--tag', 'v1.5.0', '-i', faultInventory]);
      expect(run.code).toBe(6);
      expect(run.stderr).toMatch(new RegExp(`${other} \\(.*\\) is unreachable`));
    } finally {
      await labFault({ kind: 'net-up', host: other });
    }
    await expectServing(host, 'v1.4.2');
    expect(await lockOf(host)).toBe('');
  });

  it('a host that drops off mid-roll: exit 6 naming --resume, its lock expires by itself, --resume finishes', async () => {
    let dropped = false;
    let run;
    try {
      run = await voxops(deploy('v1.5.0', '--json'), {
        onEvent: (e) => {
          if (!dropped && e.type === 'worker' && e.phase === 'healthy') {
            dropped = true;
            void labFault({ kind: 'net-down', host });
          }
        },
      });
      expect(run.code, run.stderr).toBe(6);
      expect(run.stderr).toMatch(
        /it was left part-way \(\d worker\(s\) already on v1\.5\.0\); its lock expires by itself 15s after this run's last renewal/,
      );
      expect(run.stderr).toMatch(
        /Next: when fleet1 answers again: voxops status --host fleet1, then voxops deploy fleet --tag v1\.5\.0 --resume/,
      );
      await new Promise((r) => setTimeout(r, 5_000));
    } finally {
      await labFault({ kind: 'net-up', host });
    }
    // the lock the cut-off run held is still there, then runs out
    expect(await lockOf(host)).not.toBe('');
    await new Promise((r) => setTimeout(r, (lease + 2) * 1000));
    const resumed = await voxops(deploy('v1.5.0', '--resume'));
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/EXPIRED \d+s ago: its holder stopped renewing it: this run takes it over/);
    await expectServing(host, 'v1.5.0');
    expect(await lastHistory(host)).toMatchObject({ action: 'deploy', from: 'v1.4.2', to: 'v1.5.0', outcome: 'success' });
    expect(await lockOf(host)).toBe('');
  });

  it('SIGTERM mid-roll stops at a safe point: every worker serving, lock released, exit 143; --resume finishes', async () => {
    let sent = 0;
    const run = await voxops(deploy('v1.5.0', '--json'), {
      onEvent: (e, child) => {
        if (!sent && e.type === 'worker' && e.phase === 'restarted') {
          sent = Date.now();
          child.kill('SIGTERM');
        }
      },
    });
    console.log(`SIGTERM to exit: ${Date.now() - sent} ms`);
    expect(run.code, run.stderr).toBe(143);
    expect(run.stderr).toMatch(/interrupted/);
    for (const w of await workerHealth(host)) expect(w).toMatchObject({ httpStatus: 200, status: 'ok' });
    expect(await lockOf(host)).toBe('');
    const resumed = await voxops(deploy('v1.5.0', '--resume'));
    expect(resumed.code, resumed.stderr).toBe(0);
    await expectServing(host, 'v1.5.0');
  });

  it('a Jenkins abort (SIGTERM, SIGKILL 5 s later) mid-drain, then --resume: the moved socket is put back, the deploy finished', async () => {
    const address = readLabFile().hosts.find((h) => h.name === host)!.address;
    // one call that outlives the abort keeps a worker busy, so the run is still rolling when it is killed
    const call = runCalls({ targets: [`ws://${address}/ws/call`], rate: 1, durationSeconds: 1, maxCalls: 1, holdSeconds: [25, 25] });
    await new Promise((r) => setTimeout(r, 2_000));
    let aborted = 0;
    const run = await voxops(deploy('v1.5.0', '--json', '--schedule', 'one-at-a-time'), {
      onEvent: (e, child) => {
        if (!aborted && e.type === 'worker' && e.phase === 'drained') {
          aborted = Date.now();
          // the drain waits on a call: voxops puts the worker back and exits within the grace
          child.kill('SIGTERM');
          setTimeout(() => child.kill('SIGKILL'), 5_000);
        }
      },
    });
    console.log(`Jenkins-style abort: exit ${run.code ?? run.signal} ${Date.now() - aborted} ms after SIGTERM`);
    expect([143, null]).toContain(run.code);
    const resumed = await voxops(deploy('v1.5.0', '--resume'));
    expect(resumed.code, resumed.stderr).toBe(0);
    await expectServing(host, 'v1.5.0');
    expect((await call).dropped).toBe(0);
  });

  it('voxops killed (SIGKILL) right after a drain: its stale lock is taken over by --resume, the moved socket put back, the deploy finished', async () => {
    const address = readLabFile().hosts.find((h) => h.name === host)!.address;
    await nginxServing(host);
    const call = runCalls({ targets: [`ws://${address}/ws/call`], rate: 1, durationSeconds: 1, maxCalls: 1, holdSeconds: [20, 20] });
    await new Promise((r) => setTimeout(r, 2_000));
    let killed = false;
    const run = await voxops(deploy('v1.5.0', '--json', '--schedule', 'one-at-a-time'), {
      onEvent: (e, child) => {
        if (!killed && e.type === 'worker' && e.phase === 'drained') {
          killed = true;
          child.kill('SIGKILL');
        }
      },
    });
    expect(run.signal).toBe('SIGKILL');
    expect(await lockOf(host)).not.toBe('');
    expect((await labExec(host, 'ls /tmp/voxcore_*.sock.draining 2>/dev/null | wc -l')).stdout.trim()).toBe('1');
    const resumed = await voxops(deploy('v1.5.0', '--resume'));
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/was taken by a run on this machine whose process is gone: this run takes it over/);
    expect(resumed.stdout).toMatch(/left moved aside by an interrupted run/);
    await expectServing(host, 'v1.5.0');
    expect(await lastHistory(host)).toMatchObject({ from: 'v1.4.2', to: 'v1.5.0', outcome: 'success' });
    const stats = await call;
    expect(stats.dropped).toBe(0);
  });

  it('the disk filling during install: exit 5, no worker restarted, then --resume once there is room', async () => {
    // preflight passes (no free-disk floor here); the disk fills completely as the install begins
    const doc = parse(readFileSync(faultInventory, 'utf8')) as Record<string, any>;
    doc.roles.fleet.minFreeDiskMb = 0;
    writeFileSync(faultInventory, stringify(doc));
    let filled: Promise<string> | undefined;
    let run;
    try {
      run = await voxops(deploy('v1.5.0', '--json'), {
        onEvent: (e) => {
          if (!filled && e.type === 'step' && e.step === 'install' && e.status === 'start')
            filled = labFault({ kind: 'fill-disk', host, leaveMb: 0 });
        },
      });
    } finally {
      await filled;
      await labFault({ kind: 'free-disk', host });
    }
    expect(filled).toBeDefined();
    expect(run.code, run.stderr).toBe(5);
    expect(run.stderr).toMatch(
      /Next: no worker was restarted, all still serve v1\.4\.2; fix what failed on fleet1, then: voxops deploy fleet --tag v1\.5\.0 --resume/,
    );
    for (const w of await workerHealth(host)) expect(w).toMatchObject({ httpStatus: 200, version: 'v1.4.2' });
    expect(await lockOf(host)).toBe('');
    const resumed = await voxops(deploy('v1.5.0', '--resume'));
    expect(resumed.code, resumed.stderr).toBe(0);
    await expectServing(host, 'v1.5.0');
  });

  it('a changed host key is refused before anything changes (exit 6), and named as such', async () => {
    await labFault({ kind: 'rekey', host });
    try {
      const run = await voxops(deploy('v1.5.0'));
      expect(run.code).toBe(6);
      expect(run.stderr).toMatch(/host key .* CHANGED/);
    } finally {
      await labRefreshKnownHosts();
    }
    await expectServing(host, 'v1.4.2');
  });

  it('a worker that crashes while drained comes back on the new release; no other call is touched', async () => {
    const address = readLabFile().hosts.find((h) => h.name === host)!.address;
    await nginxServing(host);
    const call = runCalls({ targets: [`ws://${address}/ws/call`], rate: 1, durationSeconds: 1, maxCalls: 1, holdSeconds: [20, 20] });
    await new Promise((r) => setTimeout(r, 2_000));
    const busy = (await workerHealth(host)).find((w) => w.active_calls === 1)!;
    let crashed = false;
    const run = await voxops(deploy('v1.5.0', '--json', '--schedule', 'one-at-a-time'), {
      onEvent: (e) => {
        if (!crashed && e.type === 'worker' && e.worker === busy.index && e.phase === 'drained') {
          crashed = true;
          void labFault({ kind: 'kill-worker', host, worker: busy.index });
        }
      },
    });
    expect(run.code, run.stderr).toBe(0);
    await expectServing(host, 'v1.5.0');
    // the crash cut the call it held; voxops restarted nothing under a live call
    const stats = await call;
    expect(stats.completed + stats.dropped, JSON.stringify(stats)).toBe(1);
  });
});

describe('no secret in any output', () => {
  it('a deploy with --verbose and --report writes the fake secret nowhere: not stdout, stderr, a report or the history', async () => {
    await resetFleetHost(host, 'v1.4.2');
    const reports = resolve('.lab/reports-secrets');
    const run = await voxops([
      'deploy',
      'fleet',
      '--tag',
      'v1.6.0',
      '--hosts',
      host,
      '--verbose',
      '--report',
      reports,
      '-i',
      inventoryFile,
    ]);
    expect(run.code, run.stderr).toBe(0);
    const secret = 'lab-secret-do-not-print';
    // the secret is on the host, so the check can fail
    expect((await labExec(host, ['grep', '-c', secret, '/opt/voxcore/.env'])).stdout.trim()).toBe('1');
    expect(run.stdout).not.toContain(secret);
    expect(run.rawStderr).not.toContain(secret);
    for (const file of ['voxops-junit.xml', 'voxops-report.json', 'voxops-summary.md', 'voxops-roll.svg']) {
      expect(readFileSync(resolve(reports, file), 'utf8')).not.toContain(secret);
    }
    expect((await labExec(host, ['cat', '/var/lib/voxops/history.jsonl'])).stdout).not.toContain(secret);
    expect(await currentTagOf(host)).toBe('v1.6.0');
  });
});
