import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { all, any, argv, inDir } from '../../src/exec/command.js';
import { LocalExecutor } from '../../src/exec/local.js';
import { runLocal } from '../../src/exec/local.js';
import { quoteWord, renderCommand, withSudo } from '../../src/exec/render.js';

const hostile = [
  '',
  ' ',
  'two words',
  "it's",
  "'",
  "''",
  '"double"',
  '$(touch /tmp/pwned)',
  '`id`',
  '$HOME',
  '${IFS}',
  'a;b',
  'a && b',
  'a | b',
  'line1\nline2',
  '\ttab',
  '--upload-pack=evil',
  '-rf',
  '*',
  '~',
  '#comment',
  'naïve ☎ 通话',
  '\\',
  'back\\slash\\',
  '!event',
  '>out',
  '<in',
  '&',
];

const local = await new LocalExecutor().connect({ name: 'local', address: '127.0.0.1', port: 22, role: 'fleet' });

/** Echo the words back through a real /bin/sh (the executor's local backend), NUL-separated, so the round trip is exact. */
async function roundTrip(words: string[]): Promise<string[]> {
  const result = await local.run({ name: 'echo words', command: argv('printf', '%s\\0', ...words) });
  return result.stdout.split('\0').slice(0, -1);
}

describe('quoteWord / renderCommand', () => {
  it('leaves plain words alone and single-quotes the rest', () => {
    expect(quoteWord('voxcore@2')).toBe('voxcore@2');
    expect(quoteWord('/tmp/voxcore_1.sock')).toBe('/tmp/voxcore_1.sock');
    expect(quoteWord('')).toBe("''");
    expect(quoteWord("it's")).toBe(`'it'\\''s'`);
    expect(quoteWord('$(id)')).toBe(`'$(id)'`);
  });

  it('survives every hostile string through a real sh unchanged', async () => {
    expect(await roundTrip(hostile)).toEqual(hostile);
  });

  it('survives arbitrary strings (property test)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc
            .string({
              unit: fc.oneof(
                fc.constantFrom("'", '"', '$', '`', '\\', ';', '\n', ' ', '(', ')', '*', '~', '-'),
                fc.string({ unit: 'grapheme', maxLength: 1 }),
              ),
            })
            .filter((s) => !s.includes('\0')),
          { minLength: 1, maxLength: 6 },
        ),
        async (words) => {
          expect(await roundTrip(words)).toEqual(words);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('renders combinators with grouping', () => {
    const cmd = all(argv('mkdir', '-p', '/var/lib/voxops'), any(argv('ln', 'a b', 'c'), all(argv('rm', '-f', 'a b'), argv('false'))));
    expect(renderCommand(cmd)).toBe("mkdir -p /var/lib/voxops && { ln 'a b' c || { rm -f 'a b' && false; }; }");
    expect(renderCommand(inDir('/opt/my app', argv('sh', 'scripts/install.sh')))).toBe("cd '/opt/my app' && sh scripts/install.sh");
  });

  it('runs combinators with the meaning sh gives them', async () => {
    const ok = await runLocal(renderCommand(any(argv('false'), argv('printf', 'fallback'))), undefined, 5_000);
    expect(ok.stdout).toBe('fallback');
    const stopped = await runLocal(renderCommand(all(argv('false'), argv('printf', 'never'))), undefined, 5_000);
    expect(stopped.exitCode).toBe(1);
    expect(stopped.stdout).toBe('');
  });

  it('quotes a whole command once more for sudo, and it still round-trips', async () => {
    const inner = renderCommand(argv('printf', '%s\\0', "it's", '$(id)'));
    const wrapped = withSudo(inner);
    expect(wrapped.startsWith('sudo -n -- sh -c ')).toBe(true);
    // run the wrapped string without sudo itself: the sh -c layer is what the quoting must survive
    const result = await runLocal(wrapped.replace(/^sudo -n -- /, ''), undefined, 5_000);
    expect(result.stdout.split('\0').slice(0, -1)).toEqual(["it's", '$(id)']);
  });
});
