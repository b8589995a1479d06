import { labUp } from '../lab/lab.js';

/** The e2e suite runs against the lab: bring it up (idempotent; fast when it is already up). */
export default async function setup(): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new Error(
      'the e2e suite needs root to run the lab (network namespaces, mounts, systemd-nspawn); run it as root, or run `npx vitest run --project unit`',
    );
  }
  const { seconds, reused } = await labUp({ log: (line) => process.stderr.write(`[lab] ${line}\n`) });
  process.stderr.write(`[lab] ${reused ? 'already up' : 'up'} in ${seconds.toFixed(1)}s\n`);
}
