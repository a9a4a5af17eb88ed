/**
 * Goal 6: the `@RingCached` hit path vs a plain `RingDict.get` of the same value (goal:
 * within 10 %), and vs `@nestjs/cache-manager` 12 — `CacheModule` with a Keyv Redis store
 * on one node — serving the same hit through the usual cache-aside method (goal: faster).
 *
 * For scale, the same @RingCached method also runs over a ring of just the one node that
 * cache-manager uses: on this machine every Redis server shares the client's cores, so
 * that row compares the two client paths alone, without the ring's extra servers. And raw
 * ioredis reads the same values straight from their owning nodes (no ring, no Nest): what
 * any client pays here for spreading one caller's requests over three servers.
 *
 * Every contender answers from Redis (every key is cached before timing, and the run fails
 * if a timed call misses), over a key space large enough that @RingCached's single-flight
 * hardly ever merges two concurrent calls into one GET.
 */
import 'reflect-metadata';
import { createKeyv } from '@keyv/redis';
import { CACHE_MANAGER, CacheModule, type Cache } from '@nestjs/cache-manager';
import { Inject, Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  getRingDictToken,
  RingCached,
  RingRedisModule,
  type RingDict,
  type RingNodesConfig,
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
import { ioredisClient, redisFleet, ringNodes, type Started } from './servers.js';
import type { Redis } from 'ioredis';

/** Distinct arguments: at 64 in flight two calls share one about 0.6 % of the time. */
const KEY_SPACE = 10_000;

interface Forecast {
  city: string;
  days: number;
  highs: number[];
  summary: string;
}

/** A value of about 100 bytes as JSON. */
function forecastFor(city: string): Forecast {
  const value = { city, days: 3, highs: [21, 23, 19], summary: '' };
  value.summary = 's'.repeat(Math.max(0, 100 - JSON.stringify(value).length));
  return value;
}

const cities = Array.from({ length: KEY_SPACE }, (_, i) => `city${i}`);

@Injectable()
class RingWeather {
  computed = 0;

  @RingCached({ prefix: 'bench:ring:' })
  async forecast(city: string): Promise<Forecast> {
    this.computed++;
    return forecastFor(city);
  }

  /** The same method over a ring of the single node cache-manager uses. */
  @RingCached({ prefix: 'bench:one:', group: 'one' })
  async forecastOnOneNode(city: string): Promise<Forecast> {
    this.computed++;
    return forecastFor(city);
  }
}

@Injectable()
class CacheManagerWeather {
  computed = 0;

  constructor(@Inject(CACHE_MANAGER) private readonly cache: Cache) {}

  /** The cache-aside method @nestjs/cache-manager users write. */
  async forecast(city: string): Promise<Forecast> {
    const key = `bench:cm:${city}`;
    const hit = await this.cache.get<Forecast>(key);
    if (hit !== undefined && hit !== null) return hit;
    this.computed++;
    const value = forecastFor(city);
    await this.cache.set(key, value);
    return value;
  }
}

function ringApp(nodes: RingNodesConfig, oneNode: RingNodesConfig) {
  @Module({
    imports: [RingRedisModule.forRoot({ groups: { default: nodes, one: oneNode } })],
    providers: [RingWeather],
  })
  class RingBenchModule {}
  return RingBenchModule;
}

function cacheManagerApp(url: string) {
  @Module({
    imports: [CacheModule.register({ stores: [createKeyv(url)] })],
    providers: [CacheManagerWeather],
  })
  class CacheManagerBenchModule {}
  return CacheManagerBenchModule;
}

export async function benchRingCached(config: BenchConfig): Promise<SectionResult> {
  const warmupMs = config.quick ? 150 : 400;
  const roundMs = config.quick ? 150 : 400;
  const rounds = 7;
  const fleet = await redisFleet(3);
  const apps: INestApplicationContext[] = [];
  const clients: Started<Redis>[] = [];
  try {
    const nodes = ringNodes(fleet.value);
    const firstNode = Object.keys(nodes)[0];
    const oneNode = { [firstNode]: nodes[firstNode] };
    const ring = await NestFactory.createApplicationContext(ringApp(nodes, oneNode), {
      logger: false,
    });
    apps.push(ring);
    const cm = await NestFactory.createApplicationContext(
      cacheManagerApp(fleet.value.servers[0].url),
      { logger: false },
    );
    apps.push(cm);
    const ringWeather = ring.get(RingWeather);
    const cmWeather = cm.get(CacheManagerWeather);
    const dict = ring.get<RingDict<Forecast>>(getRingDictToken('default'));
    const plainKeys = cities.map((c) => `bench:plain:${c}`);

    // Fill every cache so that every timed call is a hit.
    for (let i = 0; i < KEY_SPACE; i += 100) {
      const batch = cities.slice(i, i + 100);
      await Promise.all(batch.map((city) => ringWeather.forecast(city)));
      await Promise.all(batch.map((city) => ringWeather.forecastOnOneNode(city)));
      await Promise.all(batch.map((city) => cmWeather.forecast(city)));
    }
    await dict.setMany(cities.map((c, i) => [plainKeys[i], forecastFor(c)] as [string, Forecast]));
    const misses = { ring: ringWeather.computed, cm: cmWeather.computed };
    for (const server of fleet.value.servers) clients.push(await ioredisClient(server.port));
    const nodeNames = Object.keys(nodes);
    const plainEntries = plainKeys.map((k) => dict.getEntry(k));
    const owners = plainEntries.map(
      (entry) => clients[nodeNames.indexOf(dict.aliveHash.locate(entry)!)].value,
    );

    const contenders = [
      { name: '@RingCached hit', op: (r: number) => ringWeather.forecast(cities[r % KEY_SPACE]) },
      { name: 'RingDict.get', op: (r: number) => dict.get(plainKeys[r % KEY_SPACE]) },
      { name: 'cache-manager hit', op: (r: number) => cmWeather.forecast(cities[r % KEY_SPACE]) },
      {
        name: '@RingCached hit, 1 node',
        op: (r: number) => ringWeather.forecastOnOneNode(cities[r % KEY_SPACE]),
      },
      {
        name: 'raw ioredis, 3 nodes',
        op: (r: number) => {
          const i = r % KEY_SPACE;
          return owners[i].get(plainEntries[i]).then((raw) => {
            if (raw === null) throw new Error('raw ioredis missed: wrong node for the entry');
            return JSON.parse(raw) as Forecast;
          });
        },
      },
    ];
    const results = new Map<string, number[]>();
    const detail: string[][] = [];
    for (const inFlight of [1, 64]) {
      const ops = contenders.map((c) => c.op);
      const samples = await interleavedRounds(ops, inFlight, rounds, roundMs, warmupMs);
      contenders.forEach((c, i) => {
        const m = medianLoad(samples[i]);
        results.set(
          `${c.name}@${inFlight}`,
          samples[i].map((s) => s.perSecond),
        );
        detail.push(loadDetail(inFlight, c.name, samples[i], m));
      });
    }
    console.log(textTable(LOAD_DETAIL_HEADER, detail));
    if (ringWeather.computed !== misses.ring || cmWeather.computed !== misses.cm) {
      throw new Error('a timed call missed the cache: the comparison would not be of hits');
    }

    const rows: Row[] = [];
    for (const inFlight of [1, 64]) {
      const ours = results.get(`@RingCached hit@${inFlight}`)!;
      const get = results.get(`RingDict.get@${inFlight}`)!;
      const cmHit = results.get(`cache-manager hit@${inFlight}`)!;
      const oneNodeHit = results.get(`@RingCached hit, 1 node@${inFlight}`)!;
      const rawSpread = results.get(`raw ioredis, 3 nodes@${inFlight}`)!;
      const vsGet = pairedRatio(ours, get);
      const vsCacheManager = pairedRatio(ours, cmHit);
      rows.push(
        {
          item: 6,
          what: `@RingCached hit (3 nodes), ${inFlight} in flight`,
          ours: rate(median(ours), 'calls/s'),
          baseline: `RingDict.get of the same value: ${rate(median(get))}`,
          ratio: times(vsGet),
          goal: '≥ 0.9× (within 10 %)',
          verdict: verdict(vsGet >= 0.9),
        },
        {
          item: 6,
          what: `@RingCached hit (3 nodes), ${inFlight} in flight`,
          ours: rate(median(ours), 'calls/s'),
          baseline: `@nestjs/cache-manager 12 + Keyv Redis, 1 node: ${rate(median(cmHit), 'calls/s')}`,
          ratio: times(vsCacheManager),
          goal: '> 1×',
          verdict: verdict(vsCacheManager > 1),
        },
        {
          item: 6,
          what: `(for scale) RingDict.get (3 nodes), ${inFlight} in flight`,
          ours: rate(median(get)),
          baseline: `@nestjs/cache-manager 12 + Keyv Redis, 1 node: ${rate(median(cmHit), 'calls/s')}`,
          ratio: times(pairedRatio(get, cmHit)),
          goal: 'not a goal',
          verdict: 'info',
        },
        {
          item: 6,
          what: `(for scale) @RingCached hit, ring of cache-manager's 1 node, ${inFlight} in flight`,
          ours: rate(median(oneNodeHit), 'calls/s'),
          baseline: `@nestjs/cache-manager 12 + Keyv Redis, same node: ${rate(median(cmHit), 'calls/s')}`,
          ratio: times(pairedRatio(oneNodeHit, cmHit)),
          goal: 'not a goal',
          verdict: 'info',
        },
        {
          item: 6,
          what: `(for scale) raw ioredis GET + JSON.parse from the owning node of 3, no ring, ${inFlight} in flight`,
          ours: rate(median(rawSpread)),
          baseline: `@nestjs/cache-manager 12 + Keyv Redis, 1 node: ${rate(median(cmHit), 'calls/s')}`,
          ratio: times(pairedRatio(rawSpread, cmHit)),
          goal: 'not a goal',
          verdict: 'info',
        },
      );
    }
    return { rows };
  } finally {
    for (const client of clients) await client.stop();
    for (const app of apps.reverse()) await app.close();
    await fleet.stop();
  }
}
