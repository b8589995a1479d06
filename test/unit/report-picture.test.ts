import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { svg } from '../../src/report/report.js';
import { deployAll, fleetSuccess, gateFailure, nastyFailure, preflightRefused } from './report-fixtures.js';

// kept after the run, so a person can look at what the picture says (README: reports)
const OUT = process.env.VOXOPS_PICTURE_DIR ?? join(tmpdir(), 'voxops-report-pictures');
const RSVG = spawnSync('rsvg-convert', ['--version']).status === 0;
const MISSING = 'rsvg-convert is not installed: apt-get install librsvg2-bin (test/lab/setup-host.sh installs it)';

const pictures = {
  'fleet-success': () => svg(fleetSuccess()),
  'gate-failure': () => svg(gateFailure(), { gateTimeoutMs: { fleet: 30_000 } }),
  'gate-failure-no-timeout-known': () => svg(gateFailure()),
  'preflight-refused': () => svg(preflightRefused()),
  'deploy-all': () => svg(deployAll()),
  'deploy-all-fleet-failed': () => svg(deployAll({ fleetFails: true })),
  'remote-stderr': () => svg(nastyFailure()),
};

const texts = (picture: string) => [...picture.matchAll(/<(?:text|tspan)[^>]*>([^<]*)</g)].map((m) => m[1]!);

describe('the SVG picture of a run', () => {
  it('renders to PNG with rsvg-convert, every one', (ctx) => {
    if (!RSVG) ctx.skip(MISSING);
    mkdirSync(OUT, { recursive: true });
    for (const [name, draw] of Object.entries(pictures)) {
      const file = join(OUT, `${name}.svg`);
      writeFileSync(file, draw());
      const run = spawnSync('rsvg-convert', ['--background-color', 'white', '-o', join(OUT, `${name}.png`), file], { encoding: 'utf8' });
      expect(run.status, `${name}: ${run.stderr}`).toBe(0);
      const png = readFileSync(join(OUT, `${name}.png`));
      expect(png.subarray(1, 4).toString()).toBe('PNG');
      expect(png.readUInt32BE(16), `${name}: width`).toBe(1100);
    }
  });

  it('a success: ok in the title, a time axis, a row per host and per worker', () => {
    const picture = svg(fleetSuccess());
    const words = texts(picture);
    expect(words).toContain('ok');
    expect(words).toContain('seconds since start');
    expect(words.filter((t) => /^\d+ s$/.test(t)).length).toBeGreaterThanOrEqual(8); // ticks, top and bottom
    expect(words).toEqual(expect.arrayContaining(['fleet1', 'fleet2', 'worker 1 · voxcore@1', 'worker 4 · voxcore@4', 'preflight']));
    expect(words.some((t) => t.includes('FAILED'))).toBe(false);
  });

  it('a failed gate: FAILED and the exit code in the title, the failed row marked, the gate wait and the rollback drawn', () => {
    const picture = svg(gateFailure(), { gateTimeoutMs: { fleet: 30_000 } });
    const words = texts(picture);
    expect(words).toContain('FAILED (exit 4)');
    expect(words).toContain('GATE FAILED');
    expect(words).toContain('gate failed');
    expect(words).toContain('rollback → v1.5.0');
    expect(words).toContain('not started');
    expect(picture).toContain('health gate failed after 30.0 s');
    expect(words.some((t) => t.startsWith('Next: read the worker'))).toBe(true);
  });

  it('a refused preflight: the error, what to run next and every problem, no empty chart', () => {
    const words = texts(svg(preflightRefused()));
    expect(words).toContain('FAILED (exit 7)');
    expect(words).toContain('REFUSED');
    expect(words.filter((t) => t.startsWith('• '))).toHaveLength(3);
    expect(words).toContain('Next: fix what it lists, then voxops deploy fleet --tag v1.5.0 --dry-run');
  });

  it('deploy all: one picture grouped by role, every role its hosts, the down windows of api and dialler', () => {
    const picture = svg(deployAll());
    const words = texts(picture);
    const groups = ['API', 'CONSOLE', 'FLEET', 'DIALLER', 'INGRESS'];
    expect(words.filter((t) => groups.includes(t))).toEqual(groups);
    expect(words.filter((t) => t === 'app-1')).toHaveLength(2);
    expect(words.filter((t) => t === 'down 0.50 s')).toHaveLength(2);
    expect(words).toEqual(expect.arrayContaining(['sip-1', 'wss-1', 'fleet1', 'fleet2']));
  });
});
