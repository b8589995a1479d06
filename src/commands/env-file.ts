import { argv, type Step } from '../exec/command.js';
import { UsageError } from '../errors.js';

/**
 * Set one variable in an env file on the host, touching no other line. The file holds secrets, so
 * it is never read back, copied off the host or printed: awk rewrites it into a temp file beside it
 * (same mode and owner, set before any content is written), which is renamed over the original.
 * Every line that assigns the variable gets the new value (systemd takes the last, `grep -m1` the
 * first: they must agree); if none does, the line is appended. A symlinked file is written through
 * to its target. Name and value reach awk through its environment, never through the script text.
 */
const setScript = [
  'set -eu',
  'f=$(readlink -e -- "$1")',
  't=$(mktemp -- "$f.voxops.XXXXXX")',
  `trap 'rm -f -- "$t"' EXIT`,
  'chmod --reference="$f" -- "$t"',
  'chown --reference="$f" -- "$t"',
  `VOXOPS_NAME="$2" VOXOPS_VALUE="$3" awk 'BEGIN { p = ENVIRON["VOXOPS_NAME"] "="; v = ENVIRON["VOXOPS_VALUE"] } index($0, p) == 1 { print p v; n++; next } { print } END { if (!n) print p v }' "$f" > "$t"`,
  'mv -f -- "$t" "$f"',
].join('\n');

export function setEnvVariable(file: string, name: string, value: string): Step {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new UsageError(`${JSON.stringify(name)} is not an environment variable name`);
  if (/[\n\r\0]/.test(value)) throw new UsageError(`the value for ${name} must be one line`);
  return {
    name: `set ${name}=${value} in ${file}`,
    command: argv('sh', '-c', setScript, 'voxops-set-env', file, name, value),
  };
}
