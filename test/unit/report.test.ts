import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { create } from 'xmlbuilder2';
import { REPORT_FILES, junit, markdown, svg, writeReports, type OperationSummary } from '../../src/report/report.js';
import { NASTY, deployAll, fleetSuccess, gateFailure, nastyFailure, preflightRefused } from './report-fixtures.js';

/**
 * Well-formedness by expat (Python's XML parser): strict XML 1.0, so a control character, a stray
 * `&` or a bad tag fails here the way it fails Jenkins' junit step. xmlbuilder2's own parser accepts
 * ESC and NUL, so it cannot be the check.
 */
function strictXmlProblem(xml: string): string | undefined {
  const run = spawnSync(
    'python3',
    ['-c', 'import sys, xml.parsers.expat as e\np = e.ParserCreate()\np.Parse(sys.stdin.buffer.read(), True)'],
    { input: xml },
  );
  if (run.error) throw new Error(`python3 is needed for the strict XML check (apt-get install python3): ${run.error.message}`);
  return run.status === 0 ? undefined : run.stderr.toString().trim().split('\n').at(-1);
}

interface TestCase {
  '@classname': string;
  '@name': string;
  failure?: { '@message': string; '#'?: string } | string;
  skipped?: unknown;
}
interface Suite {
  '@tests': string;
  '@failures': string;
  '@skipped': string;
  testcase: TestCase | TestCase[];
}

function suiteOf(summary: OperationSummary): { suite: Suite; cases: TestCase[]; xml: string } {
  const xml = junit(summary);
  const suite = (create(xml).end({ format: 'object' }) as unknown as { testsuites: { testsuite: Suite } }).testsuites.testsuite;
  return { suite, cases: ([] as TestCase[]).concat(suite.testcase), xml };
}

// xmlbuilder2's object form leaves entities as written
const unescape = (s: string) =>
  s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
const failureText = (c: TestCase) => unescape(typeof c.failure === 'string' ? c.failure : (c.failure?.['#'] ?? ''));
const ids = (cases: TestCase[]) => cases.map((c) => `${c['@classname']} / ${c['@name']}`);

const all = {
  fleetSuccess,
  gateFailure,
  preflightRefused,
  deployAll,
  deployAllFailed: () => deployAll({ fleetFails: true }),
  nastyFailure,
};

describe('JUnit XML', () => {
  it('every report of every run is well-formed to a strict parser, remote stderr included', () => {
    for (const [name, make] of Object.entries(all)) {
      const summary = make();
      for (const [format, text] of [
        ['junit', junit(summary)],
        ['svg', svg(summary)],
      ] as const) {
        expect(strictXmlProblem(text), `${name} ${format}`).toBeUndefined();
        expect(text, `${name} ${format}`).not.toMatch(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/);
      }
    }
  });

  it('keeps what the remote said, with the colour codes gone and forbidden characters replaced', () => {
    const { cases } = suiteOf(nastyFailure());
    const host = cases.find((c) => c['@name'] === 'deploy fleet on fleet-1.prod.example.com')!;
    const text = failureText(host);
    expect(text).toContain('E: \ufffdunit\ufffd failed <voxcore@1> & "x" \'y\' ]]> \ufffd \ufffd');
    expect(text).toContain('line 2 | pipe');
    expect(text).not.toContain('[31m');
    expect(NASTY).toContain('\u0000'); // the fixture does carry them
  });

  it('test names do not change with the outcome or the tag; the outcome is only in <failure>/<skipped>', () => {
    const ok = suiteOf(fleetSuccess()).cases;
    const bad = suiteOf(gateFailure()).cases;
    for (const name of [
      'deploy fleet on fleet1',
      'deploy worker 1 (voxcore@1) on fleet1',
      'deploy worker 3 (voxcore@3) on fleet1',
      'deploy fleet on fleet2',
      'deploy fleet preflight',
    ]) {
      expect(
        ok.map((c) => c['@name']),
        name,
      ).toContain(name);
      expect(
        bad.map((c) => c['@name']),
        name,
      ).toContain(name);
    }
    for (const c of [...ok, ...bad]) expect(c['@name']).not.toMatch(/v1\.|rolled|failed|skipped|success/);
    const worker3 = bad.find((c) => c['@name'] === 'deploy worker 3 (voxcore@3) on fleet1')!;
    expect(worker3.failure).toBeDefined();
    expect(failureText(worker3)).toContain('failed its health gate; it was rolled back');
    expect(failureText(worker3)).toContain('/health answered HTTP 500');
    // a failed attempt and its rollback are one test, not two with the same name
    expect(new Set(ids(bad)).size).toBe(bad.length);
    expect(bad.find((c) => c['@name'] === 'deploy fleet on fleet2')!.skipped).toBeDefined();
  });

  it('classnames are <role>.<host>, a dotted host name kept as one part', () => {
    const { cases } = suiteOf(nastyFailure());
    expect(cases.map((c) => c['@classname'])).toContain('fleet.fleet-1_prod_example_com');
  });

  it('deploy all: api and console on one host get different classnames and names', () => {
    const { cases } = suiteOf(deployAll());
    const onApp1 = cases.filter((c) => c['@name'].endsWith(' on app-1'));
    expect(onApp1.map((c) => [c['@classname'], c['@name']])).toEqual([
      ['api.app-1', 'deploy api on app-1'],
      ['console.app-1', 'deploy console on app-1'],
    ]);
    expect(new Set(ids(cases)).size).toBe(cases.length);
    expect(cases.filter((c) => c.failure)).toHaveLength(0);
  });

  it('a refused preflight is a failing test with the message, what to run next and every problem', () => {
    const { suite, cases } = suiteOf(preflightRefused());
    expect(suite['@tests']).toBe('1');
    expect(suite['@failures']).toBe('1');
    const [preflight] = cases;
    expect(preflight!['@classname']).toBe('fleet.preflight');
    expect((preflight!.failure as { '@message': string })['@message']).toBe('preflight refused on 2 of 2 fleet hosts; nothing was changed');
    const text = failureText(preflight!);
    expect(text).toContain('Next: fix what it lists, then voxops deploy fleet --tag v1.5.0 --dry-run');
    expect(text).toContain('  - fleet2: 512 MB free on /opt/voxcore, 1024 MB needed (minFreeDiskMb)');
  });

  it('an error after hosts changed goes on the failing host, with what to run next', () => {
    const { suite, cases } = suiteOf(gateFailure());
    expect(suite['@failures']).toBe('2'); // the host and its worker; preflight passed
    const host = cases.find((c) => c['@name'] === 'deploy fleet on fleet1')!;
    expect(failureText(host)).toContain("Next: read the worker's log: voxops logs fleet --host fleet1 --worker 3");
    expect(cases.find((c) => c['@name'] === 'deploy fleet preflight')!.failure).toBeUndefined();
  });
  it('an error with no failing host (interrupted between hosts) still fails one test, under a stable name', () => {
    const done = fleetSuccess();
    const interrupted: OperationSummary = {
      ...done,
      exitCode: 130,
      error: { message: 'interrupted before every host was deployed; every worker is serving', next: 'voxops status fleet' },
      hosts: [done.hosts[0]!, { ...done.hosts[1]!, outcome: 'not-started', durationMs: 0 }],
      workers: done.workers.filter((w) => w.host === 'fleet1'),
    };
    const { suite, cases } = suiteOf(interrupted);
    expect(suite['@failures']).toBe('1');
    const run = cases.find((c) => c.failure)!;
    expect([run['@classname'], run['@name']]).toEqual(['fleet.run', 'deploy fleet']);
    expect(failureText(run)).toContain('Next: voxops status fleet');
  });
});

describe('Markdown summary', () => {
  it('the error, what to run next and the problems, then the hosts', () => {
    const md = markdown(preflightRefused());
    expect(md).toContain('# voxops deploy fleet v1.5.0: FAILED (exit 7)');
    expect(md).toContain('preflight refused on 2 of 2 fleet hosts; nothing was changed\nNext: fix what it lists');
    expect(md).toContain('  - fleet1: worker 2 (voxcore@2) is unreachable (unit active, socket present)');
  });

  it('a timeline row per worker attempt, with its outcome and downtime', () => {
    const md = markdown(gateFailure());
    expect(md).toMatch(
      /\| fleet1 \| 1 \| rolled \| 10:00:03\.900 \| 10:00:05\.700 \| 10:00:05\.740 \| 10:00:06\.046 \| 10:00:16\.046 \| 1\.80 s \| 0\.31 s \| 12\.1 s \|/,
    );
    expect(md).toContain('| fleet1 | 3 | failed |');
  });

  it('remote text cannot break the table or the fence', () => {
    const md = markdown({ ...nastyFailure(), error: { message: 'a ``` b' } });
    expect(md).toContain(
      '| failed: install failed (exit 1): E: \ufffdunit\ufffd failed <voxcore@1> & "x" \'y\' ]]> \ufffd \ufffd / line 2 \\| pipe |',
    );
    expect(md).toContain('````text\na ``` b\n````');
    expect(md).not.toMatch(/[\u0000-\u0008\u001b]/);
  });
});

describe('writeReports', () => {
  const dirs: string[] = [];
  const scratch = () => {
    const dir = mkdtempSync(join(tmpdir(), 'voxops-report-'));
    dirs.push(dir);
    return dir;
  };
  afterEach(() => {
    for (const dir of dirs.splice(0)) {
      chmodSync(dir, 0o700);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('writes the four files, creating missing directories, and leaves nothing else', () => {
    const dir = join(scratch(), 'reports', 'group-1');
    const files = writeReports(dir, gateFailure());
    expect(files.problem).toBeUndefined();
    expect(files.map((f) => f.slice(dir.length + 1))).toEqual([...REPORT_FILES]);
    expect(readdirSync(dir).sort()).toEqual([...REPORT_FILES].sort());
    expect(JSON.parse(readFileSync(join(dir, 'voxops-report.json'), 'utf8'))).toEqual(gateFailure());
    expect(files.join(', ')).toContain('voxops-junit.xml'); // what the CLI prints today
  });

  it('the JSON report carries the error', () => {
    const dir = scratch();
    writeReports(dir, preflightRefused());
    expect(JSON.parse(readFileSync(join(dir, 'voxops-report.json'), 'utf8')).error.problems).toHaveLength(3);
  });

  it('/proc/x: returns at once with the reason, and does not throw or spin', () => {
    const started = Date.now();
    const files = writeReports('/proc/x/reports', gateFailure());
    expect(Date.now() - started).toBeLessThan(2000);
    expect([...files]).toEqual([]);
    expect(files.problem).toMatch(/^reports not written to \/proc\/x\/reports: ENOENT: no such file or directory, mkdir '\/proc\/x'/);
  });

  it('a read-only directory: a problem naming the files not written, and no partial file', (ctx) => {
    // root ignores mode bits; sysfs refuses root too
    const root = process.getuid?.() === 0;
    if (root && !existsSync('/sys/kernel')) ctx.skip('running as root without /sys/kernel: no directory is read-only here');
    let dir = '/sys/kernel';
    if (!root) {
      dir = scratch();
      chmodSync(dir, 0o555);
    }
    const files = writeReports(dir, gateFailure());
    expect([...files]).toEqual([]);
    expect(files.problem).toMatch(
      /^reports not written to .* \(voxops-junit\.xml, voxops-report\.json, voxops-summary\.md, voxops-roll\.svg\): E(ACCES|PERM|ROFS)/,
    );
    if (!root) expect(readdirSync(dir)).toEqual([]);
  });

  it('a file where the directory should be', () => {
    const file = join(scratch(), 'reports');
    writeFileSync(file, 'not a directory');
    const files = writeReports(join(file, 'sub'), gateFailure());
    expect(files.problem).toBe(`reports not written to ${join(file, 'sub')}: ENOTDIR: not a directory, stat '${join(file, 'sub')}'`);
  });
});
