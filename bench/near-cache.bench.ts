/**
 * Section 12: the near cache. Over 3 nodes, with a 100-byte JSON value:
 * - `RingDict.get` answered from the near cache vs the same get without it, 1 in flight
 *   (goal: ≥ 1 M calls/s and ≥ 50×);
 * - a `@RingCached` hit of a group with a near cache vs bentocache 1.6's L1 + L2 `getOrSet`
 *   hit (memory driver in front of its Redis driver) on the same value (goal: ≥ 1×);
 * - a tagged hit (a tag per key) vs bentocache's tagged hit (goal: ≥ 1×) and vs the untagged
 *   near hit (goal: ≤ 1.3× the latency), and, for scale, one with a tag shared by every key and
 *   an untagged one with `grace` (the resilient options' path, without tags);
 * - how long a write takes to be visible in another process that holds the key in its near
 *   cache: written here with `RingDict.set`, and with `redis-cli SET` (goal: p50 ≤ 1 ms,
 *   p99 ≤ 5 ms), beside a PUBLISH heard in that process (near-invalidation.bench.ts);
 * - heap allocated per hit, as section 6's allocation rows measure it;
 * - the memory a bounded near cache holds after reading five times more keys than it may keep.
 *
 * Every timed contender answers hits only: the run fails if a timed call reaches Redis (near
 * cache) or runs the method (@RingCached, bentocache).
 */
import 'reflect-metadata';
import { getHeapStatistics } from 'node:v8';
import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import * as bento from 'bench-bentocache';
import { BentoCache, bentostore, redisDriver } from 'bench-bentocache';
import {
  RingCached,
  RingDict,
  RingRedisModule,
  RingRedisService,
  type RingNodesConfig,
} from '../lib/index.js';
import { commandCalls } from '../test/helpers/redis-command.js';
import type { RedisFleet } from '../test/helpers/redis-fleet.js';
import { bytesPerCall } from './allocation.bench.js';
import { track } from './cleanup.js';
import { exposeGc } from './hash-ring.bench.js';
import { closedLoop, interleavedRounds, median, pairedRatio, type BenchConfig } from './measure.js';
import { rate, sig, times, verdict, type Row, type SectionResult } from './report.js';
import { redisFleet, ringNodes } from './servers.js';
import { jsonObjectOf } from './throughput.bench.js';
import { idleHitRows } from './near-idle.bench.js';
import { invalidationRows } from './near-invalidation.bench.js';

const KEYS = 2_000;
const VALUE = jsonObjectOf(100);
type Value = typeof VALUE;

let computed = 0;

@Injectable()
class Records {
  @RingCached({ prefix: 'near:cached:', ttl: '1h' })
  async near(id: number): Promise<Value> {
    computed++;
    return { ...VALUE, id };
  }

  @RingCached({ prefix: 'near:tagged:', ttl: '1h', tags: (id: number) => [`user:${id}`] })
  async tagged(id: number): Promise<Value> {
    computed++;
    return { ...VALUE, id };
  }

  /** One tag for every key: the version each hit checks is the same, always in the CPU's cache. */
  @RingCached({ prefix: 'near:shared-tag:', ttl: '1h', tags: () => ['users'] })
  async sharedTag(id: number): Promise<Value> {
    computed++;
    return { ...VALUE, id };
  }

  /** Untagged, on the path of the resilient options (an envelope, HeldReads): for scale. */
  @RingCached({ prefix: 'near:grace:', ttl: '1h', grace: '1h' })
  async grace(id: number): Promise<Value> {
    computed++;
    return { ...VALUE, id };
  }

  @RingCached({ group: 'plain', prefix: 'near:plain:', ttl: '1h' })
  async plain(id: number): Promise<Value> {
    computed++;
    return { ...VALUE, id };
  }
}

function app(nodes: RingNodesConfig) {
  @Module({
    imports: [
      RingRedisModule.forRoot({
        groups: { default: nodes, plain: nodes },
        groupOptions: { default: { nearCache: {} } },
      }),
    ],
    providers: [Records],
  })
  class NearBenchModule {}
  return NearBenchModule;
}

type L1Driver = Parameters<ReturnType<typeof bentostore>['useL1Layer']>[0];

/**
 * bentocache's memory driver, which bench/bentocache exports since this section: an install
 * made before (node_modules/bench-bentocache is a copy) lacks it until `npm install`.
 */
function memoryL1(maxItems: number): L1Driver {
  const { memoryDriver } = bento as unknown as {
    memoryDriver?: (options: { maxItems: number }) => L1Driver;
  };
  if (memoryDriver === undefined) {
    throw new Error('node_modules/bench-bentocache has no memoryDriver: run npm install');
  }
  return memoryDriver({ maxItems });
}

export async function benchNearCache(config: BenchConfig): Promise<SectionResult> {
  const roundMs = config.quick ? 150 : 350;
  const fleet = await redisFleet(3);
  const nodes = ringNodes(fleet.value);
  const dicts: RingDict<Value>[] = [];
  const dict = (nearCache: false | { maxEntries?: number; maxBytes?: number }) => {
    const made = new RingDict<Value>({ nodes, prefix: 'near:', nearCache });
    dicts.push(made);
    return made;
  };
  try {
    const keys = Array.from({ length: KEYS }, (_, i) => `k${i}`);
    const plain = dict(false);
    const near = dict({});
    await channelsUp(near);
    for (const [i, key] of keys.entries()) await plain.set(key, { ...VALUE, id: i });
    for (let pass = 0; pass < 3; pass++) for (const key of keys) await near.get(key);
    const rows = [
      ...(await getRows(near, plain, keys, fleet.value, roundMs)),
      ...(await cachedRows(nodes, fleet.value, roundMs)),
      ...(await allocationRows(near, keys, config.quick ? 9 : 25)),
      ...(await boundRows(dict({ maxEntries: 1_000, maxBytes: 1 << 20 }), keys)),
      ...(await idleHitRows(near, plain, keys, config.quick ? 50 : 200)),
      ...(await invalidationRows(nodes, fleet.value, VALUE, config.quick ? 60 : 300)),
    ];
    return { rows };
  } finally {
    for (const d of dicts) await d.close();
    await fleet.stop();
  }
}

/** Resolves once every node's invalidation channel is up. */
async function channelsUp(dict: RingDict<unknown>): Promise<void> {
  const until = performance.now() + 5_000;
  while (!dict.nodeStates().every((state) => state.invalidation === 'up')) {
    if (performance.now() > until) throw new Error('the invalidation channels did not come up');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** GETs the fleet's servers have run so far. */
function serverGets(fleet: RedisFleet): Promise<number> {
  return commandCalls(
    fleet.servers.map((server) => server.port),
    ['get'],
  );
}

/** Throws unless `op` reaches no server for a while (every call answered from memory). */
async function expectHitsOnly(
  fleet: RedisFleet,
  op: (r: number) => Promise<unknown>,
): Promise<void> {
  const before = await serverGets(fleet);
  await closedLoop(op, 1, 100);
  const reached = (await serverGets(fleet)) - before;
  if (reached > 0) throw new Error(`${reached} near-cache reads reached Redis: not hits`);
}

async function getRows(
  near: RingDict<Value>,
  plain: RingDict<Value>,
  keys: string[],
  fleet: RedisFleet,
  roundMs: number,
): Promise<Row[]> {
  const nearGet = (r: number) => near.get(keys[r % KEYS]);
  const raws = keys.map((_, i) => JSON.stringify({ ...VALUE, id: i }));
  await expectHitsOnly(fleet, nearGet);
  const [hits, gets, parses] = await interleavedRounds(
    [nearGet, (r) => plain.get(keys[r % KEYS]), async (r) => JSON.parse(raws[r % KEYS]) as Value],
    1,
    7,
    roundMs,
    roundMs,
  );
  await expectHitsOnly(fleet, nearGet);
  const ours = hits.map((s) => s.perSecond);
  const without = gets.map((s) => s.perSecond);
  const floor = parses.map((s) => s.perSecond);
  const ratio = pairedRatio(ours, without);
  return [
    {
      item: 12,
      what: 'RingDict.get answered by the near cache (100-byte JSON value, 3 nodes), 1 in flight',
      ours: rate(median(ours), 'calls/s'),
      baseline: `RingDict.get without it: ${rate(median(without), 'calls/s')}`,
      ratio: times(ratio),
      goal: '≥ 1 M calls/s and ≥ 50×',
      verdict: verdict(median(ours) >= 1e6 && ratio >= 50),
    },
    {
      item: 12,
      what: '(for scale) the same near-cache get vs an awaited JSON.parse of its stored value, 1 in flight',
      ours: rate(median(ours), 'calls/s'),
      baseline: `async JSON.parse (the fresh copy every get makes): ${rate(median(floor), 'calls/s')}`,
      ratio: times(pairedRatio(ours, floor)),
      goal: 'not a goal',
      verdict: 'info',
    },
  ];
}

async function cachedRows(
  nodes: RingNodesConfig,
  fleet: RedisFleet,
  roundMs: number,
): Promise<Row[]> {
  let context: INestApplicationContext | undefined;
  const port = fleet.servers[0].port;
  const bento = new BentoCache({
    default: 'tiered',
    stores: {
      tiered: bentostore()
        .useL1Layer(memoryL1(10_000))
        .useL2Layer(redisDriver({ connection: { host: '127.0.0.1', port } })),
    },
  });
  const stopBento = track(() => bento.disconnect());
  try {
    context = await NestFactory.createApplicationContext(app(nodes), { logger: false });
    await channelsUp(context.get(RingRedisService).getOrThrow('default'));
    const records = context.get(Records);
    const bentoHit = (i: number) =>
      bento.getOrSet({
        key: `near:bento:${i}`,
        ttl: '1h',
        factory: () => {
          computed++;
          return { ...VALUE, id: i };
        },
      });
    const bentoTagged = (i: number) =>
      bento.getOrSet({
        key: `near:bento-tagged:${i}`,
        ttl: '1h',
        tags: [`user:${i}`],
        factory: () => {
          computed++;
          return { ...VALUE, id: i };
        },
      });
    const contenders = [
      (i: number) => records.near(i),
      bentoHit,
      (i: number) => records.plain(i),
      (i: number) => records.tagged(i),
      bentoTagged,
      (i: number) => records.sharedTag(i),
      (i: number) => records.grace(i),
    ];
    for (let pass = 0; pass < 3; pass++) {
      for (let i = 0; i < KEYS; i++) for (const op of contenders) await op(i);
    }
    const filled = computed;
    const samples = await interleavedRounds(
      contenders.map((op) => (r: number) => op(r % KEYS)),
      1,
      7,
      roundMs,
      roundMs,
    );
    if (computed !== filled) throw new Error('a timed call missed: the figures would not be hits');
    const [ours, theirs, without, tagged, theirsTagged, shared, grace] = samples.map((s) =>
      s.map((x) => x.perSecond),
    );
    // At 1 in flight a call's latency is the inverse of the rate: untagged ÷ tagged rates.
    const taggedLatency = pairedRatio(ours, tagged);
    const ratio = pairedRatio(ours, theirs);
    const taggedRatio = pairedRatio(tagged, theirsTagged);
    const bentocache = 'bentocache (memory + Redis)';
    return [
      rateRow(
        '@RingCached hit of a group with a near cache vs bentocache 1.6 L1 + L2 getOrSet hit, 1 in flight',
        [ours, bentocache, theirs, ratio],
        { text: '≥ 1×', met: ratio >= 1 },
      ),
      rateRow(
        '@RingCached tagged hit (1 tag) with a near cache vs bentocache 1.6 L1 + L2 tagged getOrSet hit, 1 in flight',
        [tagged, bentocache, theirsTagged, taggedRatio],
        { text: '≥ 1×', met: taggedRatio >= 1 },
      ),
      rateRow(
        '@RingCached tagged hit (1 tag) with a near cache: latency vs the untagged near hit',
        [tagged, 'untagged', ours, taggedLatency],
        { text: '≤ 1.3× the latency', met: taggedLatency <= 1.3 },
      ),
      rateRow(
        '(for scale) @RingCached tagged hit with one tag for every key, with a near cache: latency vs the untagged near hit',
        [shared, 'untagged', ours, pairedRatio(ours, shared)],
      ),
      rateRow(
        '(for scale) @RingCached hit with grace (untagged, the path of the resilient options) with a near cache: latency vs the plain near hit',
        [grace, 'plain', ours, pairedRatio(ours, grace)],
      ),
      rateRow('(for scale) @RingCached hit with the near cache vs without it, 1 in flight', [
        ours,
        'without',
        without,
        pairedRatio(ours, without),
      ]),
    ];
  } finally {
    await stopBento();
    await context?.close();
  }
}

/**
 * A row of rates: `ours` against the baseline `label: theirs` (medians of the rounds), their
 * ratio as given; a goal, or none ("not a goal", info).
 */
function rateRow(
  what: string,
  [ours, label, theirs, ratio]: [number[], string, number[], number],
  goal?: { text: string; met: boolean },
): Row {
  return {
    item: 12,
    what,
    ours: rate(median(ours), 'calls/s'),
    baseline: `${label}: ${rate(median(theirs), 'calls/s')}`,
    ratio: times(ratio),
    goal: goal?.text ?? 'not a goal',
    verdict: goal === undefined ? 'info' : verdict(goal.met),
  };
}

/** Heap allocated per hit, as section 6 counts it, next to the copy every hit must make. */
async function allocationRows(
  near: RingDict<Value>,
  keys: string[],
  windows: number,
): Promise<Row[]> {
  const raws = keys.map((_, i) => JSON.stringify({ ...VALUE, id: i }));
  const ours = (i: number) => near.get(keys[i % KEYS]);
  const floor = async (i: number) => JSON.parse(raws[i % KEYS]) as Value;
  const shape = { calls: 100, sync: false };
  for (let round = 0; round < 3; round++) {
    await bytesPerCall(ours, shape, 3);
    await bytesPerCall(floor, shape, 3);
  }
  const bytes = await bytesPerCall(ours, shape, windows);
  const baseline = await bytesPerCall(floor, shape, windows);
  return [
    {
      item: 12,
      what: 'heap allocated per call: RingDict.get answered by the near cache',
      ours: `${sig(bytes)} B`,
      baseline: `async JSON.parse of the stored value (the fresh copy): ${sig(baseline)} B`,
      ratio: `${bytes - baseline >= 0 ? '+' : '−'}${sig(Math.abs(bytes - baseline))} B`,
      goal: 'nothing unneeded',
      verdict: 'info',
    },
  ];
}

/** A near cache of 1 000 entries and 1 MiB after reading 2 000 keys three times. */
async function boundRows(bounded: RingDict<Value>, keys: string[]): Promise<Row[]> {
  await channelsUp(bounded);
  for (let pass = 0; pass < 3; pass++) for (const key of keys) await bounded.get(key);
  const store = (bounded as unknown as { batches: { near: { store: NearStoreView } } }).batches.near
    .store;
  const { size, byteSize } = store;
  // What the entries hold: the heap with them, then without them (everything else unchanged),
  // each after full collections.
  const gc = exposeGc();
  const settled = () => {
    for (let i = 0; i < 3; i++) gc();
    return getHeapStatistics().used_heap_size;
  };
  const held = settled();
  store.dropAll();
  const heap = held - settled();
  const within = size <= 1_000 && byteSize <= 1 << 20;
  return [
    {
      item: 12,
      what: 'near cache memory (maxEntries 1 000, maxBytes 1 MiB) after reading 2 000 keys 3 times',
      ours: `${size} entries, ${sig(byteSize / 1024)} KiB counted; ${sig(heap / 1024)} KiB of heap (${sig(heap / size)} B an entry)`,
      baseline: 'the bound: 1 000 entries, 1 024 KiB',
      ratio: `${sig(byteSize / size)} B counted an entry`,
      goal: 'within the bound',
      verdict: verdict(within),
    },
  ];
}

interface NearStoreView {
  size: number;
  byteSize: number;
  dropAll(): void;
}
