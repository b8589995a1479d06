import { currentTag } from '../../commands/git.js';
import type { HostContext } from '../contract.js';

/** The release a checkout runs: the rsync marker's tag, else the tag at HEAD; null when it is neither. */
export async function checkoutTag(host: Pick<HostContext, 'run'>, path: string): Promise<string | null> {
  const result = await host.run(currentTag(path));
  return result.exitCode === 0 ? result.stdout.trim() || null : null;
}
