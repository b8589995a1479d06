import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { haproxyAlerts } from '../../src/commands/haproxy.js';
import { nginxErrorLines } from '../../src/commands/nginx.js';
import { parseHealthProbe } from '../../src/commands/worker.js';
import { lastLine, RemoteCommandError, tail } from '../../src/errors.js';
import { hasControlCharacter, sanitizeRemoteText } from '../../src/text.js';
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
    const unit = fc.oneof(fc.constantFrom(ESC, '[', ']', '\\', '\u0007', '\u009b', '\u009c', '\r', '\n', '\t', '\u202e', ';', '0', 'm', 'P'), anyCharacter);
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
    expect(nginxErrorLines(`${ESC}]0;x\u0007nginx: [emerg] unknown directive "${ESC}[8mserver"`)).toBe('nginx: [emerg] unknown directive "server"');
    expect(haproxyAlerts(`[ALERT]    (1) : config : ${ESC}[2Jbad line\n`)).toEqual(['config : bad line']);
    expect(parseHealthProbe('\n000', `curl: (7) ${ESC}[31mFailed to connect`).error).toBe('curl: (7) Failed to connect');
    expect(parseHealthProbe(`${ESC}[2J<html>\n502`).error).toBe('not JSON: <html>');
  });
});
