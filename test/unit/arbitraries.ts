import fc from 'fast-check';

/**
 * Any Unicode scalar value. fc's own `unit: 'binary'` costs ~0.7 s on first use under vitest;
 * this costs nothing and covers the same characters.
 */
export const anyCharacter = fc
  .integer({ min: 0, max: 0x10ffff })
  .filter((c) => c < 0xd800 || c > 0xdfff)
  .map((c) => String.fromCodePoint(c));

/** What attacks a config line or a command line: line breaks, NUL, quotes, substitutions, separators, comments, blocks, escapes, bidi. */
export const hostileFragment = fc.constantFrom(
  '\n',
  '\r',
  '\r\n',
  '\0',
  '\t',
  ' ',
  '\u00a0',
  '\u2028',
  '\u0085',
  '\u202e',
  '\u001b[2J',
  '\u001b]0;x\u0007',
  '"',
  "'",
  '`',
  '\\',
  '\\"',
  '$(id)',
  '${HOME}',
  '$HOME',
  '%h',
  '%%',
  ';',
  '&&',
  '|',
  '#',
  '{',
  '}',
  '{i}',
  '=',
  '*',
  '-',
  '--',
  '@',
  ':',
  '/',
  '..',
  '[',
  ']',
  'é',
  '通话',
);

/** A string of ordinary characters, hostile fragments and anything at all. */
export function hostileString(maxParts = 8): fc.Arbitrary<string> {
  const part = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom('a', 'b', 'Z', '1', '.', '_') },
    { weight: 2, arbitrary: hostileFragment },
    { weight: 1, arbitrary: anyCharacter },
  );
  return fc.array(part, { maxLength: maxParts }).map((parts) => parts.join(''));
}

/** A valid value with a hostile string put somewhere inside it: mostly the right shape, so a schema gap shows. */
export function spliced(valid: string): fc.Arbitrary<string> {
  return fc.tuple(hostileString(4), fc.nat({ max: valid.length })).map(([bad, at]) => `${valid.slice(0, at)}${bad}${valid.slice(at)}`);
}
