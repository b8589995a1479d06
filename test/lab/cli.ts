// `npm run lab:up|lab:down|lab:status|lab:fault -- ...`: argv and output only.
import { formatHosts, labDown, labFault, labStatus, labUp, readLab, type Fault } from './lab.js';

function usage(): never {
  console.error(`usage:
  lab up [--fleets N] [--workers M]
  lab down [--purge]
  lab status [--json]
  lab fault <net-down HOST | net-up HOST | git-stop | git-start | kill-worker HOST N | fill-disk HOST | free-disk HOST | rekey HOST>`);
  process.exit(2);
}

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = args[i + 1];
  if (v === undefined) usage();
  return v;
}

async function main(argv: string[]): Promise<number> {
  const [verb, ...args] = argv;
  switch (verb) {
    case 'up': {
      const f = flag(args, '--fleets');
      const w = flag(args, '--workers');
      const r = await labUp({ fleets: f ? Number(f) : undefined, workers: w ? Number(w) : undefined });
      console.log(formatHosts(r.lab));
      console.error(
        r.reused
          ? `[lab] already up and healthy (${r.seconds.toFixed(1)} s)`
          : `[lab] up in ${r.seconds.toFixed(1)} s (boot to healthy ${r.bootSeconds.toFixed(1)} s)`,
      );
      return 0;
    }
    case 'down':
      await labDown({ purge: args.includes('--purge') });
      return 0;
    case 'status': {
      const st = await labStatus();
      if (args.includes('--json')) console.log(JSON.stringify(st, null, 2));
      else if (st.length === 0) console.log('lab is not set up (.lab/lab.json missing)');
      else console.log(formatHosts(readLab(), st));
      return st.length > 0 && st.every((s) => s.healthy) ? 0 : 1;
    }
    case 'fault': {
      const [kind, a, b] = args;
      let fault: Fault;
      if (kind === 'git-stop' || kind === 'git-start') fault = { kind };
      else if (kind === 'kill-worker' && a && b && /^\d+$/.test(b)) fault = { kind, host: a, worker: Number(b) };
      else if (a && (kind === 'net-down' || kind === 'net-up' || kind === 'fill-disk' || kind === 'free-disk' || kind === 'rekey'))
        fault = { kind, host: a };
      else usage();
      console.log(await labFault(fault));
      return 0;
    }
    default:
      usage();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`lab: ${err instanceof Error ? err.message : String(err)}`);
    if (process.env.VERBOSE && err instanceof Error) console.error(err.stack);
    process.exit(1);
  },
);
