/**
 * Section 7: what each resilient option costs on a hit, against a plain `@RingCached` hit of
 * the same value over the same 3 nodes, and against bentocache 1.6 where it has the feature
 * (a grace hit, a tagged hit). The goal: a tagged hit within 1.3× the latency of a plain hit.
 *
 * bentocache runs with its Redis layer alone (no in-memory layer), on one of the 3 nodes: it
 * has no sharding, and an in-memory hit would not be a Redis hit. Every contender answers
 * from Redis (every key cached before timing; the run fails if a timed call misses).
 */
import 'reflect-metadata';
import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { BentoCache, bentostore, redisDriver } from 'bench-bentocache';
import {
  RingCacheService,
  RingCached,
  RingRedisModule,
  type RingNodesConfig,
  type RingWrapOptions,
} from '../lib/index.js';
import { interleavedRounds, median, medianLoad, pairedRatio, type BenchConfig } from './measure.js';
import {
  LOAD_DETAIL_HEADER,
  loadDetail,
  rate,
  textTable,
  times,
  verdict,
  type Row,
  type SectionResult,
} from './report.js';
import { redisFleet, ringNodes } from './servers.js';
import { track } from './cleanup.js';

/** Keys per contender: at 1 in flight every call is a distinct GET. */
const KEYS = 2_000;

/** A value of about 100 bytes as JSON. */
function valueFor(i: number): { id: number; name: string; tags: string[]; bio: string } {
  return { id: i, name: `user ${i}`, tags: ['a', 'b'], bio: 'x'.repeat(50) };
}

let computed = 0;

@Injectable()
class Profiles {
  @RingCached({ prefix: 'o:plain:', ttl: '1h' })
  async plain(i: number) {
    computed++;
    return valueFor(i);
  }

  @RingCached({ prefix: 'o:grace:', ttl: '1h', grace: '1h' })
  async grace(i: number) {
    computed++;
    return valueFor(i);
  }

  @RingCached({ prefix: 'o:ahead:', ttl: '1h', refreshAhead: 0.1 })
  async refreshAhead(i: number) {
    computed++;
    return valueFor(i);
  }

  @RingCached({ prefix: 'o:lock:', ttl: '1h', lock: true })
  async locked(i: number) {
    computed++;
    return valueFor(i);
  }

  @RingCached({ prefix: 'o:tag:', ttl: '1h', tags: (i: number) => [`user:${i}`] })
  async tagged(i: number) {
    computed++;
    return valueFor(i);
  }

  @RingCached({ prefix: 'o:tags:', ttl: '1h', tags: (i: number) => [`user:${i}`, 'users'] })
  async twoTags(i: number) {
    computed++;
    return valueFor(i);
  }
}

function app(nodes: RingNodesConfig) {
  @Module({
    imports: [RingRedisModule.forRoot({ groups: { default: nodes } })],
    providers: [Profiles],
  })
  class OptionsBenchModule {}
  return OptionsBenchModule;
}

const WRAP: RingWrapOptions = { ttl: '1h' };

interface Contender {
  name: string;
  op(i: number): Promise<unknown>;
}

export async function benchRingCachedOptions(config: BenchConfig): Promise<SectionResult> {
  const roundMs = config.quick ? 150 : 350;
  const fleet = await redisFleet(3);
  let context: INestApplicationContext | undefined;
  let bento: BentoCache<Record<string, never>> | undefined;
  let stopBento = async () => undefined as void;
  try {
    context = await NestFactory.createApplicationContext(app(ringNodes(fleet.value)), {
      logger: false,
    });
    const profiles = context.get(Profiles);
    const cache = context.get(RingCacheService);
    const firstNode = fleet.value.servers[0];
    bento = new BentoCache({
      default: 'redis',
      stores: {
        redis: bentostore().useL2Layer(
          redisDriver({ connection: { host: '127.0.0.1', port: firstNode.port } }),
        ),
      },
    }) as BentoCache<Record<string, never>>;
    stopBento = track(() => bento?.disconnect());
    const b = bento;
    const contenders: Contender[] = [
      { name: '@RingCached hit', op: (i) => profiles.plain(i) },
      { name: 'grace hit', op: (i) => profiles.grace(i) },
      { name: 'refreshAhead hit', op: (i) => profiles.refreshAhead(i) },
      { name: 'lock hit', op: (i) => profiles.locked(i) },
      { name: 'tagged hit (1 tag)', op: (i) => profiles.tagged(i) },
      { name: 'tagged hit (2 tags)', op: (i) => profiles.twoTags(i) },
      { name: 'wrap hit', op: (i) => cache.wrap(`o:wrap:${i}`, async () => valueFor(i), WRAP) },
      {
        name: 'bentocache grace hit, 1 node',
        op: (i) =>
          b.getOrSet({ key: `o:bgrace:${i}`, ttl: '1h', grace: '1h', factory: () => bentoMiss(i) }),
      },
      {
        name: 'bentocache tagged hit, 1 node',
        op: (i) =>
          b.getOrSet({
            key: `o:btag:${i}`,
            ttl: '1h',
            tags: [`user:${i}`],
            factory: () => bentoMiss(i),
          }),
      },
      {
        name: 'bentocache hit, 1 node',
        op: (i) => b.getOrSet({ key: `o:bplain:${i}`, ttl: '1h', factory: () => bentoMiss(i) }),
      },
    ];
    for (let i = 0; i < KEYS; i += 100) {
      const batch = Array.from({ length: 100 }, (_, j) => i + j);
      for (const c of contenders) await Promise.all(batch.map((k) => c.op(k)));
    }
    const filled = computed;
    const ops = contenders.map((c) => (r: number) => c.op(r % KEYS));
    const samples = await interleavedRounds(ops, 1, 7, roundMs, roundMs);
    if (computed !== filled) throw new Error('a timed call missed: the figures would not be hits');
    console.log(
      textTable(
        LOAD_DETAIL_HEADER,
        contenders.map((c, i) => loadDetail(1, c.name, samples[i], medianLoad(samples[i]))),
      ),
    );
    return {
      rows: rowsOf(
        contenders,
        samples.map((s) => s.map((x) => x.perSecond)),
      ),
    };
  } finally {
    await stopBento();
    await context?.close();
    await fleet.stop();
  }
}

function bentoMiss(i: number) {
  computed++;
  return valueFor(i);
}

function rowsOf(contenders: readonly Contender[], perSecond: number[][]): Row[] {
  const of = (name: string) => perSecond[contenders.findIndex((c) => c.name === name)];
  const plain = of('@RingCached hit');
  const rows: Row[] = [];
  for (const name of [
    'grace hit',
    'refreshAhead hit',
    'lock hit',
    'tagged hit (1 tag)',
    'tagged hit (2 tags)',
    'wrap hit',
  ]) {
    // Latency at 1 in flight is 1 / throughput: the latency ratio is the inverse ratio.
    const latency = 1 / pairedRatio(of(name), plain);
    const tagged = name.startsWith('tagged hit (1');
    rows.push({
      item: 8,
      what: `@RingCached ${name} (3 nodes), 1 in flight: latency`,
      ours: rate(median(of(name)), 'calls/s'),
      baseline: `plain @RingCached hit: ${rate(median(plain), 'calls/s')}`,
      ratio: times(latency),
      goal: tagged ? '≤ 1.3× the latency' : 'not a goal',
      verdict: tagged ? verdict(latency <= 1.3) : 'info',
    });
  }
  for (const [ours, theirs] of [
    ['grace hit', 'bentocache grace hit, 1 node'],
    ['tagged hit (1 tag)', 'bentocache tagged hit, 1 node'],
    ['@RingCached hit', 'bentocache hit, 1 node'],
  ]) {
    rows.push({
      item: 8,
      what: `(for scale) @RingCached ${ours} (3 nodes) vs bentocache 1.6, Redis layer only, 1 in flight`,
      ours: rate(median(of(ours)), 'calls/s'),
      baseline: `${theirs}: ${rate(median(of(theirs)), 'calls/s')}`,
      ratio: times(pairedRatio(of(ours), of(theirs))),
      goal: 'not a goal',
      verdict: 'info',
    });
  }
  return rows;
}
