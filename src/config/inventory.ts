import { closeSync, constants, existsSync, fstatSync, openSync, readSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, resolve } from 'node:path';
import { LineCounter, parseDocument, isNode, type Document } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import {
  inventorySchema,
  roleNames,
  type ConsoleRoleConfig,
  type FleetRoleConfig,
  type IngressRoleConfig,
  type InventoryDocument,
  type RoleName,
  type ServiceRoleConfig,
  type SshSettings,
} from './schema.js';

export interface ResolvedSsh {
  user: string;
  port: number;
  identityFile?: string;
  knownHosts: string;
  connectTimeoutSeconds: number;
  commandTimeoutSeconds: number;
  keepaliveSeconds: number;
  sudo: boolean;
  jumpHost?: { host: string; port: number; user?: string };
}

export interface Host {
  name: string;
  address: string;
  port: number;
  role: RoleName;
  /** fleet only: the number of workers on this host */
  workers?: number;
}

export interface Inventory {
  file: string;
  environment: string;
  environments: string[];
  ssh: ResolvedSsh;
  lock: { leaseSeconds: number };
  roles: { fleet?: FleetRoleConfig; api?: ServiceRoleConfig; console?: ConsoleRoleConfig; dialler?: ServiceRoleConfig; ingress?: IngressRoleConfig };
  hosts: Host[];
}

const sshDefaults: ResolvedSsh = {
  user: 'root',
  port: 22,
  knownHosts: '~/.ssh/known_hosts',
  connectTimeoutSeconds: 10,
  commandTimeoutSeconds: 900,
  keepaliveSeconds: 5,
  sudo: false,
};

/** `--inventory`, then `VOXOPS_INVENTORY`, then `./voxops.yaml`. */
export function findInventoryFile(flag: string | undefined, env = process.env, cwd = process.cwd()): string {
  const chosen = flag ?? env.VOXOPS_INVENTORY ?? 'voxops.yaml';
  const file = resolve(cwd, chosen);
  if (!existsSync(file)) {
    const source = flag ? '--inventory' : env.VOXOPS_INVENTORY ? 'VOXOPS_INVENTORY' : 'the default ./voxops.yaml';
    throw new ConfigError(`inventory not found: ${file} (from ${source})`, [], {
      next: 'pass --inventory FILE or set VOXOPS_INVENTORY',
    });
  }
  return file;
}

/** Far beyond any real inventory; a bigger file is a mistake (or a disk image), not an estate. */
export const MAX_INVENTORY_BYTES = 4 * 1024 * 1024;

export function loadInventory(file: string, environment?: string): Inventory {
  return parseInventory(readInventoryText(file), file, environment);
}

/**
 * The file's text, if it is a regular file (a symlink to one is fine) of at most
 * MAX_INVENTORY_BYTES. Opened without blocking and checked on the open descriptor, so neither a
 * FIFO nor a file swapped after a check can hang the run, and at most the cap plus one byte is read
 * (/dev/zero or a growing file would otherwise be read forever).
 */
function readInventoryText(file: string): string {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    throw new ConfigError(`cannot read inventory ${file}: ${(error as Error).message}`);
  }
  try {
    if (!fstatSync(fd).isFile()) throw new ConfigError(`inventory ${file} is not a regular file`, [], { next: 'pass --inventory with the path of a YAML file' });
    const buffer = Buffer.alloc(MAX_INVENTORY_BYTES + 1);
    let length = 0;
    while (length < buffer.length) {
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) break;
      length += n;
    }
    if (length > MAX_INVENTORY_BYTES) throw new ConfigError(`inventory ${file} is larger than ${MAX_INVENTORY_BYTES / 1024 / 1024} MiB`, [], { next: 'pass --inventory with the path of the inventory YAML file' });
    return buffer.toString('utf8', 0, length);
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(`cannot read inventory ${file}: ${(error as Error).message}`);
  } finally {
    closeSync(fd);
  }
}

/** parse -> validate (every problem, with its key path and line) -> normalise for one environment */
export function parseInventory(text: string, file: string, environment?: string): Inventory {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e) => `line ${e.linePos?.[0]?.line ?? '?'}: ${e.message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '')}`);
    throw new ConfigError(`${file}: not valid YAML`, problems, { next: `fix the YAML, then run voxops config check` });
  }
  let data: unknown;
  try {
    data = doc.toJS();
  } catch (error) {
    // the yaml library refuses to expand an alias bomb (a few lines that would expand to millions of nodes)
    throw new ConfigError(`${file}: cannot read the YAML: ${(error as Error).message}`, [], { next: 'write the inventory without nested aliases (&anchor / *alias)' });
  }
  const result = inventorySchema.safeParse(data);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => describeIssue(issue, doc, lineCounter));
    throw new ConfigError(`${file}: ${problems.length} problem(s) in the inventory`, problems, {
      next: `fix them, then run voxops config check --inventory ${file}`,
    });
  }
  return normalise(result.data, file, environment, doc, lineCounter);
}

function describeIssue(issue: z.core.$ZodIssue, doc: Document, lineCounter: LineCounter): string {
  const path = issue.path.map(String);
  if (issue.code === 'unrecognized_keys') {
    return issue.keys
      .map((key) => `${formatPath([...path, key])}: unknown key${lineSuffix(doc, lineCounter, [...path, key], true)}`)
      .join('\n');
  }
  return `${formatPath(path)}: ${issue.message}${lineSuffix(doc, lineCounter, path, false)}`;
}

function formatPath(path: readonly (string | number)[]): string {
  if (path.length === 0) return '(top level)';
  return path.reduce<string>((out, part) => (/^\d+$/.test(String(part)) ? `${out}[${part}]` : out ? `${out}.${part}` : String(part)), '');
}

function lineSuffix(doc: Document, lineCounter: LineCounter, path: string[], keyNode: boolean): string {
  const keys = path.map((p) => (/^\d+$/.test(p) ? Number(p) : p));
  let node: unknown = doc.getIn(keys, true);
  if (keyNode || !isNode(node)) {
    // point at the key itself (or the nearest parent that exists)
    for (let depth = keys.length; depth >= 0 && !isNode(node); depth--) node = doc.getIn(keys.slice(0, depth), true);
  }
  const offset = isNode(node) ? node.range?.[0] : undefined;
  return offset === undefined ? '' : ` (line ${lineCounter.linePos(offset).line})`;
}

function normalise(
  data: InventoryDocument,
  file: string,
  requested: string | undefined,
  doc: Document,
  lineCounter: LineCounter,
): Inventory {
  const environments = Object.keys(data.environments);
  const environment = requested ?? data.defaultEnvironment ?? (environments.length === 1 ? environments[0] : undefined);
  if (!environment) {
    throw new ConfigError(`${file}: more than one environment and no defaultEnvironment`, [], {
      next: `pass --env (one of: ${environments.join(', ')})`,
    });
  }
  // --env is user input: only the file's own keys, never what an object inherits (constructor, __proto__)
  const env = Object.hasOwn(data.environments, environment) ? data.environments[environment] : undefined;
  if (!env) {
    throw new ConfigError(`unknown environment "${environment}" in ${file}`, [], {
      next: `pass --env with one of: ${environments.join(', ')}`,
    });
  }
  const base = dirname(file);
  const ssh = resolveSsh(base, data.ssh, env.ssh);
  const problems: string[] = [];
  const hosts: Host[] = [];
  for (const role of roleNames) {
    const entries = env.hosts[role] ?? [];
    if (entries.length > 0 && role !== 'ingress' && !data.roles[role]) {
      problems.push(
        `environments.${environment}.hosts.${role}: role "${role}" has hosts but no roles.${role} section${lineSuffix(doc, lineCounter, ['environments', environment, 'hosts', role], true)}`,
      );
    }
    entries.forEach((entry, index) => {
      const host: Host = { name: entry.name, address: entry.address, port: entry.port ?? ssh.port, role };
      if (role === 'fleet') host.workers = entry.workers ?? data.roles.fleet?.workers.count;
      else if (entry.workers !== undefined) {
        problems.push(`environments.${environment}.hosts.${role}[${index}].workers: only fleet hosts have workers`);
      }
      hosts.push(host);
    });
  }
  // one pass with maps: an estate of 40,000 hosts took 15-25 s with a scan per host
  const listed = new Set<string>();
  const addressOf = new Map<string, string>();
  for (const host of hosts) {
    const key = `${host.name}/${host.role}`;
    if (listed.has(key)) problems.push(`environments.${environment}.hosts.${host.role}: host "${host.name}" is listed twice`);
    listed.add(key);
    const first = addressOf.get(host.name);
    if (first === undefined) addressOf.set(host.name, host.address);
    else if (first !== host.address) problems.push(`environments.${environment}.hosts: host "${host.name}" has two addresses (${first}, ${host.address})`);
  }
  if (problems.length > 0) {
    throw new ConfigError(`${file}: ${problems.length} problem(s) in the inventory`, [...new Set(problems)], {
      next: `fix them, then run voxops config check --inventory ${file}`,
    });
  }
  return { file, environment, environments, ssh, lock: data.lock, roles: data.roles, hosts };
}

function resolveSsh(base: string, ...layers: (SshSettings | undefined)[]): ResolvedSsh {
  const merged: ResolvedSsh = { ...sshDefaults };
  for (const layer of layers) {
    if (!layer) continue;
    for (const [key, value] of Object.entries(layer)) {
      if (value !== undefined) (merged as unknown as Record<string, unknown>)[key] = value;
    }
  }
  merged.knownHosts = resolvePath(base, merged.knownHosts);
  if (merged.identityFile) merged.identityFile = resolvePath(base, merged.identityFile);
  return merged;
}

export function resolvePath(base: string, path: string): string {
  if (path === '~') return homedir();
  if (path.startsWith('~/')) return resolve(homedir(), path.slice(2));
  return isAbsolute(path) ? path : resolve(base, path);
}

export function hostsForRole(inventory: Inventory, role: RoleName, only?: readonly string[]): Host[] {
  const hosts = inventory.hosts.filter((h) => h.role === role);
  if (!only || only.length === 0) return hosts;
  const names = new Set(hosts.map((h) => h.name));
  const unknown = only.filter((name) => !names.has(name));
  if (unknown.length > 0) {
    throw new ConfigError(`no ${role} host named ${unknown.join(', ')} in environment ${inventory.environment}`, [], {
      next: `known ${role} hosts: ${hosts.map((h) => h.name).join(', ') || '(none)'}`,
    });
  }
  const wanted = new Set(only);
  return hosts.filter((h) => wanted.has(h.name));
}
