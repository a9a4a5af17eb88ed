import keyvTestSuite, { keyvIteratorTests } from '@keyv/test-suite';
import { Controller, Get, Param, UseInterceptors } from '@nestjs/common';
import { CACHE_MANAGER, CacheInterceptor, CacheModule, CacheTTL } from '@nestjs/cache-manager';
import type { Cache } from 'cache-manager';
import Keyv from 'keyv';
import request from 'supertest';
import * as vitest from 'vitest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  getRingDictToken,
  RingClusterUnavailableError,
  RingDict,
  RingRedisModule,
} from '../../lib/index.js';
import { RingKeyvStore } from '../../lib/keyv/index.js';
import { redisCommand } from '../helpers/redis-command.js';
import { ringNodes, serverOf } from '../helpers/redis-fleet.js';
import { useNestApps } from '../helpers/nest-apps.js';
import { until } from '../helpers/wait.js';
import { isControlKey } from '../../lib/core/keys/control-keys.js';

/**
 * RingKeyvStore: Keyv's own compliance suite against a ring of real servers, Keyv's
 * namespaces and millisecond TTLs as Redis sees them, a node dying under a Keyv, and
 * `@nestjs/cache-manager`'s CacheModule + CacheInterceptor caching a GET route on the ring.
 */

const apps = useNestApps({ servers: 3 });

/** The keys of every server, sorted; the ring's own bookkeeping keys left out. */
async function allKeys(): Promise<string[]> {
  const keys: string[] = [];
  for (const server of apps.fleet.servers) {
    keys.push(...(await redisCommand(server.port, 'KEYS', '*')).split('\n').filter(Boolean));
  }
  return keys.filter((key) => !isControlKey(key)).sort();
}

describe('RingKeyvStore: the @keyv/test-suite of Keyv 5', () => {
  let dict: RingDict;
  beforeAll(() => {
    dict = new RingDict({
      nodes: ringNodes(apps.fleet.servers),
      prefix: 'kv:',
      heartbeatInterval: 100,
      commandTimeout: 500,
    });
  });
  afterAll(() => dict.close());
  const store = () => new RingKeyvStore(dict);
  keyvTestSuite(vitest, Keyv, store);
  keyvIteratorTests(vitest, Keyv, store);
});

describe('RingKeyvStore on the ring', () => {
  function dictOf(prefix = 'app:', onFail?: () => unknown): RingDict<unknown, unknown> {
    return apps.track(
      new RingDict<unknown, unknown>({
        nodes: ringNodes(apps.fleet.servers),
        prefix,
        heartbeatInterval: 100,
        commandTimeout: 300,
        retryRatio: 0,
        onFail,
      }),
    );
  }

  it('stores Keyv data under prefix + namespace, spread over the nodes', async () => {
    const keyv = new Keyv({ store: new RingKeyvStore(dictOf()), namespace: 'users' });
    for (let i = 0; i < 60; i++) await keyv.set(`u${i}`, { id: i });
    expect(await keyv.get('u7')).toEqual({ id: 7 });
    const keys = await allKeys();
    expect(keys).toHaveLength(60);
    expect(keys.every((key) => key.startsWith('app:users:u'))).toBe(true);
    for (const server of apps.fleet.servers) {
      expect(Number(await redisCommand(server.port, 'DBSIZE'))).toBeGreaterThan(5);
    }
    // Keyv's own serialization, as written: no second encoding by the dict's codec.
    const dict = dictOf();
    expect(JSON.parse((await dict.getRaw('users:u7')) as string)).toEqual({ value: { id: 7 } });
  });

  it("keeps namespaces apart: a Keyv's clear() deletes its own entries only", async () => {
    const dict = dictOf();
    await dict.set('plain', 'not keyv');
    const a = new Keyv({ store: new RingKeyvStore(dict), namespace: 'a' });
    const b = new Keyv({ store: new RingKeyvStore(dict), namespace: 'b' });
    for (let i = 0; i < 20; i++) {
      await a.set(`k${i}`, `a${i}`);
      await b.set(`k${i}`, `b${i}`);
    }
    expect(await a.get('k3')).toBe('a3');
    expect(await b.get('k3')).toBe('b3');
    await a.delete('k4');
    expect(await b.get('k4')).toBe('b4');
    await a.clear();
    expect(await a.get('k3')).toBeUndefined();
    expect(await b.get('k3')).toBe('b3');
    expect(await dict.get('plain')).toBe('not keyv');
    expect((await allKeys()).filter((key) => key.startsWith('app:a:'))).toEqual([]);
    expect((await allKeys()).filter((key) => key.startsWith('app:b:'))).toHaveLength(20);
  });

  it("honours Keyv's millisecond TTLs in Redis itself (PX), the default one too", async () => {
    const keyv = new Keyv({ store: new RingKeyvStore(dictOf()), namespace: 'ttl', ttl: 5000 });
    await keyv.set('short', 1, 150);
    await keyv.set('default', 2);
    await keyv.set('forever', 3, 0);
    const ring = dictOf().totalHash;
    const pttl = async (key: string) => {
      const owner = serverOf(apps.fleet.servers, ring.locate(`app:ttl:${key}`)!);
      return Number(await redisCommand(owner.port, 'PTTL', `app:ttl:${key}`));
    };
    expect(await pttl('short')).toBeGreaterThan(0);
    expect(await pttl('short')).toBeLessThanOrEqual(150);
    expect(await pttl('default')).toBeGreaterThan(4000);
    expect(await pttl('default')).toBeLessThanOrEqual(5000);
    expect(await pttl('forever')).toBe(-1);
    // A TTL already past (computed from a time gone by) was stored with no expiry at all.
    await keyv.set('late', 4, -5);
    expect(await pttl('late')).toBe(-2);
    expect(await keyv.has('late')).toBe(false);
    // Gone from Redis, not only hidden by Keyv's own expiry check.
    await until(async () => (await pttl('short')) === -2, 2000);
    expect(await keyv.get('default')).toBe(2);
  });

  it('keeps answering when a node dies: its keys miss, the others hit, nothing throws', async () => {
    const dict = dictOf();
    const keyv = new Keyv({ store: new RingKeyvStore(dict), namespace: 'f' });
    keyv.on('error', () => undefined);
    for (let i = 0; i < 30; i++) await keyv.set(`k${i}`, i);
    const victim = 'node1';
    await apps.fleet.servers[1].kill();
    const values = await Promise.all(Array.from({ length: 30 }, (_, i) => keyv.get(`k${i}`)));
    for (let i = 0; i < 30; i++) {
      const owned = dict.totalHash.locate(dict.getEntry(`f:k${i}`)) === victim;
      expect(values[i]).toBe(owned ? undefined : i);
    }
    // Writes go to the next node meanwhile.
    expect(await keyv.set('after', 'yes')).toBe(true);
    expect(await keyv.get('after')).toBe('yes');
  });

  // Keyv catches a failed get, not a failed batch or has: those rejected, where a cache must miss.
  it('with no node alive, batch reads and has() miss, reported as errors; a bad key misses alone', async () => {
    const keyv = new Keyv({ store: new RingKeyvStore(dictOf()), namespace: 'out' });
    const errors: unknown[] = [];
    keyv.on('error', (error) => errors.push(error));
    await keyv.set('good', 1);
    expect(await keyv.get(['good', 'bad\uD800'])).toEqual([1, undefined]);
    expect(await keyv.getRaw('bad\uD800')).toBeUndefined();
    expect(errors).toHaveLength(2);
    await Promise.all(apps.fleet.servers.map((server) => server.kill()));
    expect(await keyv.get(['good', 'other'])).toEqual([undefined, undefined]);
    expect(await keyv.getMany(['good'])).toEqual([undefined]);
    // getRaw and the iterator rejected too: RingClusterUnavailableError.
    expect(await keyv.getRaw('good')).toBeUndefined();
    const listed: unknown[] = [];
    for await (const entry of keyv.iterator!(undefined)) listed.push(entry);
    expect(listed).toEqual([]);
    expect(await keyv.has('good')).toBe(false);
    expect(await keyv.has(['good', 'other'])).toEqual([false, false]);
    expect(errors.slice(2).every((error) => error instanceof RingClusterUnavailableError)).toBe(
      true,
    );
    expect(errors.length).toBeGreaterThan(1);
  });

  // onFail answers for the dict: a write reported true, and a string answer was parsed as
  // Keyv's own data (SyntaxError).
  it.each([
    ['null', () => null],
    ['a string', () => 'fallback'],
  ])(
    'a dict with onFail answering %s, no node alive: set is false, get misses',
    async (_what, onFail) => {
      const keyv = new Keyv({
        store: new RingKeyvStore(dictOf('app:', onFail)),
        namespace: 'fail',
      });
      keyv.on('error', () => undefined);
      await keyv.set('k', 'v');
      await Promise.all(apps.fleet.servers.map((server) => server.kill()));
      expect(await keyv.set('k2', 'v2')).toBe(false);
      expect(await keyv.get('k')).toBeUndefined();
      expect(await keyv.get(['k', 'k2'])).toEqual([undefined, undefined]);
    },
  );

  it('refuses what is not a RingDict', () => {
    expect(() => new RingKeyvStore({} as RingDict)).toThrow('RingKeyvStore: expected a RingDict');
  });
});

@Controller('products')
class ProductsController {
  static calls = 0;

  @Get(':id')
  @UseInterceptors(CacheInterceptor)
  @CacheTTL(60_000)
  product(@Param('id') id: string): { id: string; call: number } {
    ProductsController.calls++;
    return { id, call: ProductsController.calls };
  }
}

describe('@nestjs/cache-manager on the ring', () => {
  it('CacheModule + CacheInterceptor cache a GET route in the ring, over HTTP', async () => {
    ProductsController.calls = 0;
    const app = await apps.boot({
      imports: [
        RingRedisModule.forRoot({
          groups: { default: apps.nodes() },
          defaults: { prefix: 'http:' },
          isGlobal: true,
        }),
        CacheModule.registerAsync({
          inject: [getRingDictToken()],
          useFactory: (dict: RingDict) => ({
            stores: [new Keyv({ store: new RingKeyvStore(dict), namespace: 'routes' })],
          }),
        }),
      ],
      controllers: [ProductsController],
    });
    const server = app.getHttpServer();
    const first = await request(server).get('/products/42').expect(200);
    expect(first.body).toEqual({ id: '42', call: 1 });
    const again = await request(server).get('/products/42').expect(200);
    expect(again.body).toEqual({ id: '42', call: 1 });
    await request(server).get('/products/7').expect(200, { id: '7', call: 2 });
    expect(ProductsController.calls).toBe(2);
    // The cached responses live on the ring's nodes, under the group's prefix and the namespace.
    expect(await allKeys()).toEqual(['http:routes:/products/42', 'http:routes:/products/7']);
    // CACHE_MANAGER reads and writes the same entries, with cache-manager's millisecond TTLs.
    const cache = app.get<Cache>(CACHE_MANAGER);
    expect(await cache.get('/products/42')).toEqual({ id: '42', call: 1 });
    await cache.set('manual', { ok: true }, 1500);
    const node = app.get<RingDict>(getRingDictToken()).totalHash.locate('http:routes:manual');
    const owner = serverOf(apps.fleet.servers, node!);
    const pttl = Number(await redisCommand(owner.port, 'PTTL', 'http:routes:manual'));
    expect(pttl).toBeGreaterThan(1000);
    expect(pttl).toBeLessThanOrEqual(1500);
    // Clearing the cache clears the namespace, not the rest of the group.
    const dict = app.get<RingDict>(getRingDictToken());
    await dict.set('other', 1);
    await cache.clear();
    await request(server).get('/products/42').expect(200, { id: '42', call: 3 });
    expect(await dict.get('other')).toBe(1);
  });
});
