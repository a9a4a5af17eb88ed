/** The soak's command line and the settings it does not let the command line change. */

export interface Options {
  ops: number;
  concurrency: number;
  keys: number;
  flapEvery: number;
  outage: number;
  heapBound: number;
  seconds: number;
  timeLimit: number;
}

export const COMMAND_TIMEOUT = 200;
export const HEARTBEAT = 200;
export const NAMES = ['node0', 'node1', 'node2'];
/** The goal for the slowest call: 2 × commandTimeout + 50 ms. */
export const SLOW_CALL_MS = 2 * COMMAND_TIMEOUT + 50;
/** The dict's data connection, its fleet connection (RESP3: one) and this probe's own. */
export const CONNECTIONS_PER_NODE = 3;
/** How often the stall watch ticks. */
export const STALL_PERIOD_MS = 20;

export function parseOptions(argv: readonly string[]): Options {
  const options: Options = {
    ops: 500_000,
    concurrency: 32,
    keys: 8192,
    flapEvery: 3_000,
    outage: 1_000,
    heapBound: 20,
    seconds: 60,
    timeLimit: 170,
  };
  const names: Record<string, keyof Options> = {
    '--ops': 'ops',
    '--concurrency': 'concurrency',
    '--keys': 'keys',
    '--flap-every': 'flapEvery',
    '--outage': 'outage',
    '--heap-bound': 'heapBound',
    '--seconds': 'seconds',
    '--time-limit': 'timeLimit',
  };
  for (const arg of argv) {
    const [name, value] = arg.split('=');
    const field = names[name];
    const number = Number(value);
    if (field === undefined || !Number.isFinite(number) || number <= 0) {
      console.error(`soak: unknown or invalid argument ${arg}\n${usage()}`);
      process.exit(2);
    }
    options[field] = number;
  }
  if (options.outage >= options.flapEvery) {
    console.error('soak: --outage must be shorter than --flap-every');
    process.exit(2);
  }
  return options;
}

function usage(): string {
  return (
    'usage: node --expose-gc .run/bench/soak.js [--ops=500000] [--concurrency=32] [--keys=8192] ' +
    '[--flap-every=3000] [--outage=1000] [--heap-bound=20] [--seconds=60] [--time-limit=170]'
  );
}

/** The first line of the run, saying what it is about to do. */
export function describeRun(options: Options): string {
  return (
    `soak: ≥ ${options.ops} operations and ≥ ${options.seconds} s, ${options.concurrency} workers, ${options.keys} keys, ` +
    `one node flapping every ${options.flapEvery} ms (${options.outage} ms down), ` +
    `commandTimeout ${COMMAND_TIMEOUT} ms, heartbeat ${HEARTBEAT} ms`
  );
}
