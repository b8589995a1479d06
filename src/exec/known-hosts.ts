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
  /** CA keys whose @cert-authority line covers the host: voxops does not verify certificates, so these trust nothing */
  certAuthorities: KnownKey[];
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
  const found: KnownHostsLookup = { keys: [], revoked: [], certAuthorities: [] };
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    const marker = fields[0]?.startsWith('@') ? fields.shift() : undefined;
    const [hosts, type, blob] = fields;
    if (!hosts || !type || !blob || !matchesHostField(hosts, name)) continue;
    const entry = { type, key: Buffer.from(blob, 'base64') };
    // as in OpenSSH, a line with a marker it does not know is invalid: a typo of @revoked must not read as a trusted key
    if (marker === undefined) found.keys.push(entry);
    else if (marker === '@revoked') found.revoked.push(entry);
    else if (marker === '@cert-authority') found.certAuthorities.push(entry);
  }
  return found;
}

/**
 * `cert-authority-only`: no plain key for the host, but a CA covers it. voxops does not verify
 * certificates, so such a host is neither known nor new: trusting whatever key it presents
 * (--accept-new-host-keys) would skip the check the CA line was written for.
 */
export type HostKeyVerdict = 'known' | 'unknown' | 'changed' | 'revoked' | 'cert-authority-only';

export function verifyHostKey(lookup: KnownHostsLookup, presented: Buffer): HostKeyVerdict {
  if (lookup.revoked.some((k) => k.key.equals(presented))) return 'revoked';
  if (lookup.keys.some((k) => k.key.equals(presented))) return 'known';
  if (lookup.keys.length > 0) return 'changed';
  return lookup.certAuthorities.length > 0 ? 'cert-authority-only' : 'unknown';
}

export interface HostKeyFacts {
  /** the host as the inventory names it (or "jump host X") */
  target: string;
  /** its known_hosts name (knownHostsName) */
  name: string;
  presented?: Buffer;
  knownHosts: string;
}

/** Why a host key was refused, and what the operator runs next. */
export function describeHostKeyRefusal(verdict: Exclude<HostKeyVerdict, 'known'>, facts: HostKeyFacts): { message: string; next: string } {
  const key = facts.presented ? `${keyTypeOf(facts.presented)} ${fingerprint(facts.presented)}` : 'its key';
  const why = {
    unknown: `is not in ${facts.knownHosts}`,
    changed: `does not match the key recorded in ${facts.knownHosts}: it CHANGED (possible man-in-the-middle, or the host was rebuilt)`,
    revoked: 'is marked @revoked in known_hosts',
    'cert-authority-only': `is covered only by a @cert-authority line in ${facts.knownHosts}, and voxops does not verify host certificates`,
  }[verdict];
  const removeOld = `verify the new fingerprint out of band, then remove the old entry: ssh-keygen -R '${facts.name}' -f ${facts.knownHosts}`;
  const next = {
    unknown: 'verify the fingerprint out of band, then re-run with --accept-new-host-keys',
    changed: removeOld,
    revoked: removeOld,
    'cert-authority-only': `verify the fingerprint out of band, then add a plain key line for ${facts.name} to ${facts.knownHosts} (ssh-keyscan prints one)`,
  }[verdict];
  return { message: `${facts.target} (${facts.name}): host key ${key} ${why}`, next };
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
