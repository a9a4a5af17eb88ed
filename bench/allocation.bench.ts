/**
 * Issue 6, "the hot path (get/set/locate) allocates nothing it does not need": bytes of JS
 * heap allocated per call, each next to the same work done without the ring.
 *
 * - `HashRing.locate` vs `zlib.crc32` of the same key: the native hash call is all a
 *   lookup may allocate.
 * - `RingDict.get` / `set` vs raw ioredis reading / writing the same entry on its owning
 *   node, JSON included: the difference is what the ring itself allocates per request.
 * - The `@RingCached` hit vs `RingDict.getRaw` + `JSON.parse` of the same key.
 *
 * Bytes are counted, not sampled: the heap's used size before and after a window of calls
 * (1 in flight), keeping only windows in which no garbage collection ran (V8's GCProfiler
 * says), and taking the median of those windows (up to `WINDOWS`, at least half of them).
 */
import 'reflect-metadata';
import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { GCProfiler, getHeapStatistics } from 'node:v8';
import { crc32 } from 'node:zlib';
import type { Redis } from 'ioredis';
import {
  getRingDictToken,
  HashRing,
  RingCached,
  RingCacheService,
  RingRedisModule,
  type RingDict,
  type RingNodesConfig,
} from '../lib/index.js';
import { equalNodes, userKeys } from './hash-ring.bench.js';
import { median, type BenchConfig } from './measure.js';
import { sig, type Row, type SectionResult } from './report.js';
import { ioredisClient, redisFleet, ringNodes, type Started } from './servers.js';
import { jsonObjectOf } from './throughput.bench.js';

const KEYS = 1000;
const VALUE = jsonObjectOf(100);
const WINDOWS = 25;

/** Heap bytes allocated per call of `op`, over `calls` calls in a window with no GC. */
export async function bytesPerCall(
  op: (i: number) => unknown,
  { calls, sync }: { calls: number; sync: boolean },
  windows: number,
): Promise<number> {
  const clean: number[] = [];
  for (let w = 0; w < windows * 4 && clean.length < windows; w++) {
    const profiler = new GCProfiler();
    profiler.start();
    const before = getHeapStatistics().used_heap_size;
    if (sync) for (let i = 0; i < calls; i++) op(i);
    else for (let i = 0; i < calls; i++) await op(i);
    const after = getHeapStatistics().used_heap_size;
    if (profiler.stop().statistics.length === 0) clean.push((after - before) / calls);
  }
  if (clean.length < windows / 2) throw new Error('garbage collection ran in most windows');
  return median(clean);
}

/**
 * Sink for synchronous results, so the optimiser cannot drop the calls. A typed array: a
 * number variable holding a double would box every value stored into it, on the heap.
 */
const sink = new Float64Array(1);

@Injectable()
class CachedRecords {
  @RingCached({ prefix: 'alloc:cached:' })
  async record(id: number): Promise<typeof VALUE> {
    return { ...VALUE, id };
  }
}

function cachedApp(nodes: RingNodesConfig) {
  @Module({
    imports: [RingRedisModule.forRoot({ groups: { default: nodes } })],
    providers: [CachedRecords],
  })
  class AllocationBenchModule {}
  return AllocationBenchModule;
}

interface Pair {
  what: string;
  ours: (i: number) => unknown;
  baselineName: string;
  baseline: (i: number) => unknown;
  /** Calls per window: small enough that a window rarely meets a collection. */
  calls: number;
  /** Synchronous calls, not awaited (an await allocates a promise of its own). */
  sync: boolean;
}

export async function benchAllocation(config: BenchConfig): Promise<SectionResult> {
  const windows = config.quick ? 9 : WINDOWS;
  const fleet = await redisFleet(3);
  const clients: Started<Redis>[] = [];
  let app: INestApplicationContext | undefined;
  try {
    const nodes = ringNodes(fleet.value);
    app = await NestFactory.createApplicationContext(cachedApp(nodes), { logger: false });
    const dict = app.get<RingDict<typeof VALUE>>(getRingDictToken('default'));
    const cached = app.get(CachedRecords);
    for (const server of fleet.value.servers) clients.push(await ioredisClient(server.port));

    const keys = Array.from({ length: KEYS }, (_, i) => `alloc:${i}`);
    for (const key of keys) await dict.set(key, VALUE);
    const ids = Array.from({ length: KEYS }, (_, i) => i);
    for (const id of ids) await cached.record(id);
    const cache = app.get(RingCacheService);
    const cachedKeys = ids.map((id) => cache.keyFor(CachedRecords, 'record', id));
    const names = Object.keys(nodes);
    const entries = keys.map((key) => dict.getEntry(key));
    const owners = entries.map(
      (entry) => clients[names.indexOf(dict.aliveHash.locate(entry)!)].value,
    );

    const lookupKeys = userKeys(KEYS);
    const pairs: Pair[] = [3, 10].map((count) => {
      const ring = new HashRing(equalNodes(count));
      return {
        what: `HashRing.locate, ${count} nodes`,
        ours: (i) => (sink[0] += ring.locate(lookupKeys[i % KEYS])!.length),
        baselineName: 'zlib.crc32 of the key',
        baseline: (i) => (sink[0] += crc32(lookupKeys[i % KEYS])),
        calls: 10_000,
        sync: true,
      };
    });
    pairs.push(
      {
        what: 'RingDict.get of a 100-byte JSON value',
        ours: (i) => dict.get(keys[i % KEYS]),
        baselineName: 'raw ioredis GET + JSON.parse on its node',
        baseline: (i) => owners[i % KEYS].get(entries[i % KEYS]).then((raw) => JSON.parse(raw!)),
        calls: 100,
        sync: false,
      },
      {
        what: 'RingDict.set of a 100-byte JSON value',
        ours: (i) => dict.set(keys[i % KEYS], VALUE),
        baselineName: 'raw ioredis SET of JSON.stringify on its node',
        baseline: (i) => owners[i % KEYS].set(entries[i % KEYS], JSON.stringify(VALUE)),
        calls: 100,
        sync: false,
      },
      {
        what: '@RingCached hit',
        ours: (i) => cached.record(ids[i % KEYS]),
        baselineName: 'RingDict.getRaw + JSON.parse of its key',
        baseline: (i) => dict.getRaw(cachedKeys[i % KEYS]).then((raw) => JSON.parse(raw!)),
        calls: 100,
        sync: false,
      },
    );

    const rows: Row[] = [];
    for (const pair of pairs) {
      // Warm up both, so neither window counts compilation.
      for (let round = 0; round < 3; round++) {
        await bytesPerCall(pair.ours, pair, 3);
        await bytesPerCall(pair.baseline, pair, 3);
      }
      const ours = await bytesPerCall(pair.ours, pair, windows);
      const baseline = await bytesPerCall(pair.baseline, pair, windows);
      rows.push({
        item: 6,
        what: `heap allocated per call: ${pair.what}`,
        ours: `${sig(ours)} B`,
        baseline: `${pair.baselineName}: ${sig(baseline)} B`,
        ratio: `${ours - baseline >= 0 ? '+' : '−'}${sig(Math.abs(ours - baseline))} B`,
        goal: 'nothing unneeded',
        verdict: 'info',
      });
    }
    if (sink[0] === 0.5) console.log(sink);
    return { rows };
  } finally {
    await app?.close();
    for (const client of clients) await client.stop();
    await fleet.stop();
  }
}
