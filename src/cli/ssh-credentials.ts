import { accessSync, constants, statSync } from 'node:fs';
import type { Inventory } from '../config/inventory.js';
import type { RoleName } from '../config/schema.js';
import { UsageError } from '../errors.js';
import type { ParsedCommand } from './args.js';
import { ROLE_NAMES, rolesThatCan } from './role-actions.js';

/**
 * SSH needs a key: the inventory's ssh.identityFile, else the agent at SSH_AUTH_SOCK. Without one,
 * every host fails to connect and each is reported unreachable (exit 6), which sends on-call to
 * the network. It is a configuration problem (exit 2): said once, naming the hosts, before any
 * connection. (src/exec/ssh.ts still refuses per host, for callers other than the CLI.)
 */
export function requireSshCredentials(inventory: Inventory, env: NodeJS.ProcessEnv, hosts: readonly string[]): void {
  const forHosts = hosts.length > 0 ? ` for ${hosts.join(', ')}` : '';
  const { identityFile } = inventory.ssh;
  if (identityFile) {
    try {
      accessSync(identityFile, constants.R_OK);
    } catch (error) {
      throw new UsageError(`cannot read the SSH key${forHosts}: ssh.identityFile ${identityFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, {
        next: `fix ssh.identityFile in ${inventory.file}`,
      });
    }
    return;
  }
  const agent = env.SSH_AUTH_SOCK;
  if (!agent) {
    throw new UsageError(`no SSH credentials${forHosts}: ssh.identityFile is not set (environment ${inventory.environment}) and SSH_AUTH_SOCK is empty`, {
      next: `set ssh.identityFile in ${inventory.file}, or start an agent: eval "$(ssh-agent)" && ssh-add (Jenkins: run voxops inside sshagent)`,
    });
  }
  if (!isSocket(agent)) {
    throw new UsageError(`no SSH credentials${forHosts}: ssh.identityFile is not set (environment ${inventory.environment}) and the agent at SSH_AUTH_SOCK=${agent} is gone`, {
      next: 'start an agent: eval "$(ssh-agent)" && ssh-add, or set ssh.identityFile',
    });
  }
}

function isSocket(path: string): boolean {
  try {
    return statSync(path).isSocket();
  } catch {
    return false;
  }
}

/** The hosts a command connects to, for that message: its roles' hosts, narrowed by --hosts/--host. */
export function hostsToConnect(parsed: ParsedCommand, inventory: Inventory): string[] {
  const roles = rolesOf(parsed);
  const only = 'host' in parsed ? [parsed.host] : 'hosts' in parsed ? parsed.hosts : undefined;
  const hosts = inventory.hosts.filter((h) => roles.includes(h.role) && (!only || only.includes(h.name)));
  return [...new Set(hosts.map((h) => h.name))];
}

function rolesOf(parsed: ParsedCommand): readonly RoleName[] {
  switch (parsed.command) {
    case 'deploy':
    case 'restart':
      return parsed.role === 'all' ? rolesThatCan(parsed.command) : [parsed.role];
    case 'rollback':
      return parsed.roles.length > 0 ? parsed.roles : rolesThatCan('rollback');
    case 'status':
    case 'health':
      return parsed.roles.length > 0 ? parsed.roles : ROLE_NAMES;
    case 'scale':
    case 'logs':
      return [parsed.role];
    case 'ingress-add-fleet':
    case 'ingress-remove-fleet':
      return ['ingress'];
    case 'history':
    case 'lock-status':
    case 'lock-release':
    case 'config-check':
      return ROLE_NAMES;
  }
}
