import { describe, expect, it } from 'vitest';
import { parseInventory } from '../../src/config/inventory.js';
import { planWorkers, planWorkerBatches, releaseSteps, workerIndices } from '../../src/plan/fleet.js';
import { renderCommand } from '../../src/exec/render.js';
import type { FleetHostFacts } from '../../src/roles/fleet/facts.js';
import { judgeFleetFacts } from '../../src/roles/fleet/judge.js';
import { readFileSync } from 'node:fs';

const inventory = parseInventory(readFileSync('examples/voxops.yaml', 'utf8'), '/inv/voxops.yaml', 'production');
const role = inventory.roles.fleet!;

describe('planning', () => {
  it('batches workers so one always stays in service', () => {
    expect(planWorkerBatches(workerIndices(4), 1)).toEqual([[1], [2], [3], [4]]);
    expect(planWorkerBatches(workerIndices(5), 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect(planWorkerBatches(workerIndices(4), 10)).toEqual([[1, 2, 3], [4]]);
    expect(planWorkerBatches(workerIndices(1), 1)).toEqual([[1]]);
  });

  it('plans a host from its own worker count and the inventory patterns', () => {
    const host = inventory.hosts.find((h) => h.name === 'fleet-2')!;
    const plan = planWorkers(role, host, { batch: 1 });
    expect(plan.batches).toHaveLength(8);
    expect(plan.workers.map((w) => w.unit)).toEqual(workerIndices(8).map((i) => `voxcore@${i}`));
    expect(renderCommand(releaseSteps(role, 'v1.5.0').install.command)).toBe('cd /opt/voxcore && uv sync --frozen');
    expect(renderCommand(plan.workers[2]!.probeDrained.command)).toContain('--unix-socket /tmp/voxcore_3.sock.draining');
  });
});

function facts(overrides: Partial<FleetHostFacts> = {}): FleetHostFacts {
  const healthy = { httpStatus: 200, body: { status: 'ok', version: 'v1.4.2', active_calls: 0 } };
  return {
    host: 'fleet-1',
    currentTag: 'v1.4.2',
    freeMb: 5000,
    tagLookup: { tagLocally: false, origin: 'found' },
    workers: [1, 2].map((index) => ({
      index,
      unit: `voxcore@${index}`,
      socket: `/tmp/voxcore_${index}.sock`,
      active: 'active',
      health: healthy,
    })),
    nginx: [],
    failTimeoutSeconds: 10,
    countVariable: 2,
    errorLog: '/var/log/nginx/error.log',
    errorLogSize: 0,
    leftovers: { moved: [], stale: [] },
    symlinkedSockets: [],
    ...overrides,
  };
}

describe('judgeFleetFacts', () => {
  it('passes a healthy host', () => {
    expect(judgeFleetFacts(facts(), role, { tag: 'v1.5.0', workers: 2 })).toEqual({
      problems: [],
      warnings: [],
      choice: { source: 'git', skipFetch: false },
    });
  });

  it('refuses what would make the deploy unsafe, and lists every reason', () => {
    const judged = judgeFleetFacts(
      facts({
        currentTag: null,
        tagLookup: { tagLocally: false, origin: 'missing' },
        freeMb: 10,
        symlinkedSockets: [2],
        nginx: [{ level: 'error', message: 'upstream voxcore_workers has keepalive' }],
        workers: [
          { index: 1, unit: 'voxcore@1', socket: '/tmp/voxcore_1.sock', active: 'failed', health: { httpStatus: 0, error: 'no answer' } },
        ],
      }),
      role,
      { tag: 'v1.5.0', workers: 2 },
    );
    expect(judged.problems).toEqual([
      'fleet-1: /opt/voxcore is not at a release tag, so there would be nothing to go back to',
      'fleet-1: tag v1.5.0 does not exist in origin',
      'fleet-1: only 10 MiB free at /opt/voxcore (need 1024 MiB)',
      'fleet-1: worker 1 (voxcore@1, failed) is unhealthy: no answer',
      'fleet-1: the socket of worker 2 is a symlink: a drain would move the link, not the socket, so calls could still reach the worker; point the unit and nginx at the socket itself',
      'fleet-1: nginx: upstream voxcore_workers has keepalive',
    ]);
  });

  it('turns unhealthy workers into warnings with --allow-unhealthy, and flags a wrong worker-count variable', () => {
    const judged = judgeFleetFacts(
      facts({ countVariable: 3, workers: [{ index: 1, unit: 'voxcore@1', socket: 's', active: 'failed', health: { httpStatus: 500 } }] }),
      role,
      { workers: 2, allowUnhealthy: true },
    );
    expect(judged.problems).toEqual([]);
    expect(judged.warnings).toEqual([
      'fleet-1: worker 1 (voxcore@1, failed) is unhealthy: HTTP 500',
      'fleet-1: VOXCORE_WORKERS=3 on the host but the inventory configures 2 workers: if the host was scaled, set workers: 3 for fleet-1 in the inventory; otherwise put the host back with voxops scale fleet --host fleet-1 --workers 2',
    ]);
  });
});
