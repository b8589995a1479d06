import { createHmac, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  describeHostKeyRefusal,
  fingerprint,
  keyTypeOf,
  knownHostsName,
  lookupKnownHosts,
  verifyHostKey,
} from '../../src/exec/known-hosts.js';

/** An ssh-ed25519 wire blob: string "ssh-ed25519", string key(32). */
function ed25519Blob(): Buffer {
  const raw = generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const type = Buffer.from('ssh-ed25519');
  const len = (b: Buffer) => Buffer.from([0, 0, 0, b.length]);
  return Buffer.concat([len(type), type, len(raw), raw]);
}

function hashed(name: string): string {
  const salt = Buffer.from('0123456789abcdef0123');
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
}

describe('known_hosts', () => {
  const key = ed25519Blob();
  const other = ed25519Blob();
  const line = (hosts: string, blob = key) => `${hosts} ssh-ed25519 ${blob.toString('base64')}`;

  it('names non-standard ports the way OpenSSH does', () => {
    expect(knownHostsName('10.0.0.1', 22)).toBe('10.0.0.1');
    expect(knownHostsName('10.0.0.1', 2222)).toBe('[10.0.0.1]:2222');
  });

  it('verifies plain, listed, wildcard and hashed entries', () => {
    for (const text of [line('10.0.0.1'), line('fleet1,10.0.0.1'), line('10.0.0.*'), line(hashed('10.0.0.1'))]) {
      expect(verifyHostKey(lookupKnownHosts(`# comment\n${text}\n`, '10.0.0.1'), key), text).toBe('known');
    }
    expect(keyTypeOf(key)).toBe('ssh-ed25519');
  });

  it('tells unknown from changed from revoked', () => {
    expect(verifyHostKey(lookupKnownHosts(line('10.0.0.2'), '10.0.0.1'), key)).toBe('unknown');
    expect(verifyHostKey(lookupKnownHosts(line('10.0.0.1', other), '10.0.0.1'), key)).toBe('changed');
    expect(verifyHostKey(lookupKnownHosts(line('[10.0.0.1]:2222'), '10.0.0.1'), key)).toBe('unknown');
    expect(verifyHostKey(lookupKnownHosts(`${line('10.0.0.1')}\n@revoked ${line('*')}`, '10.0.0.1'), key)).toBe('revoked');
    expect(verifyHostKey(lookupKnownHosts(line('10.0.0.*,!10.0.0.1'), '10.0.0.1'), key)).toBe('unknown');
  });

  it('matches host names without regard to case, as OpenSSH does (hashed names too)', () => {
    // an inventory address LOCALHOST must find the key recorded for localhost: a different key is a change, not a new host
    const name = knownHostsName('LOCALHOST', 22);
    expect(name).toBe('localhost');
    expect(knownHostsName('Fleet1.Example.COM', 2222)).toBe('[fleet1.example.com]:2222');
    for (const recorded of ['localhost', 'LocalHost', hashed('localhost'), '*.LOCALDOMAIN,localhost']) {
      expect(verifyHostKey(lookupKnownHosts(line(recorded), name), key), recorded).toBe('known');
      expect(verifyHostKey(lookupKnownHosts(line(recorded), name), other), recorded).toBe('changed');
    }
    expect(verifyHostKey(lookupKnownHosts(line('localhost'), 'LOCALHOST'), other)).toBe('changed');
    expect(verifyHostKey(lookupKnownHosts(line('*.example.com'), 'FLEET1.EXAMPLE.COM'), key)).toBe('known');
    expect(verifyHostKey(lookupKnownHosts(line('10.0.0.*,!LOCALHOST'), 'localhost'), key)).toBe('unknown');
  });

  it('never trusts a key behind an unknown marker (a typo of @revoked is not a trusted key)', () => {
    for (const marker of ['@revoke', '@Revoked', '@cert-authorit', '@']) {
      expect(verifyHostKey(lookupKnownHosts(`${marker} ${line('10.0.0.1')}`, '10.0.0.1'), key), marker).toBe('unknown');
      expect(verifyHostKey(lookupKnownHosts(`${line('10.0.0.1', other)}\n${marker} ${line('10.0.0.1')}`, '10.0.0.1'), key), marker).toBe(
        'changed',
      );
    }
  });

  it('does not count a host covered only by @cert-authority as new: voxops does not verify certificates', () => {
    const ca = `@cert-authority ${line('*.example.com', other)}`;
    const lookup = lookupKnownHosts(ca, 'fleet1.example.com');
    expect(verifyHostKey(lookup, key)).toBe('cert-authority-only');
    expect(verifyHostKey(lookup, other)).toBe('cert-authority-only');
    // a plain key line for the host decides, CA or not
    expect(verifyHostKey(lookupKnownHosts(`${ca}\n${line('fleet1.example.com')}`, 'fleet1.example.com'), key)).toBe('known');
    expect(verifyHostKey(lookupKnownHosts(`${ca}\n${line('fleet1.example.com')}`, 'fleet1.example.com'), other)).toBe('changed');
    expect(verifyHostKey(lookupKnownHosts(ca, 'fleet1.example.org'), key)).toBe('unknown');
    const refusal = describeHostKeyRefusal('cert-authority-only', {
      target: 'fleet1',
      name: 'fleet1.example.com',
      presented: key,
      knownHosts: '/k',
    });
    expect(refusal.message).toBe(
      `fleet1 (fleet1.example.com): host key ssh-ed25519 ${fingerprint(key)} is covered only by a @cert-authority line in /k, and voxops does not verify host certificates`,
    );
    expect(refusal.next).toMatch(/^verify the fingerprint out of band, then add a plain key line for fleet1\.example\.com to \/k/);
    expect(refusal.next).not.toMatch(/accept-new-host-keys/);
  });

  it('tells the operator what to do for a new, changed or revoked key', () => {
    const facts = { target: 'fleet1', name: '[10.0.0.1]:2222', presented: key, knownHosts: '/k' };
    expect(describeHostKeyRefusal('unknown', facts).next).toMatch(/--accept-new-host-keys/);
    expect(describeHostKeyRefusal('changed', facts).message).toMatch(/CHANGED/);
    expect(describeHostKeyRefusal('changed', facts).next).toContain("ssh-keygen -R '[10.0.0.1]:2222' -f /k");
    expect(describeHostKeyRefusal('revoked', facts).message).toMatch(/@revoked/);
  });
});
