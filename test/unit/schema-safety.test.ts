import { describe, expect, it } from 'vitest';
import { parseInventory } from '../../src/config/inventory.js';
import { dotted, example, getIn, interpolated, refusedAt, setIn } from './inventory-fixture.js';
import { problemsOf } from './inventory-problems.js';

const hostile = ['\0', '\n', '\r', '\t', ' x', '\u00a0', '\u2028', '\u001b[2J', '\u0085', '\u202e'];

describe('the inventory schema refuses control characters and whitespace wherever a value is interpolated', () => {
  it('accepts the example with every interpolated key set', () => {
    expect(() => parseInventory(JSON.stringify(example()), '/inv/voxops.yaml')).not.toThrow();
  });

  it.each(hostile)('refuses %j at every interpolated key', (bad) => {
    const doc = example();
    for (const path of interpolated) setIn(doc, path, `${getIn(doc, path)}${bad}`);
    expect(refusedAt(doc)).toEqual(expect.arrayContaining(interpolated.map(dotted)));
  });

  it('refuses control characters in install argv words, where a space is fine', () => {
    const doc = example();
    doc.roles.fleet.install = [['sh', '-c', 'npm ci && npm run build']];
    expect(() => parseInventory(JSON.stringify(doc), '/inv/voxops.yaml')).not.toThrow();
    for (const bad of ['\0', '\n', '\u001b']) {
      doc.roles.fleet.install = [['sh', '-c', `true${bad}id`]];
      expect(problemsOf(JSON.stringify(doc))).toEqual([expect.stringMatching(/^roles\.fleet\.install\[0\]\[2\]: /)]);
    }
  });

  it('refuses what a command or ssh would read as an option, or git as a command', () => {
    const cases: [(string | number)[], string][] = [
      [['environments', 'staging', 'hosts', 'fleet', 0, 'address'], '-oProxyCommand=id'],
      [['ssh', 'jumpHost', 'host'], '-oProxyCommand=id'],
      [['environments', 'staging', 'hosts', 'fleet', 0, 'name'], '-fleet'],
      [['roles', 'fleet', 'repo'], '--upload-pack=id'],
      [['roles', 'fleet', 'repo'], 'ext::sh -c id'],
      [['roles', 'fleet', 'repo'], 'ext::id'],
      [['roles', 'api', 'unit'], '-voxbridge'],
      [['roles', 'api', 'unit'], 'voxbridge{i}'],
      [['roles', 'fleet', 'workers', 'socket'], '/tmp/voxcore_{i}_{i}.sock'],
      [['roles', 'fleet', 'workers', 'socket'], '/tmp/voxcore;{i}.sock'],
      [['roles', 'fleet', 'localRepo'], '-mirror'],
    ];
    for (const [path, value] of cases) {
      const doc = example();
      setIn(doc, path, value);
      expect(refusedAt(doc), `${dotted(path)}: ${value}`).toContain(dotted(path));
    }
  });
});
