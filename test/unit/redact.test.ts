import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { lastLine, tail } from '../../src/errors.js';
import { redactSecrets, redactUrl } from '../../src/redact.js';

describe('redactUrl', () => {
  it.each([
    ['https://deploy:s3cr3t@git.example.com/voice/vox-agents.git', 'https://deploy:***@git.example.com/voice/vox-agents.git'],
    ['https://ghp_abcdef0123456789@github.com/org/repo.git', 'https://***@github.com/org/repo.git'],
    ['https://x-access-token:ghs_tok@github.com/org/repo.git', 'https://x-access-token:***@github.com/org/repo.git'],
    ['http://user:p@ss@host:8080/r.git', 'http://user:***@host:8080/r.git'],
    ['https://gitlab.example.com/r.git?private_token=glpat-123&ref=main', 'https://gitlab.example.com/r.git?private_token=***&ref=main'],
    ['https://s3.example.com/b/r.tar?X-Amz-Credential=AKIA/x&X-Amz-Signature=abc&v=1', 'https://s3.example.com/b/r.tar?X-Amz-Credential=***&X-Amz-Signature=***&v=1'],
    ['https://h/r#access_token=abc', 'https://h/r#access_token=***'],
    ['ssh://git@bitbucket.org/oriserve1/vox-agents.git', 'ssh://git@bitbucket.org/oriserve1/vox-agents.git'],
    ['ssh://git:pw@host/r.git', 'ssh://git:***@host/r.git'],
    ['git@bitbucket.org:oriserve1/vox-agents.git', 'git@bitbucket.org:oriserve1/vox-agents.git'],
    ['../mirrors/vox-agents.git', '../mirrors/vox-agents.git'],
    ['https://git.example.com/voice/vox-agents.git', 'https://git.example.com/voice/vox-agents.git'],
  ])('%s -> %s', (url, shown) => {
    expect(redactUrl(url)).toBe(shown);
  });
});

describe('redactUrl never shows the password', () => {
  it('whatever the user, password, host and path', () => {
    const part = (pattern: RegExp) => fc.stringMatching(pattern);
    fc.assert(
      fc.property(part(/^[A-Za-z0-9._~-]{1,12}$/), part(/^[A-Za-z0-9._~!$&'()*+,;=:@%-]{1,20}$/), part(/^[a-z0-9.-]{1,20}$/), part(/^[A-Za-z0-9._~\/-]{0,20}$/), (user, password, host, path) => {
        const shown = redactUrl(`https://${user}:${password}@${host}/${path}`);
        return shown === `https://${user}:***@${host}/${path}`;
      }),
      { numRuns: 200 },
    );
  });
});

describe('redactSecrets', () => {
  it('redacts every URL in free text, and Authorization headers', () => {
    expect(redactSecrets("Cloning into bare repository...\nfatal: unable to access 'https://deploy:s3cr3t@git.example.com/r.git/': Could not resolve host")).toBe(
      "Cloning into bare repository...\nfatal: unable to access 'https://deploy:***@git.example.com/r.git/': Could not resolve host",
    );
    expect(redactSecrets('GET https://h/x?token=abc and https://u:pw@h2/y')).toBe('GET https://h/x?token=*** and https://u:***@h2/y');
    expect(redactSecrets('> Authorization: Bearer eyJhbGciOi.x.y\n> authorization: basic dXNlcjpwdw==')).toBe('> Authorization: Bearer ***\n> authorization: basic ***');
    expect(redactSecrets('nothing secret at v1.5.0')).toBe('nothing secret at v1.5.0');
  });

  it('is applied to remote text that becomes a message', () => {
    const stderr = "fatal: unable to access 'https://oauth2:glpat-xyz@gitlab.example.com/voice/api.git/': The requested URL returned error: 403\n";
    expect(lastLine(stderr)).toBe("fatal: unable to access 'https://oauth2:***@gitlab.example.com/voice/api.git/': The requested URL returned error: 403");
    expect(tail(stderr)).not.toContain('glpat-xyz');
  });
});
