/**
 * What text may go where: the checks the inventory schema and the config renderers share, so a
 * value the schema accepts is one every renderer can write without it adding a line or a directive.
 */

/** C0 (NUL included), DEL and C1, and the invisible format characters that reorder or hide text on a screen. */
const controlCharacter = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/;

export function hasControlCharacter(text: string): boolean {
  return controlCharacter.test(text);
}

/**
 * Text from elsewhere (a host, an argument), JSON-quoted for a message, with every control and
 * format character escaped: JSON.stringify alone leaves C1 (an 8-bit CSI) and bidi overrides raw.
 */
export function printableQuoted(text: string): string {
  return JSON.stringify(text).replace(new RegExp(`${controlCharacter.source}|[\u2028\u2029]`, 'g'), (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** One token of a config line or a command line: not empty, no control character, no whitespace of any script. */
export function isConfigWord(text: string): boolean {
  return text.length > 0 && !hasControlCharacter(text) && !/[\s\p{Z}]/u.test(text);
}

/**
 * Terminal escape sequences (ECMA-48): CSI (`ESC [` or 8-bit 0x9b, parameters, a final byte);
 * OSC, DCS, SOS, PM and APC strings up to BEL or ST (a window title, a hyperlink), bounded so an
 * unterminated one costs no backtracking; any other `ESC` + intermediates + final byte. What is
 * not a whole sequence loses its ESC below and shows as plain text.
 */
const terminalEscape =
  /\u001b\[[0-?]*[ -/]*[@-~]|\u009b[0-?]*[ -/]*[@-~]|(?:\u001b[\]PX^_]|[\u0090\u0098\u009d\u009e\u009f])[^\u0007\u001b\u009c]{0,4096}(?:\u0007|\u001b\\|\u009c)|\u001b[ -/]*[0-~]/g;
const controlCharacters = new RegExp(controlCharacter.source, 'g');

/**
 * Text a host printed (stderr, a journal, a config file), made safe to show on an operator's
 * terminal or in a CI log: no escape sequence can recolour, retitle, move the cursor or hide
 * text, and no other control character is left but newline and tab (a lone carriage return,
 * which would let a later line overwrite an earlier one, becomes a newline).
 */
export function sanitizeRemoteText(text: string): string {
  return text
    .replace(terminalEscape, '')
    .replace(/\r\n?/g, '\n')
    .replace(controlCharacters, (c) => (c === '\n' || c === '\t' ? c : ''));
}
