/**
 * Membership at run time (`setNodes`): how long the swap of the rings takes at 3, 10 and 100
 * nodes (against go-redis' 8.5 µs for its rebalance), how long a whole `setNodes` takes when
 * no connection is opened (a re-weight), the hit ratio right after a 5th node joins 4 warm
 * ones with and without the warm-up, with the GETs each moved key cost, and the throughput
 * at 64 in flight across changes against steady state (rounds interleaved).
 */
import { HashRing, RingDict, type RingNodesConfig } from '../lib/index.js';
import type { RingMembership } from '../lib/core/membership/ring-membership.js';
import { commandCalls, redisCommand } from '../test/helpers/redis-command.js';
import type { RedisFleet } from '../test/helpers/redis-fleet.js';
import { equalNodes, exposeGc } from './hash-ring.bench.js';
import { closedLoop, median, microsPerCall, pairedRatio, type BenchConfig } from './measure.js';
import {
  percent,
  rate,
  sig,
  textTable,
  times,
  verdict,
  type Row,
  type SectionResult,
} from './report.js';
import { redisFleet, ringNodes } from './servers.js';

const IN_FLIGHT = 64;
const KEYS = 20_000;
const VALUE = 'v'.repeat(100);
/** The goals: the swap at 10 nodes, and the hits after a 5th node joins 4. */
const SWAP_GOAL_MICROS = 100;
const HIT_GOAL = 0.98;

let sink = 0;

/** `count` nodes on ports nothing listens on: a lazy dict opens no connection. */
function lazyNodes(count: number, capacity = 1): RingNodesConfig {
  const nodes: RingNodesConfig = {};
  for (let i = 0; i < count; i++) {
    nodes[`node${i}`] = { capacity, connection: `redis://127.0.0.1:${20_000 + i}` };
  }
  return nodes;
}

/** The swap proper (the rings' references and the alive ring), and a whole re-weighting setNodes. */
async function swapTimes(count: number, ms: number): Promise<{ swap: number; setNodes: number }> {
  const dict = new RingDict({ nodes: lazyNodes(count), lazyConnect: true, warmUpWindow: 0 });
  try {
    const membership = (dict as unknown as { membership: RingMembership }).membership;
    const rings = [
      new HashRing(equalNodes(count)),
      new HashRing({ ...equalNodes(count), node0: 2 }),
    ];
    let i = 0;
    const samples: number[] = [];
    for (let round = 0; round < 5; round++) {
      samples.push(
        microsPerCall(() => {
          membership.swap(rings[++i & 1], [], []);
          sink += membership.aliveHash.size;
        }, ms / 5),
      );
    }
    const swap = median(samples);
    const configs = [lazyNodes(count), { ...lazyNodes(count), node0: lazyNodes(1, 2).node0 }];
    const started = performance.now();
    let calls = 0;
    while (performance.now() - started < ms * 4 || calls < 8)
      await dict.setNodes(configs[++calls & 1]);
    return { swap, setNodes: ((performance.now() - started) * 1000) / calls };
  } finally {
    await dict.close();
  }
}

/** Calls of `command` every server of `fleet` has answered so far. */
function calls(fleet: RedisFleet, command: string): Promise<number> {
  return commandCalls(
    fleet.servers.map((server) => server.port),
    [command],
  );
}

interface HitFigure {
  hits: number;
  moved: number;
  /** GET calls beyond one per key, per key that moved. */
  extraPerMoved: number;
  /** PTTL calls (sent with the extra GET, in one round trip), per key that moved. */
  pttlPerMoved: number;
}

/** 4 warm nodes with KEYS keys, a 5th joins, every key read once. */
async function hitsAfterGrowth(fleet: RedisFleet, warmUpWindow: number): Promise<HitFigure> {
  for (const server of fleet.servers) await redisCommand(server.port, 'FLUSHALL');
  const nodes = ringNodes(fleet);
  const { node4: _fifth, ...four } = nodes;
  const dict = new RingDict<string>({ nodes: four, codec: 'string', prefix: 'b:', warmUpWindow });
  try {
    const keys = Array.from({ length: KEYS }, (_, i) => `key:${i}`);
    await dict.setMany(keys.map((key) => [key, VALUE] as const));
    const before = dict.totalHash;
    await dict.setNodes(nodes);
    const moved = keys.filter(
      (key) => before.locate(dict.getEntry(key)) !== dict.totalHash.locate(dict.getEntry(key)),
    ).length;
    const [getsBefore, pttlsBefore] = [await calls(fleet, 'get'), await calls(fleet, 'pttl')];
    let hits = 0;
    for (let i = 0; i < keys.length; i += IN_FLIGHT) {
      const values = await Promise.all(keys.slice(i, i + IN_FLIGHT).map((key) => dict.get(key)));
      hits += values.filter((value) => value === VALUE).length;
    }
    const extra = (await calls(fleet, 'get')) - getsBefore - keys.length;
    const pttls = (await calls(fleet, 'pttl')) - pttlsBefore;
    return {
      hits: hits / keys.length,
      moved,
      extraPerMoved: extra / moved,
      pttlPerMoved: pttls / moved,
    };
  } finally {
    await dict.close();
  }
}

/** Rounds of steady load and of load across a change (adding node4, then removing it), interleaved. */
async function acrossChanges(
  fleet: RedisFleet,
  rounds: number,
  roundMs: number,
): Promise<{ steady: number[]; change: number[]; failed: number }> {
  const nodes = ringNodes(fleet);
  const { node4: _fifth, ...four } = nodes;
  const dict = new RingDict<string>({ nodes: four, codec: 'string', prefix: 't:' });
  const keys = Array.from({ length: 10_000 }, (_, i) => `key:${i}`);
  let failed = 0;
  const op = (r: number) => {
    const key = keys[(r >>> 1) % keys.length];
    return (r & 1 ? dict.get(key) : dict.set(key, VALUE)).catch(() => failed++);
  };
  const steady: number[] = [];
  const change: number[] = [];
  try {
    await dict.connect();
    await closedLoop(op, IN_FLIGHT, roundMs);
    for (let round = 0; round < rounds; round++) {
      steady.push((await closedLoop(op, IN_FLIGHT, roundMs)).perSecond);
      const target = round % 2 === 0 ? nodes : four;
      const load = closedLoop(op, IN_FLIGHT, roundMs);
      const changed = new Promise<void>((resolve, reject) =>
        setTimeout(() => dict.setNodes(target).then(resolve, reject), roundMs / 3),
      );
      change.push((await load).perSecond);
      await changed;
    }
    return { steady, change, failed };
  } finally {
    await dict.close();
  }
}

export async function benchMembership(config: BenchConfig): Promise<SectionResult> {
  const ms = config.quick ? 40 : 120;
  const gc = exposeGc();
  await swapTimes(10, 50);
  gc();
  const swaps = [];
  for (const n of [3, 10, 100]) swaps.push({ n, ...(await swapTimes(n, ms)) });
  console.log(
    textTable(
      ['nodes', 'swap (µs)', 'setNodes, re-weight (µs)'],
      swaps.map((s) => [String(s.n), sig(s.swap), sig(s.setNodes)]),
    ),
  );
  const fleet = await redisFleet(5);
  try {
    const warm = await hitsAfterGrowth(fleet.value, 60_000);
    const cold = await hitsAfterGrowth(fleet.value, 0);
    const roundMs = config.quick ? 300 : 900;
    const load = await acrossChanges(fleet.value, config.quick ? 4 : 6, roundMs);
    const ratio = pairedRatio(load.change, load.steady);
    console.log(
      textTable(
        [
          'after a 5th node joins 4',
          'hits',
          'keys moved',
          'extra GET per moved key',
          'PTTL per moved key',
        ],
        [warm, cold].map((f, i) => [
          i === 0 ? 'warm-up (60 s window)' : 'no warm-up',
          percent(f.hits),
          String(f.moved),
          sig(f.extraPerMoved),
          sig(f.pttlPerMoved),
        ]),
      ),
    );
    const at10 = swaps.find((s) => s.n === 10)!;
    const rows: Row[] = [
      ...swaps.map((s): Row => ({
        item: 11,
        what: `setNodes: swap of the rings at ${s.n} nodes (whole re-weighting call: ${sig(s.setNodes)} µs)`,
        ours: `${sig(s.swap)} µs`,
        baseline: 'go-redis Ring rebalance: 8.5 µs',
        ratio: times(s.swap / 8.5),
        goal: s.n === 10 ? `≤ ${SWAP_GOAL_MICROS} µs` : 'info',
        verdict: s.n === 10 ? verdict(at10.swap <= SWAP_GOAL_MICROS) : 'info',
      })),
      {
        item: 11,
        what: `hits right after a 5th node joins 4 warm ones, ${KEYS / 1000}k keys, warm-up on`,
        ours: `${percent(warm.hits)} (${sig(warm.extraPerMoved)} extra GET per moved key)`,
        baseline: `warm-up off: ${percent(cold.hits)}`,
        ratio: times(warm.hits / cold.hits),
        goal: `≥ ${percent(HIT_GOAL, 0)}, ≤ 1 extra GET per miss`,
        verdict: verdict(warm.hits >= HIT_GOAL && warm.extraPerMoved <= 1),
      },
      {
        item: 11,
        what: `throughput at ${IN_FLIGHT} in flight across a change (a node added or removed mid-round)`,
        ours: `${rate(median(load.change))}, ${load.failed} calls failed`,
        baseline: `steady state: ${rate(median(load.steady))}`,
        ratio: times(ratio),
        goal: '0 calls failed',
        verdict: verdict(load.failed === 0),
      },
    ];
    return { rows };
  } finally {
    await fleet.stop();
    sink = 0;
  }
}
