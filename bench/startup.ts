// `npm run bench:startup`: what an on-call engineer waits for before voxops does anything, as a
// multiple of a bare `node -e 0` measured in the same run (this machine is shared and noisy, so an
// absolute figure means little). A measurement, not a test: it prints and asserts nothing.
//
// The two commands are paired and alternate which goes first, so a burst of load from a neighbour
// lands on both sides of a pair rather than on one side of the comparison.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

const runs = Math.max(10, Number(process.env.BENCH_RUNS ?? 15));
const target = 2.5;
const voxops = [resolve('bin/voxops'), '--help'];
const bare = ['-e', '0'];

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function timeNode(args: string[]): number {
  const t0 = performance.now();
  const run = spawnSync(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  const ms = performance.now() - t0;
  // a launcher that fails fast would look like a fast start
  if (run.status !== 0) throw new Error(`node ${args.join(' ')}: exit ${run.status}: ${run.stderr.toString().trim()}`);
  return ms;
}

// the first start pays for reading the files from disk; an engineer's second start does not
timeNode(bare);
timeNode(voxops);

const bareMs: number[] = [];
const voxopsMs: number[] = [];
for (let i = 0; i < runs; i += 1) {
  if (i % 2 === 0) {
    bareMs.push(timeNode(bare));
    voxopsMs.push(timeNode(voxops));
  } else {
    voxopsMs.push(timeNode(voxops));
    bareMs.push(timeNode(bare));
  }
}

const ratio = median(voxopsMs) / median(bareMs);
const pairRatio = median(voxopsMs.map((ms, i) => ms / bareMs[i]!));
const ms = (x: number) => `${x.toFixed(0)} ms`;
console.log(`node -e 0            median ${ms(median(bareMs))} (min ${ms(Math.min(...bareMs))}, ${runs} runs)`);
console.log(`voxops --help        median ${ms(median(voxopsMs))} (min ${ms(Math.min(...voxopsMs))}, ${runs} runs)`);
console.log(`ratio of medians     ${ratio.toFixed(2)}x (target <= ${target}x)`);
console.log(`median pair ratio    ${pairRatio.toFixed(2)}x`);
