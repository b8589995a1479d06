/**
 * What text may go where: the checks the inventory schema and the config renderers share, so a
 * value the schema accepts is one every renderer can write without it adding a line or a directive.
 */

/** C0 (NUL included), DEL and C1, and the invisible format characters that reorder or hide text on a screen. */
const controlCharacter = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/;

export function hasControlCharacter(text: string): boolean {
  return controlCharacter.test(text);
}

/** One token of a config line or a command line: not empty, no control character, no whitespace of any script. */
export function isConfigWord(text: string): boolean {
  return text.length > 0 && !hasControlCharacter(text) && !/[\s\p{Z}]/u.test(text);
}
