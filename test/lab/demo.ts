// `npm run demo`: the main job on the built-in lab. Lab up, a rolling fleet deploy while the load
// generator keeps ~75% of the fleet busy, the call tally, then `voxops status`.
import { resolve } from 'node:path';
import { $ } from 'zx';
import { labCapacity, labTargets, readLabFile, runCalls, formatStats } from './calls.js';
import { formatHosts, labExec, labUp } from './lab.js';

const voxops = resolve('bin/voxops');
const inventory = resolve('.lab/voxops.yaml');

/** Async on purpose: the load generator runs in this process and must keep going meanwhile. */
async function run(args: string[]): Promise<number> {
  console.log(`\n$ voxops ${args.join(' ')}`);
  const done = await $({ stdio: 'inherit', nothrow: true })`${process.execPath} ${voxops} ${args} -i ${inventory}`;
  return done.exitCode ?? 1;
}

async function main(): Promise<number> {
  const up = await labUp({ log: (line) => console.error(`[lab] ${line}`) });
  console.log(formatHosts(up.lab));
  // re-runnable: go to whichever of v1.4.2 / v1.5.0 the fleet is not on
  const current = (await labExec('fleet1', ['git', '-C', '/opt/voxcore', 'describe', '--tags', '--exact-match', 'HEAD'])).stdout.trim();
  const tag = current === 'v1.5.0' ? 'v1.4.2' : 'v1.5.0';
  // call-aware (the default): each worker restarted the moment it is idle, both hosts at once
  const verb =
    tag === 'v1.5.0' ? ['deploy', 'fleet', '--tag', tag, '--parallel', 'auto'] : ['rollback', 'fleet', '--to', tag, '--parallel', 'auto'];

  const lab = readLabFile();
  const controller = new AbortController();
  const options = {
    targets: labTargets(lab, 'fleet'),
    load: 0.75,
    capacity: labCapacity(lab),
    durationSeconds: 900,
    holdSeconds: [5, 20] as [number, number],
    signal: controller.signal,
  };
  console.log(`\nplacing calls at ~75% of ${options.capacity} worker slots while the fleet rolls from ${current} to ${tag}`);
  const load = runCalls(options);
  await new Promise((r) => setTimeout(r, 2_000));
  const code = await run(verb);
  controller.abort();
  const stats = await load;
  console.log(`\ncalls during the roll:\n${formatStats(stats, options)}`);
  await run(['status', 'fleet']);
  return code !== 0 ? code : stats.dropped > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`demo: ${(error as Error).message}`);
    process.exit(1);
  },
);
