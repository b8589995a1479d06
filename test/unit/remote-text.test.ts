import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { haproxyAlerts } from '../../src/commands/haproxy.js';
import { nginxErrorLines } from '../../src/commands/nginx.js';
import { parseHealthProbe } from '../../src/commands/worker.js';
import { lastLine, RemoteCommandError, tail } from '../../src/errors.js';
import { redactSecrets, redactUrl } from '../../src/redact.js';
import { hasControlCharacter, printableQuoted, sanitizeRemoteText } from '../../src/text.js';
import { anyCharacter } from './arbitraries.js';

const ESC = '\u001b';

describe('sanitizeRemoteText: what a host printed, safe to show on a terminal', () => {
  it.each([
    [`${ESC}[31mred${ESC}[0m plain`, 'red plain'],
    [`${ESC}[2J${ESC}[Hcleared`, 'cleared'],
    [`${ESC}[1A${ESC}[2Kover the line above`, 'over the line above'],
    [`${ESC}]0;pwned title\u0007after`, 'after'],
    [`${ESC}]8;;http://evil.example/${ESC}\\click${ESC}]8;;${ESC}\\`, 'click'],
    [`${ESC}P+q544e${ESC}\\dcs`, 'dcs'],
    [`${ESC}(Bcharset ${ESC}c reset`, 'charset  reset'],
    ['\u009b31m8-bit csi\u009b0m', '8-bit csi'],
    ['fake ok\rreal error', 'fake ok\nreal error'],
    ['windows\r\nline', 'windows\nline'],
    ['bell\u0007 nul\u0000 backspace\b del\u007f', 'bell nul backspace del'],
    ['keeps\ttabs\nand newlines', 'keeps\ttabs\nand newlines'],
    ['bidi \u202etxt.exe\u202c swap', 'bidi txt.exe swap'],
    ['naïve ☎ 通话 ✓', 'naïve ☎ 通话 ✓'],
    [`${ESC}]0;unterminated title`, '0;unterminated title'],
  ])('%j -> %j', (raw, shown) => {
    expect(sanitizeRemoteText(raw)).toBe(shown);
  });

  it('leaves no control character but newline and tab, whatever the input, and is idempotent', () => {
    const unit = fc.oneof(
      fc.constantFrom(ESC, '[', ']', '\\', '\u0007', '\u009b', '\u009c', '\r', '\n', '\t', '\u202e', ';', '0', 'm', 'P'),
      anyCharacter,
    );
    fc.assert(
      fc.property(fc.string({ unit, maxLength: 40 }), (raw) => {
        const shown = sanitizeRemoteText(raw);
        return !hasControlCharacter(shown.replace(/[\n\t]/g, '')) && sanitizeRemoteText(shown) === shown;
      }),
      { numRuns: 300 },
    );
  });
});

describe('errors built from remote output', () => {
  const stderr = `warning: x\n${ESC}]0;owned${ESC}\\${ESC}[31mfatal: ${ESC}[1mno such ref${ESC}[0m\r\n`;

  it('lastLine and tail strip terminal escapes', () => {
    expect(lastLine(stderr)).toBe('fatal: no such ref');
    expect(tail(stderr, 2)).toBe('warning: x\nfatal: no such ref');
  });

  it('a failed remote command says what failed without the escapes', () => {
    const error = new RemoteCommandError({ host: 'fleet1', step: 'git fetch', command: 'git fetch', exitCode: 128, stdout: '', stderr });
    expect(error.message).toBe('fleet1: git fetch failed (exit 128): fatal: no such ref');
  });
});

describe('builders that turn remote output into message text', () => {
  it('strip the escapes from nginx -t, haproxy -c and curl errors', () => {
    expect(nginxErrorLines(`${ESC}]0;x\u0007nginx: [emerg] unknown directive "${ESC}[8mserver"`)).toBe(
      'nginx: [emerg] unknown directive "server"',
    );
    expect(haproxyAlerts(`[ALERT]    (1) : config : ${ESC}[2Jbad line\n`)).toEqual(['config : bad line']);
    expect(parseHealthProbe('\n000', `curl: (7) ${ESC}[31mFailed to connect`).error).toBe('curl: (7) Failed to connect');
    expect(parseHealthProbe(`${ESC}[2J<html>\n502`).error).toBe('not JSON: <html>');
  });
});

describe('a /health body keeps a known field only when it has its type', () => {
  const probe = (body: unknown) => parseHealthProbe(`${JSON.stringify(body)}\n200`).body;

  it('keeps well-typed fields and what it does not know', () => {
    const body = { status: 'ok', version: 'v1.2.3', pid: 7, active_calls: 0, max_calls: 1, uptime: 3 };
    expect(probe(body)).toEqual(body);
  });

  it.each([
    [{ active_calls: '1' }, {}],
    [{ active_calls: -1, max_calls: 1.5, pid: 0 }, {}],
    [{ pid: '42' }, {}],
    [{ version: `v1${ESC}[2J`, status: 'x'.repeat(101) }, { version: 'v1' }],
    [{ version: 1 }, {}],
  ])('%j → %j', (body, kept) => {
    expect(probe(body)).toEqual(kept);
  });
});

describe('redactUrl', () => {
  it.each([
    ['https://deploy:s3cr3t@git.example.com/voice/vox-agents.git', 'https://deploy:***@git.example.com/voice/vox-agents.git'],
    ['https://ghp_abcdef0123456789@github.com/org/repo.git', 'https://***@github.com/org/repo.git'],
    ['https://x-access-token:ghs_tok@github.com/org/repo.git', 'https://x-access-token:***@github.com/org/repo.git'],
    ['http://user:p@ss@host:8080/r.git', 'http://user:***@host:8080/r.git'],
    ['https://gitlab.example.com/r.git?private_token=glpat-123&ref=main', 'https://gitlab.example.com/r.git?private_token=***&ref=main'],
    [
      'https://s3.example.com/b/r.tar?X-Amz-Credential=AKIA/x&X-Amz-Signature=abc&v=1',
      'https://s3.example.com/b/r.tar?X-Amz-Credential=***&X-Amz-Signature=***&v=1',
    ],
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
      fc.property(
        part(/^[A-Za-z0-9._~-]{1,12}$/),
        part(/^[A-Za-z0-9._~!$&'()*+,;=:@%-]{1,20}$/),
        part(/^[a-z0-9.-]{1,20}$/),
        part(/^[A-Za-z0-9._~\/-]{0,20}$/),
        (user, password, host, path) => {
          const shown = redactUrl(`https://${user}:${password}@${host}/${path}`);
          return shown === `https://${user}:***@${host}/${path}`;
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('redactSecrets', () => {
  it('redacts every URL in free text, and Authorization headers', () => {
    expect(
      redactSecrets(
        "Cloning into bare repository...\nfatal: unable to access 'https://deploy:s3cr3t@git.example.com/r.git/': Could not resolve host",
      ),
    ).toBe("Cloning into bare repository...\nfatal: unable to access 'https://deploy:***@git.example.com/r.git/': Could not resolve host");
    expect(redactSecrets('GET https://h/x?token=abc and https://u:pw@h2/y')).toBe('GET https://h/x?token=*** and https://u:***@h2/y');
    expect(redactSecrets('> Authorization: Bearer eyJhbGciOi.x.y\n> authorization: basic dXNlcjpwdw==')).toBe(
      '> Authorization: Bearer ***\n> authorization: basic ***',
    );
    expect(redactSecrets('nothing secret at v1.5.0')).toBe('nothing secret at v1.5.0');
  });

  it('is applied to remote text that becomes a message', () => {
    const stderr =
      "fatal: unable to access 'https://oauth2:glpat-xyz@gitlab.example.com/voice/api.git/': The requested URL returned error: 403\n";
    expect(lastLine(stderr)).toBe(
      "fatal: unable to access 'https://oauth2:***@gitlab.example.com/voice/api.git/': The requested URL returned error: 403",
    );
    expect(tail(stderr)).not.toContain('glpat-xyz');
  });
});

describe('printableQuoted', () => {
  it('JSON-quotes text from elsewhere with every control and format character escaped (JSON.stringify leaves C1 and bidi as they are)', () => {
    expect(printableQuoted('main\u001b]0;x\u0007')).toBe('"main\\u001b]0;x\\u0007"');
    expect(printableQuoted('v1\u202e0.5.1v')).toBe('"v1\\u202e0.5.1v"');
    expect(printableQuoted('\u009b2J')).toBe('"\\u009b2J"');
    expect(printableQuoted('naïve "x" \\')).toBe('"naïve \\"x\\" \\\\"');
  });
});
