import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { inventorySchema } from '../../src/config/schema.js';

export type KeyPath = (string | number)[];

const documented = parse(readFileSync('examples/voxops.yaml', 'utf8'));
documented.ssh.identityFile = 'keys/voxops_ed25519';
documented.ssh.jumpHost = { host: 'bastion.example.com', user: 'ops' };

/** The documented example, with every optional key that is interpolated somewhere set (a fresh copy: callers change it). */
export function example(): Record<string, any> {
  return structuredClone(documented);
}

export function setIn(doc: Record<string, any>, path: KeyPath, value: unknown): void {
  let node = doc;
  for (const key of path.slice(0, -1)) node = node[key];
  node[path[path.length - 1]!] = value;
}

export function getIn(doc: Record<string, any>, path: KeyPath): unknown {
  return path.reduce<any>((node, key) => node?.[key], doc);
}

export const dotted = (path: KeyPath) =>
  path.reduce<string>((out, p) => (typeof p === 'number' ? `${out}[${p}]` : out ? `${out}.${p}` : p), '');

/** The key paths the schema refuses the document at (the schema alone: no YAML, so loops stay fast). */
export function refusedAt(doc: Record<string, any>): string[] {
  const result = inventorySchema.safeParse(doc);
  return result.success ? [] : result.error.issues.map((issue) => dotted(issue.path as KeyPath));
}

/** Every string that goes into a config file, a command line, a unit name or a URL. */
export const interpolated: KeyPath[] = [
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
