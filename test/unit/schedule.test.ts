import { describe, expect, it } from 'vitest';
import { nginxErrorLog, parseRound, probeRound } from '../../src/commands/probe.js';
import { renderCommand } from '../../src/exec/render.js';
import { runLocal } from '../../src/exec/local.js';
import { decide, defaultMinFree, freeSlots, parseMinFree, type ScheduleLimits, type WorkerView } from '../../src/plan/schedule.js';
import { estimate } from '../../src/roles/fleet/call-aware.js';

const limits: ScheduleLimits = { minFree: 1, maxOut: 4, maxCallAgeMs: 600_000, onHungCall: 'wait' };
const now = 1_000_000;
const w = (index: number, stage: WorkerView['stage'], calls: number | undefined, extra: Partial<WorkerView> = {}): WorkerView => ({
  index,
  stage,
  calls,
  ...extra,
});

describe('the call-aware schedule', () => {
  it('takes idle workers at once and leaves busy ones alone, keeping the floor of free workers', () => {
    const workers = [w(1, 'old', 1), w(2, 'old', 0), w(3, 'old', 0), w(4, 'old', 1)];
    expect(decide(workers, limits, now)).toMatchObject({ take: [2], free: 2, done: false });
    expect(decide(workers, { ...limits, minFree: 0 }, now).take).toEqual([2, 3]);
  });

  it('counts new idle workers as free, so the rest follows as soon as they are back', () => {
    const workers = [w(1, 'new', 0), w(2, 'new', 0), w(3, 'old', 0), w(4, 'old', 1)];
    expect(decide(workers, limits, now).take).toEqual([3]);
  });

  it('always lets one worker out, even the last free one (its restart is well under a second); more only above the floor', () => {
    expect(decide([w(1, 'old', 1), w(2, 'old', 1), w(3, 'old', 0), w(4, 'old', 1)], limits, now).take).toEqual([3]);
    expect(decide([w(1, 'restarting', undefined), w(2, 'old', 1), w(3, 'old', 0), w(4, 'old', 1)], limits, now).take).toEqual([]);
    expect(decide([w(1, 'old', 1), w(2, 'old', 1), w(3, 'old', 1), w(4, 'old', 1)], limits, now).take).toEqual([]);
  });

  it('never has more than maxOut workers out of rotation', () => {
    const workers = [w(1, 'restarting', undefined), w(2, 'draining', 0), w(3, 'old', 0), w(4, 'old', 0), w(5, 'old', 0), w(6, 'old', 0)];
    expect(decide(workers, { ...limits, maxOut: 3, minFree: 0 }, now).take).toEqual([3]);
  });

  it('counts a worker moved aside with a call that slipped in as busy, not as lost capacity', () => {
    const workers = [w(1, 'draining', 1), w(2, 'old', 1), w(3, 'old', 0), w(4, 'new', 0)];
    expect(decide(workers, { ...limits, maxOut: 1 }, now).take).toEqual([3]);
  });

  it('counts a worker nginx shut out as out of rotation until its fail_timeout has passed', () => {
    const workers = [w(1, 'new', 0, { shutOutUntil: now + 5_000 }), w(2, 'old', 0), w(3, 'old', 0), w(4, 'restarting', undefined)];
    expect(freeSlots(workers, now)).toBe(2);
    expect(decide(workers, limits, now).take).toEqual([2]);
    expect(decide(workers, limits, now + 5_001).take).toEqual([2, 3]);
    // shut out, nothing else out: it is the one worker that may be out, so the last free one waits
    const small = [w(1, 'new', 0, { shutOutUntil: now + 5_000 }), w(2, 'old', 1), w(3, 'old', 0), w(4, 'old', 1)];
    expect(decide(small, limits, now).take).toEqual([]);
    expect(decide(small, limits, now + 5_001).take).toEqual([3]);
  });

  it('counts a shut-out worker against maxOut only while the host holds a call', () => {
    // a quiet host, one at a time: the last restart got shut out, the next is taken at once (not 10 s later)
    const quiet = [w(1, 'new', 0, { shutOutUntil: now + 9_000 }), w(2, 'old', 0), w(3, 'old', 0), w(4, 'old', 0)];
    expect(decide(quiet, { ...limits, maxOut: 1 }, now).take).toEqual([2]);
    // a restart in flight still fills maxOut
    const restarting = [w(1, 'new', 0, { shutOutUntil: now + 9_000 }), w(2, 'restarting', undefined), w(3, 'old', 0), w(4, 'old', 0)];
    expect(decide(restarting, { ...limits, maxOut: 1 }, now).take).toEqual([]);
    // with a call running, the shut-out one is capacity the roll took: it fills maxOut until it is back
    const busy = [w(1, 'new', 0, { shutOutUntil: now + 9_000 }), w(2, 'old', 1), w(3, 'old', 0), w(4, 'old', 0), w(5, 'old', 0)];
    expect(decide(busy, { ...limits, maxOut: 1 }, now).take).toEqual([]);
    expect(decide(busy, { ...limits, maxOut: 1 }, now + 9_001).take).toEqual([3]);
  });

  it('still rolls a host of one worker, and a host whose floor is all of its workers', () => {
    expect(decide([w(1, 'old', 0)], limits, now).take).toEqual([1]);
    expect(decide([w(1, 'old', 0), w(2, 'old', 0)], { ...limits, minFree: 5 }, now).take).toEqual([1]);
  });

  it('treats a call older than the maximum call age as the policy says: wait, skip or force', () => {
    const workers = [w(1, 'old', 1, { busySince: now - 700_000 }), w(2, 'old', 1, { busySince: now - 10_000 }), w(3, 'new', 0)];
    expect(decide(workers, limits, now)).toMatchObject({ hung: [1], skip: [], force: [], done: false });
    expect(decide(workers, { ...limits, onHungCall: 'skip' }, now)).toMatchObject({ skip: [1], hung: [], done: false });
    expect(decide(workers, { ...limits, onHungCall: 'force' }, now)).toMatchObject({ force: [1], take: [] });
  });

  it('is done when every worker is new, skipped or failed', () => {
    expect(decide([w(1, 'new', 1), w(2, 'skipped', 1), w(3, 'new', 0)], limits, now).done).toBe(true);
    expect(decide([w(1, 'new', 1), w(2, 'restarting', undefined)], limits, now).done).toBe(false);
  });

  it('derives the default floor from the call-start rate and the restart time, at least 1', () => {
    expect(defaultMinFree(0, 0.7)).toBe(1);
    expect(defaultMinFree(0.4, 0.7)).toBe(1);
    expect(defaultMinFree(3, 0.7)).toBe(5);
    expect(parseMinFree('25%', 16)).toBe(4);
    expect(parseMinFree('3', 16)).toBe(3);
    expect(parseMinFree('lots', 16)).toBeUndefined();
  });

  it('estimates the time left only once calls were seen to end', () => {
    expect(estimate({ waitingOn: [{ worker: 1, callMs: 10_000 }] }, [30_000, 30_000], [600])).toBeUndefined();
    expect(
      estimate(
        {
          waitingOn: [
            { worker: 1, callMs: 10_000 },
            { worker: 2, callMs: 25_000 },
          ],
        },
        [30_000, 30_000, 30_000],
        [600],
      ),
    ).toBe(20_600);
  });
});

describe('one probe for every worker, and the failed connects in nginx’s error log', () => {
  it('parses each worker’s answer in order, the failed connects and the log size', () => {
    const stdout = [
      '--voxops-probe 0',
      '{"status":"ok","version":"v1.5.0","active_calls":1,"pid":41}',
      '200',
      '--voxops-probe 7',
      '',
      '000',
      '--voxops-probe log',
      '2026/12/03 08:43:10 [crit] 153#153: *2419 connect() to unix:/tmp/voxcore_2.sock failed (2: No such file or directory) while connecting to upstream',
      '2026/12/03 08:43:11 [crit] 153#153: *2420 connect() to unix:/tmp/voxcore_2.sock failed (13: Permission denied) while connecting to upstream',
      '--voxops-probe size 48213',
      '',
    ].join('\n');
    const round = parseRound(stdout, 2);
    expect(round.probes[0]).toMatchObject({ httpStatus: 200, exitCode: 0, body: { active_calls: 1, pid: 41 } });
    expect(round.probes[1]).toMatchObject({ httpStatus: 0, exitCode: 7 });
    expect(round.failedConnects).toEqual(['/tmp/voxcore_2.sock']);
    expect(round.logSize).toBe(48213);
  });

  it('runs in a real sh: a socket that is not there answers curl exit 7; only new log lines are read', async () => {
    const { mkdtempSync, writeFileSync, appendFileSync } = await import('node:fs');
    const dir = mkdtempSync('/tmp/voxops-probe-');
    const log = `${dir}/error.log`;
    writeFileSync(log, 'old: connect() to unix:/tmp/voxcore_1.sock failed\n');
    const size = 'old: connect() to unix:/tmp/voxcore_1.sock failed\n'.length;
    appendFileSync(log, 'new: connect() to unix:/tmp/voxcore_9.sock failed (2: x)\nsomething else\n');
    const step = probeRound([`${dir}/none.sock`], '/health', log, size);
    const result = await runLocal(renderCommand(step.command), undefined, 10_000);
    const round = parseRound(result.stdout, 1);
    expect(round.probes[0]).toMatchObject({ httpStatus: 0, exitCode: 7 });
    expect(round.failedConnects).toEqual(['/tmp/voxcore_9.sock']);
    expect(round.logSize).toBe(size + 'new: connect() to unix:/tmp/voxcore_9.sock failed (2: x)\nsomething else\n'.length);
  });

  it('finds the error log in nginx -T, skipping comments', () => {
    expect(nginxErrorLog('# error_log /nope;\nuser www-data;\nerror_log /var/log/nginx/fleet-error.log crit;\n')).toBe(
      '/var/log/nginx/fleet-error.log',
    );
    expect(nginxErrorLog('user www-data;\n')).toBe('/var/log/nginx/error.log');
  });
});
