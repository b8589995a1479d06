import { execFileSync } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { junit } from '../../src/report/report.js';
import { deployAll, fleetSuccess, gateFailure, nastyFailure, preflightRefused } from '../unit/report-fixtures.js';

// Jenkins' junit step reads the file with the JDK's SAX parser; so does this, through Groovy
const PARSE = [
  'def sax = javax.xml.parsers.SAXParserFactory.newInstance()',
  'args.each { f -> try { sax.newSAXParser().parse(new File(f), new org.xml.sax.helpers.DefaultHandler()); println "ok" } catch (e) { println "error: " + e.message } }',
].join('\n');

describe('voxops-junit.xml through the JDK parser Jenkins uses', () => {
  it('every kind of run parses; a file with a raw ESC does not (so the check can fail)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'voxops-junit-'));
    try {
      const files = Object.entries({ fleetSuccess, gateFailure, preflightRefused, deployAll, nastyFailure }).map(([name, make]) => {
        const file = join(dir, `${name}.xml`);
        writeFileSync(file, junit(make()));
        return file;
      });
      const broken = join(dir, 'broken.xml');
      writeFileSync(
        broken,
        '<?xml version="1.0"?><testsuites><testsuite><testcase name="x"><failure message="\u001b[31m"/></testcase></testsuite></testsuites>',
      );
      const out = execFileSync('groovy', ['-e', PARSE, ...files, broken], {
        env: { ...process.env, JAVA_HOME: dirname(dirname(realpathSync('/usr/bin/java'))) },
        encoding: 'utf8',
      })
        .trim()
        .split('\n');
      expect(out.slice(0, files.length)).toEqual(files.map(() => 'ok'));
      expect(out.at(-1)).toMatch(/^error: .*invalid XML character/i);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
