/**
 * Text that reaches a report comes from remote hosts (stderr tails, journal lines), so it can hold
 * terminal colour codes and raw control bytes. XML 1.0 (section 2.2) forbids most C0 controls even
 * as character references, and one of them makes Jenkins' junit step reject the whole file.
 */

// ESC-introduced sequences as a terminal consumes them (CSI, OSC, two-byte): noise once in a file
const TERMINAL_SEQUENCE = /\u001b(?:\[[0-?]*[ -/]*[@-~]|\][^\u0007\u001b]*(?:\u0007|\u001b\\)?|[@-Z\\-_])?/g;
// C0 controls other than TAB, LF, CR; U+FFFE and U+FFFF; a surrogate without its pair
const NOT_XML_CHAR =
  /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** The replacement the reader sees where a character could not be kept. */
export const REPLACEMENT = '\ufffd';

/** Terminal sequences removed, every character XML 1.0 forbids replaced: safe for any report format. */
export function printable(text: string): string {
  return text.replace(TERMINAL_SEQUENCE, '').replace(NOT_XML_CHAR, REPLACEMENT);
}

/** One line, for attributes and table cells: a newline in an attribute is normalised away by parsers anyway. */
export function oneLine(text: string, max = 300): string {
  const line = printable(text)
    .replace(/\s*\n\s*/g, ' / ')
    .replace(/\s+/g, ' ')
    .trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

export const seconds = (ms: number | undefined): number => (ms === undefined ? 0 : ms / 1000);

/** A duration the way an on-call engineer reads it: 0.30 s, 42.0 s, 3 min 05 s, 1 h 02 min. */
export function duration(ms: number): string {
  if (ms < 10_000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  const totalSeconds = Math.round(ms / 1000);
  if (totalSeconds < 3600) return `${Math.floor(totalSeconds / 60)} min ${String(totalSeconds % 60).padStart(2, '0')} s`;
  const minutes = Math.round(totalSeconds / 60);
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} min`;
}
