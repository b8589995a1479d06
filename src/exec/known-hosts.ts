import { createHash, createHmac } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';

/** One usable known_hosts entry: the key type and the raw public key blob. */
export interface KnownKey {
  type: string;
  key: Buffer;
}

export interface KnownHostsLookup {
  keys: KnownKey[];
  revoked: KnownKey[];
}

/**
 * How OpenSSH names a host in known_hosts: bare for port 22, `[host]:port` otherwise, lower-cased
 * (ssh lower-cases the host name before it looks it up or hashes it, so LOCALHOST is localhost).
 */
export function knownHostsName(address: string, port: number): string {
  const host = address.toLowerCase();
  return port === 22 ? host : `[${host}]:${port}`;
}

/** `name` is lower-case; so are the patterns OpenSSH compares it with, hashed ones being hashes of lower-case names. */
function matchesPattern(pattern: string, name: string): boolean {
  if (pattern.startsWith('|1|')) {
    const [, , salt, hash] = pattern.split('|');
    if (!salt || !hash) return false;
    const digest = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
    return digest === hash;
  }
  const regex = new RegExp(`^${pattern.toLowerCase().replace(/[.+^$(){}|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  return regex.test(name);
}

function matchesHostField(field: string, name: string): boolean {
  let matched = false;
  for (const pattern of field.split(',')) {
    if (pattern.startsWith('!')) {
      if (matchesPattern(pattern.slice(1), name)) return false;
    } else if (matchesPattern(pattern, name)) {
      matched = true;
    }
  }
  return matched;
}

/** Parse known_hosts text and return the keys recorded for `name` (see knownHostsName). */
export function lookupKnownHosts(text: string, hostName: string): KnownHostsLookup {
  const name = hostName.toLowerCase();
  const keys: KnownKey[] = [];
  const revoked: KnownKey[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    let marker: string | undefined;
    if (fields[0]?.startsWith('@')) marker = fields.shift();
    const [hosts, type, blob] = fields;
    if (!hosts || !type || !blob) continue;
    // @cert-authority lines describe CAs, which voxops does not support; they never match a host key
    if (marker === '@cert-authority') continue;
    if (!matchesHostField(hosts, name)) continue;
    const entry = { type, key: Buffer.from(blob, 'base64') };
    if (marker === '@revoked') revoked.push(entry);
    else keys.push(entry);
  }
  return { keys, revoked };
}

export type HostKeyVerdict = 'known' | 'unknown' | 'changed' | 'revoked';

export function verifyHostKey(lookup: KnownHostsLookup, presented: Buffer): HostKeyVerdict {
  if (lookup.revoked.some((k) => k.key.equals(presented))) return 'revoked';
  if (lookup.keys.some((k) => k.key.equals(presented))) return 'known';
  return lookup.keys.length === 0 ? 'unknown' : 'changed';
}

/** The key type is the first length-prefixed string of the SSH wire-format blob. */
export function keyTypeOf(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const length = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + length).toString('ascii');
}

export function readKnownHosts(file: string): string {
  return existsSync(file) ? readFileSync(file, 'utf8') : '';
}

export function appendKnownHost(file: string, name: string, blob: Buffer): void {
  appendFileSync(file, `${name} ${keyTypeOf(blob)} ${blob.toString('base64')}\n`, { mode: 0o600 });
}

/** OpenSSH-style SHA256 fingerprint, for messages. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}
