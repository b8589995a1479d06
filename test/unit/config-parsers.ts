/**
 * Small readers of the three config languages voxops renders, written to read a line the way the
 * real program does (quotes, escapes, comments, separators), so a property test can tell whether a
 * rendered file holds exactly the directives it was meant to.
 */

export type Directive = string[];

/**
 * ssh_config as OpenSSH >= 8.7 reads it: each line split like argv_split(terminate_on_comment):
 * whitespace separates, `#` at the start of a word ends the line, single and double quotes group,
 * a backslash escapes a quote, a backslash or (outside quotes) a space. An unclosed quote makes
 * the line invalid. `%` tokens and `${VAR}` are expanded afterwards in path options: `expandPath`.
 */
export function parseSshConfig(text: string): Directive[] {
  const out: Directive[] = [];
  for (const line of text.split('\n')) {
    const words: string[] = [];
    let i = 0;
    while (i < line.length) {
      if (line[i] === ' ' || line[i] === '\t') {
        i++;
        continue;
      }
      if (line[i] === '#') break;
      let word = '';
      let quote = '';
      for (; i < line.length; i++) {
        const c = line[i]!;
        const next = line[i + 1];
        if (c === '\\' && (next === "'" || next === '"' || next === '\\' || (!quote && next === ' '))) word += line[++i];
        else if (!quote && (c === ' ' || c === '\t')) break;
        else if (!quote && (c === '"' || c === "'")) quote = c;
        else if (quote && c === quote) quote = '';
        else word += c;
      }
      if (quote) throw new Error(`ssh_config: unclosed quote in ${JSON.stringify(line)}`);
      words.push(word);
    }
    if (words.length > 0) out.push(words);
  }
  return out;
}

/** A path option's value after OpenSSH's own expansion; throws where it would expand a token or a variable. */
export function expandPath(value: string): string {
  if (value.includes('${')) throw new Error(`ssh_config would expand a variable in ${JSON.stringify(value)}`);
  return value.replace(/%(.?)/g, (token, c: string) => {
    if (c === '%') return '%';
    throw new Error(`ssh_config would expand ${token} in ${JSON.stringify(value)}`);
  });
}

/**
 * haproxy.cfg as HAProxy reads a line: whitespace separates words, `#` outside quotes starts a
 * comment, single quotes are literal, double quotes group with backslash escapes, a backslash
 * escapes the next character, `$` expands a variable. Any expansion is reported (throws): voxops
 * never means to write one. Sections: a line starting with a section keyword.
 */
export interface HaproxySection {
  header: string[];
  directives: Directive[];
}

const haproxySections = new Set([
  'global',
  'defaults',
  'frontend',
  'backend',
  'listen',
  'resolvers',
  'peers',
  'userlist',
  'mailers',
  'program',
  'cache',
  'ring',
  'http-errors',
]);

export function parseHaproxyConfig(text: string): HaproxySection[] {
  const sections: HaproxySection[] = [];
  for (const line of text.split('\n')) {
    const words = haproxyWords(line);
    if (words.length === 0) continue;
    if (haproxySections.has(words[0]!)) sections.push({ header: words, directives: [] });
    else if (sections.length === 0) throw new Error(`haproxy.cfg: directive outside a section: ${JSON.stringify(line)}`);
    else sections[sections.length - 1]!.directives.push(words);
  }
  return sections;
}

function haproxyWords(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  let quote = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote === "'") {
      if (c === "'") quote = '';
      else word += c;
      continue;
    }
    if (c === '\\') {
      word = (word ?? '') + (line[++i] ?? '');
      continue;
    }
    if (c === '$') throw new Error(`haproxy.cfg would expand a variable in ${JSON.stringify(line)}`);
    if (quote === '"') {
      if (c === '"') quote = '';
      else word += c;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      word ??= '';
    } else if (c === '#') break;
    else if (c === ' ' || c === '\t') {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else word = (word ?? '') + c;
  }
  if (quote) throw new Error(`haproxy.cfg: unclosed quote in ${JSON.stringify(line)}`);
  if (word !== undefined) words.push(word);
  return words;
}

/**
 * nginx.conf as ngx_conf_read_token reads it: words separated by whitespace, `;` ends a statement,
 * `{` opens a block and `}` closes it (all three anywhere outside quotes), `#` at the start of a
 * word starts a comment, quotes at the start of a word group, a backslash escapes.
 * Returns every statement with the names of the blocks it is in: [...blocks, ...words].
 */
export interface NginxStatement {
  blocks: string[];
  words: string[];
}

export function parseNginxConfig(text: string): NginxStatement[] {
  const out: NginxStatement[] = [];
  const blocks: string[] = [];
  let words: string[] = [];
  let word: string | undefined;
  const endWord = () => {
    if (word !== undefined) words.push(word);
    word = undefined;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (word === undefined && (c === '"' || c === "'")) {
      let quoted = '';
      for (i++; i < text.length && text[i] !== c; i++) quoted += text[i] === '\\' ? (text[++i] ?? '') : text[i];
      if (i >= text.length) throw new Error('nginx.conf: unclosed quote');
      word = quoted;
      continue;
    }
    if (c === '#' && word === undefined) {
      while (i < text.length && text[i] !== '\n') i++;
      continue;
    }
    if (c === '\\') {
      word = (word ?? '') + (text[++i] ?? '');
    } else if (c === ' ' || c === '\t' || c === '\n' || c === '\r') endWord();
    else if (c === ';') {
      endWord();
      out.push({ blocks: [...blocks], words });
      words = [];
    } else if (c === '{') {
      endWord();
      blocks.push(words.join(' '));
      words = [];
    } else if (c === '}') {
      endWord();
      if (words.length > 0) throw new Error('nginx.conf: a statement without ;');
      if (blocks.pop() === undefined) throw new Error('nginx.conf: unbalanced }');
    } else word = (word ?? '') + c;
  }
  endWord();
  if (words.length > 0 || blocks.length > 0) throw new Error('nginx.conf: unterminated statement or block');
  return out;
}
