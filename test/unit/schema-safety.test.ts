import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseInventory } from '../../src/config/inventory.js';
import { inventorySchema } from '../../src/config/schema.js';
import { problemsOf } from './inventory-problems.js';

/** The documented example, with every optional key that is interpolated somewhere set. */
function example(): Record<string, any> {
  const doc = parse(readFileSync('examples/voxops.yaml', 'utf8'));
  doc.ssh.identityFile = 'keys/voxops_ed25519';
  doc.ssh.jumpHost = { host: 'bastion.example.com', user: 'ops' };
  return doc;
}

function setIn(doc: Record<string, any>, path: (string | number)[], value: unknown): void {
  let node = doc;
  for (const key of path.slice(0, -1)) node = node[key];
  node[path[path.length - 1]!] = value;
}

function getIn(doc: Record<string, any>, path: (string | number)[]): unknown {
  return path.reduce<any>((node, key) => node[key], doc);
}

/** Every string that goes into a config file, a command line, a unit name or a URL. */
const interpolated: (string | number)[][] = [
  ['defaultEnvironment'],
  ['ssh', 'user'],
  ['ssh', 'identityFile'],
  ['ssh', 'knownHosts'],
  ['ssh', 'jumpHost', 'host'],
  ['ssh', 'jumpHost', 'user'],
  ...(['fleet', 'api', 'dialler', 'console'] as const).flatMap((role) => [
    ['roles', role, 'repo'],
    ['roles', role, 'path'],
    ['roles', role, 'localRepo'],
  ]),
  ['roles', 'fleet', 'workers', 'unit'],
  ['roles', 'fleet', 'workers', 'socket'],
  ['roles', 'fleet', 'workers', 'envFile'],
  ['roles', 'fleet', 'workers', 'countVariable'],
  ['roles', 'fleet', 'health', 'path'],
  ['roles', 'fleet', 'nginx', 'config'],
  ['roles', 'fleet', 'nginx', 'upstream'],
  ['roles', 'fleet', 'build', 'outputs', 0],
  ['roles', 'fleet', 'preserve', 0],
  ['roles', 'api', 'unit'],
  ['roles', 'api', 'health', 'url'],
  ['roles', 'dialler', 'idle', 'field'],
  ['roles', 'console', 'output'],
  ['roles', 'console', 'current'],
  ['roles', 'console', 'verifyUrl'],
  ['roles', 'ingress', 'config'],
  ['roles', 'ingress', 'unit'],
  ['roles', 'ingress', 'backend'],
  ['roles', 'ingress', 'bind'],
  ['roles', 'ingress', 'adminSocket'],
  ['roles', 'ingress', 'health', 'path'],
  ['environments', 'staging', 'hosts', 'fleet', 0, 'name'],
  ['environments', 'staging', 'hosts', 'fleet', 0, 'address'],
];

const hostile = ['\0', '\n', '\r', '\t', ' x', '\u00a0', '\u2028', '\u001b[2J', '\u0085', '\u202e'];

const dotted = (path: (string | number)[]) => path.reduce<string>((out, p) => (typeof p === 'number' ? `${out}[${p}]` : out ? `${out}.${p}` : p), '');

/** The key paths the schema refuses the document at (the schema alone: no YAML, so the loops stay fast). */
function refusedAt(doc: Record<string, any>): string[] {
  const result = inventorySchema.safeParse(doc);
  return result.success ? [] : result.error.issues.map((issue) => dotted(issue.path as (string | number)[]));
}

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
