import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { create } from 'xmlbuilder2';
import type { OperationSummary } from '../../src/events.js';
import { junit, markdown, writeReports } from '../../src/report/report.js';

const t = Date.parse('2026-11-25T10:00:00Z');
const summary: OperationSummary = {
  operation: 'deploy',
  role: 'fleet',
  tag: 'v1.5.1-badhealth',
  startedAt: new Date(t).toISOString(),
  durationMs: 42_000,
  exitCode: 4,
  hosts: [
    { host: 'fleet1', role: 'fleet', from: 'v1.4.2', to: 'v1.5.1-badhealth', outcome: 'rolled-back', durationMs: 40_000, message: 'worker 1 <voxcore@1> failed: "HTTP 500" & more' },
    { host: 'fleet2', role: 'fleet', from: 'v1.4.2', to: 'v1.5.1-badhealth', outcome: 'not-started', durationMs: 0 },
  ],
  workers: [
    { host: 'fleet1', worker: 1, unit: 'voxcore@1', outcome: 'failed', drainedAt: t + 1000 },
    { host: 'fleet1', worker: 1, unit: 'voxcore@1', outcome: 'rolled-back', drainedAt: t + 31_000, idleAt: t + 31_100, restartedAt: t + 31_400, healthyAt: t + 31_700, inRotationAt: t + 41_700, downtimeMs: 300, outOfRotationMs: 10_700, version: 'v1.4.2' },
  ],
};

describe('reports', () => {
  it('JUnit XML: one testcase per host and worker step, failures and skips, escaped text', () => {
    const xml = junit(summary);
    const doc = create(xml).end({ format: 'object' }) as { testsuites: { testsuite: { '@tests': string; '@failures': string; '@skipped': string; testcase: { '@name': string; failure?: { '@message': string } }[] } } };
    const suite = doc.testsuites.testsuite;
    expect(suite['@tests']).toBe('4');
    expect(suite['@failures']).toBe('2');
    expect(suite['@skipped']).toBe('1');
    expect(suite.testcase[0]!['@name']).toBe('deploy v1.4.2 -&gt; v1.5.1-badhealth');
    expect(suite.testcase[0]!.failure).toBeDefined();
    expect(xml).toContain('message="rolled-back: worker 1 &lt;voxcore@1&gt; failed: &quot;HTTP 500&quot; &amp; more"');
  });

  it('Markdown timeline with each phase and the downtime', () => {
    const md = markdown(summary);
    expect(md).toContain('# voxops deploy fleet v1.5.1-badhealth: FAILED (exit 4)');
    expect(md).toContain('| fleet1 | 1 | 10:00:31.000 | 10:00:31.100 | 10:00:31.400 | 10:00:31.700 | 10:00:41.700 | 0.10 s | 0.30 s | 10.70 s |');
  });

  it('writes the four files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'voxops-report-'));
    try {
      const files = writeReports(dir, summary);
      expect(files.map((f) => f.slice(dir.length + 1))).toEqual(['voxops-junit.xml', 'voxops-report.json', 'voxops-summary.md', 'voxops-roll.svg']);
      expect(JSON.parse(readFileSync(join(dir, 'voxops-report.json'), 'utf8'))).toEqual(summary);
      expect(readFileSync(join(dir, 'voxops-roll.svg'), 'utf8')).toMatch(/<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
