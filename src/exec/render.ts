import type { Command } from './command.js';

/**
 * POSIX single-quote one word. Every `sh` (dash, bash, busybox) reads this the same way: inside
 * single quotes nothing is special, and a quote is written as `'\''`.
 */
export function quoteWord(word: string): string {
  if (word === '') return "''";
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Render a command tree into the one string the remote shell runs. The only quoting in voxops. */
export function renderCommand(command: Command): string {
  switch (command.kind) {
    case 'argv':
      return command.argv.map(quoteWord).join(' ');
    case 'all':
      return command.commands.map(renderGroup).join(' && ');
    case 'any':
      return command.commands.map(renderGroup).join(' || ');
    case 'in':
      return `cd ${quoteWord(command.dir)} && ${renderGroup(command.command)}`;
  }
}

function renderGroup(command: Command): string {
  return command.kind === 'argv' ? renderCommand(command) : `{ ${renderCommand(command)}; }`;
}

/** Wrap a rendered command so it runs as root through non-interactive sudo. */
export function withSudo(rendered: string): string {
  return `sudo -n -- sh -c ${quoteWord(rendered)}`;
}
