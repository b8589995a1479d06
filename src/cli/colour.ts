import { styleText } from 'node:util';

export type Tone = 'error' | 'warning' | 'ok';
export type Paint = (tone: Tone, text: string) => string;

const COLOURS = { error: 'red', warning: 'yellow', ok: 'green' } as const;

export const noColour: Paint = (_tone, text) => text;

/**
 * Colour is for a person at a terminal. A pipe, Jenkins' console (CI, JENKINS_URL), NO_COLOR,
 * TERM=dumb and --json get the same words without escape codes, so grep and parsers see text.
 */
export function paintFor(terminal: boolean, env: NodeJS.ProcessEnv, json: boolean): Paint {
  const off = !terminal || json || Boolean(env.NO_COLOR) || Boolean(env.CI) || Boolean(env.JENKINS_URL) || env.TERM === 'dumb';
  // decided here for the stream written to; node's own check would look at stdout, even for stderr
  return off ? noColour : (tone, text) => styleText(COLOURS[tone], text, { validateStream: false });
}
