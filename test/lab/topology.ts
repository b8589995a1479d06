import { readFileSync } from 'node:fs';
import { labPath } from './paths.js';
// The default lab topology (CONTRACT.md) and its `--fleets N --workers M` variants.
export type Role = 'git' | 'api' | 'fleet' | 'dialler' | 'ingress';

export interface LabHost {
  name: string;
  role: Role;
  address: string;
  /** Roles served by this host in the voxops inventory (the api host also serves the console). */
  roles: string[];
  workers?: number;
}

export interface Topology {
  fleets: number;
  workers: number;
  hosts: LabHost[];
}

export const MAX_FLEETS = 40;
export const MAX_WORKERS = 32;

export function fleetAddress(i: number): string {
  // fleet1..9 at .11-.19 as in the contract; larger labs continue at .101+.
  return i <= 9 ? `10.231.0.${10 + i}` : `10.231.0.${100 + i}`;
}

export function makeTopology(fleets = 2, workers = 4): Topology {
  if (!Number.isInteger(fleets) || fleets < 1 || fleets > MAX_FLEETS) throw new Error(`--fleets must be 1..${MAX_FLEETS}`);
  if (!Number.isInteger(workers) || workers < 1 || workers > MAX_WORKERS) throw new Error(`--workers must be 1..${MAX_WORKERS}`);
  const hosts: LabHost[] = [{ name: 'git', role: 'git', address: '10.231.0.10', roles: [] }];
  for (let i = 1; i <= fleets; i++) {
    hosts.push({ name: `fleet${i}`, role: 'fleet', address: fleetAddress(i), roles: ['fleet'], workers });
  }
  hosts.push(
    { name: 'api', role: 'api', address: '10.231.0.20', roles: ['api', 'console'] },
    { name: 'dialler', role: 'dialler', address: '10.231.0.30', roles: ['dialler'] },
    { name: 'ingress', role: 'ingress', address: '10.231.0.40', roles: ['ingress'] },
  );
  return { fleets, workers, hosts };
}

export const GIT_ADDRESS = '10.231.0.10';
export const repoUrl = (repo: string) => `git@${GIT_ADDRESS}:/srv/git/${repo}.git`;
export const REPOS = ['fleet', 'api', 'dialler', 'console'] as const;
export const BASE_TAG = 'v1.4.2';

/** Which release repo is checked out where, per role. */
export const CHECKOUTS: Record<Role, { repo: string; path: string }[]> = {
  git: [],
  fleet: [{ repo: 'fleet', path: '/opt/voxcore' }],
  api: [
    { repo: 'api', path: '/opt/voxbridge' },
    { repo: 'console', path: '/opt/voxconsole' },
  ],
  dialler: [{ repo: 'dialler', path: '/opt/voxdialler' }],
  ingress: [],
};

/** [host, path, repo] of every release checkout in the current lab (.lab/lab.json). */
export function labCheckouts(hosts?: { name: string; role: string }[]): [string, string, string][] {
  const list = hosts ?? (JSON.parse(readFileSync(labPath('lab.json'), 'utf8')) as { hosts: { name: string; role: string }[] }).hosts;
  return list.flatMap((h) => (CHECKOUTS[h.role as Role] ?? []).map((c): [string, string, string] => [h.name, c.path, c.repo]));
}
