import 'reflect-metadata';
import {
  Controller,
  Get,
  Injectable,
  Logger,
  Param,
  SetMetadata,
  type INestApplication,
} from '@nestjs/common';
import request from 'supertest';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  RingCacheService,
  RingCached,
  RingRedisModule,
  RingClusterUnavailableError,
  RingKeyError,
  RingRedisService,
  type RingDictOptions,
} from '../../lib/index.js';
import { useNestApps } from '../helpers/nest-apps.js';
import { redisCommand } from '../helpers/redis-command.js';
import { serverOf } from '../helpers/redis-fleet.js';
import { sleep } from '../helpers/wait.js';

/**
 * @RingCached on a service: hits and misses, keys, ttl, concurrent misses, errors, a ring that
 * fails, eviction, route handlers and a method without metadata. Concurrent first calls
 * without metadata, and options checked at boot, are in ring-cached-declaration.spec.ts.
 */

@Injectable()
class WeatherService {
  calls = 0;

  @RingCached({ ttl: 30 })
  async forecast(city: string, days: number): Promise<{ city: string; days: number; n: number }> {
    this.calls++;
    return { city, days, n: this.calls };
  }

  @RingCached()
  async byQuery(_query: unknown): Promise<number> {
    this.calls++;
    return this.calls;
  }

  @RingCached()
  async slow(x: number): Promise<number> {
    this.calls++;
    await sleep(100);
    return x * 2;
  }

  @RingCached()
  async failing(x: number): Promise<number> {
    this.calls++;
    await sleep(50);
    throw new Error(`boom ${x}`);
  }

  @RingCached()
  async nothing(x: number): Promise<null | undefined> {
    this.calls++;
    return x === 0 ? null : undefined;
  }

  @RingCached({ cacheNullish: true })
  async nothingCached(x: number): Promise<null | undefined> {
    this.calls++;
    return x === 0 ? null : undefined;
  }

  @RingCached({ key: (id: number) => `id-${id}`, prefix: 'custom:' })
  async custom(id: number, noise: string): Promise<string> {
    this.calls++;
    return `${id}:${noise}`;
  }

  @SetMetadata('role', 'admin')
  @RingCached()
  async decorated(): Promise<string> {
    this.calls++;
    return 'ok';
  }

  // @ts-expect-error: @RingCached decorates methods that return a Promise only
  @RingCached()
  sync(x: number): number {
    this.calls++;
    return x + 1;
  }
}

@Controller('cached')
class CachedController {
  hits = 0;

  @Get(':id')
  @RingCached({ prefix: 'route:' })
  async get(@Param('id') id: string): Promise<{ id: string; served: number }> {
    this.hits++;
    return { id, served: this.hits };
  }
}

@Injectable()
class KeyTrouble {
  calls = 0;

  @RingCached({
    key: (id: number) => {
      if (id < 0) throw new Error(`no key for ${id}`);
      return String(id);
    },
  })
  async byId(id: number): Promise<number> {
    this.calls++;
    return id;
  }

  // A key function answering an object: "[object Object]" would be every call's key.
  @RingCached({ key: (id: number) => ({ id }) as unknown as string })
  async byObjectKey(id: number): Promise<number> {
    this.calls++;
    return id;
  }

  // No prefix: a key answered among the cache's own keys would be a tag's version key.
  @RingCached({ prefix: '', key: (tag: string) => `__ring-cached__:tag:${tag}:0` })
  async byOwnKey(tag: string): Promise<string> {
    this.calls++;
    return tag;
  }

  @RingCached()
  async onDay(day: Date): Promise<string> {
    this.calls++;
    return Number.isNaN(day.getTime()) ? 'no day' : day.toISOString().slice(0, 10);
  }
}

/** As plain JavaScript (or a compiler that emits no metadata) would declare it. */
class PlainJs {
  calls = 0;
  async lookup(id: number): Promise<number> {
    this.calls++;
    return id * 10;
  }
}
{
  const descriptor = Object.getOwnPropertyDescriptor(PlainJs.prototype, 'lookup')!;
  RingCached()(PlainJs.prototype, 'lookup', descriptor);
  Object.defineProperty(PlainJs.prototype, 'lookup', descriptor);
}

const nest = useNestApps();

afterEach(() => {
  vi.restoreAllMocks();
});

async function boot(
  prefix = 'app:',
  more: Partial<RingDictOptions<unknown, unknown>> = {},
): Promise<INestApplication> {
  return nest.boot({
    imports: [
      RingRedisModule.forRoot({
        groups: { default: nest.nodes() },
        defaults: { prefix, expire: 60, commandTimeout: 1000, heartbeatInterval: 100, ...more },
      }),
    ],
    providers: [WeatherService, PlainJs, KeyTrouble],
    controllers: [CachedController],
  });
}

/** PTTL of a cached call's entry on the node that holds it. */
async function pttlOf(app: INestApplication, key: string): Promise<number> {
  const dict = app.get(RingRedisService).getOrThrow('default');
  const entry = dict.getEntry(key);
  const node = dict.aliveHash.locate(entry)!;
  return Number(await redisCommand(serverOf(nest.fleet.servers, node).port, 'PTTL', entry));
}

describe('@RingCached', () => {
  it('misses once, then hits without calling the method; stores with the ttl in seconds', async () => {
    const app = await boot();
    const weather = app.get(WeatherService);
    const cache = app.get(RingCacheService);
    const first = await weather.forecast('Paris', 3);
    const second = await weather.forecast('Paris', 3);
    expect(first).toEqual({ city: 'Paris', days: 3, n: 1 });
    expect(second).toEqual(first);
    expect(weather.calls).toBe(1);
    await weather.forecast('Paris', 4);
    expect(weather.calls).toBe(2);
    const key = cache.keyFor(WeatherService, 'forecast', 'Paris', 3);
    expect(key).toBe('WeatherService.forecast:["Paris",3]');
    const pttl = await pttlOf(app, key);
    expect(pttl).toBeGreaterThan(29_000);
    expect(pttl).toBeLessThanOrEqual(30_000);
  });

  it("defaults the ttl to the group's expire", async () => {
    const app = await boot();
    await app.get(WeatherService).byQuery({ q: 1 });
    const pttl = await pttlOf(
      app,
      app.get(RingCacheService).keyFor(WeatherService, 'byQuery', { q: 1 }),
    );
    expect(pttl).toBeGreaterThan(59_000);
    expect(pttl).toBeLessThanOrEqual(60_000);
  });

  it('keys are stable: object key order does not matter, 1 and "1" differ', async () => {
    const app = await boot();
    const weather = app.get(WeatherService);
    const a = await weather.byQuery({ a: 1, b: 2 });
    const b = await weather.byQuery({ b: 2, a: 1 });
    expect(b).toBe(a);
    expect(weather.calls).toBe(1);
    await weather.byQuery(1);
    await weather.byQuery('1');
    expect(weather.calls).toBe(3);
    await weather.byQuery({ when: new Date(0), list: [[1], { z: 1, y: 2 }] });
    await weather.byQuery({ list: [[1], { y: 2, z: 1 }], when: new Date(0) });
    expect(weather.calls).toBe(4);
  });

  it('50 concurrent calls on a cold key run the method once', async () => {
    const app = await boot();
    const weather = app.get(WeatherService);
    const results = await Promise.all(Array.from({ length: 50 }, () => weather.slow(21)));
    expect(new Set(results)).toEqual(new Set([42]));
    expect(weather.calls).toBe(1);
  });

  it('errors propagate to every concurrent caller and are never cached', async () => {
    const app = await boot();
    const weather = app.get(WeatherService);
    const outcomes = await Promise.allSettled(Array.from({ length: 5 }, () => weather.failing(1)));
    expect(outcomes.every((o) => o.status === 'rejected' && /boom 1/.test(String(o.reason)))).toBe(
      true,
    );
    expect(weather.calls).toBe(1);
    await expect(weather.failing(1)).rejects.toThrow('boom 1');
    expect(weather.calls).toBe(2);
  });

  it('null and undefined are cached only with cacheNullish', async () => {
    const app = await boot();
    const weather = app.get(WeatherService);
    expect(await weather.nothing(0)).toBeNull();
    expect(await weather.nothing(0)).toBeNull();
    expect(weather.calls).toBe(2);
    expect(await weather.nothingCached(0)).toBeNull();
    expect(await weather.nothingCached(0)).toBeNull();
    expect(await weather.nothingCached(1)).toBeUndefined();
    expect(await weather.nothingCached(1)).toBeUndefined();
    expect(weather.calls).toBe(4);
  });

  it('a custom key function replaces the serialisation', async () => {
    const app = await boot();
    const weather = app.get(WeatherService);
    expect(await weather.custom(7, 'a')).toBe('7:a');
    expect(await weather.custom(7, 'b')).toBe('7:a');
    expect(weather.calls).toBe(1);
    expect(app.get(RingCacheService).keyFor(WeatherService, 'custom', 7, 'x')).toBe('custom:id-7');
  });

  it('never breaks the service: with every node down the method answers', async () => {
    const app = await boot();
    const weather = app.get(WeatherService);
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    await Promise.all(nest.fleet.servers.map((s) => s.kill()));
    for (let i = 0; i < 5; i++) expect(await weather.slow(5)).toBe(10);
    expect(weather.calls).toBe(5);
    // Logged at most once per interval, not once per call.
    const warnings = warn.mock.calls.filter(([m]) => String(m).includes('WeatherService.slow'));
    expect(warnings).toHaveLength(1);
  });

  it("with every node down, the group's onFail answer is not taken for a cached value", async () => {
    // A string JSON can parse, as a cached result would be: '0', 'null', '{}', ''.
    const app = await boot('onfail:', { onFail: () => '0' });
    const weather = app.get(WeatherService);
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    await Promise.all(nest.fleet.servers.map((s) => s.kill()));
    expect(await weather.slow(5)).toBe(10);
    expect(weather.calls).toBe(1);
  });

  it('a stored value that cannot be decoded: the method is called', async () => {
    const app = await boot();
    const weather = app.get(WeatherService);
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const dict = app.get(RingRedisService).getOrThrow('default');
    const key = app.get(RingCacheService).keyFor(WeatherService, 'slow', 3);
    await dict.visitRedis('SET', key, 'not json {');
    expect(await weather.slow(3)).toBe(6);
    expect(weather.calls).toBe(1);
  });

  it('arguments that cannot be serialised go through uncached, with a warning naming the method', async () => {
    const app = await boot();
    const weather = app.get(WeatherService);
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    await weather.byQuery(() => 1);
    await weather.byQuery(() => 1);
    expect(weather.calls).toBe(2);
    expect(String(warn.mock.calls[0][0])).toMatch(
      /WeatherService\.byQuery: an argument cannot be serialised/,
    );
  });

  it('a key function that throws or answers no string, or an invalid Date: answered by the method, never thrown', async () => {
    const app = await boot();
    const trouble = app.get(KeyTrouble);
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    // The async method's caller gets its Promise, not a synchronous throw.
    const pending = trouble.byId(-1);
    expect(pending).toBeInstanceOf(Promise);
    expect(await pending).toBe(-1);
    expect(await trouble.byId(-1)).toBe(-1);
    expect(trouble.calls).toBe(2);
    expect(String(warn.mock.calls[0][0])).toBe(
      'KeyTrouble.byId: the key function threw (no key for -1); called uncached',
    );
    warn.mockClear();
    expect([await trouble.byObjectKey(1), await trouble.byObjectKey(2)]).toEqual([1, 2]);
    expect(trouble.calls).toBe(4);
    expect(String(warn.mock.calls[0][0])).toBe(
      'KeyTrouble.byObjectKey: the key function returned {"id":1}, not a string; called uncached',
    );
    // Every invalid Date is the same value: cached under one key, like any argument.
    expect(await trouble.onDay(new Date('garbage'))).toBe('no day');
    expect(await trouble.onDay(new Date('also garbage'))).toBe('no day');
    expect(await trouble.onDay(new Date('2026-12-03T10:00:00Z'))).toBe('2026-12-03');
    expect(trouble.calls).toBe(6);
    warn.mockClear();
    expect([await trouble.byOwnKey('t'), await trouble.byOwnKey('t')]).toEqual(['t', 't']);
    expect(trouble.calls).toBe(8);
    expect(String(warn.mock.calls[0][0])).toBe(
      'KeyTrouble.byOwnKey: the key "__ring-cached__:tag:t:0" begins with "__ring-cached__:", ' +
        'where the cache keeps its tag versions and locks; called uncached',
    );
    const dict = app.get(RingRedisService).getOrThrow('default');
    expect(await dict.getRaw('__ring-cached__:tag:t:0')).toBeUndefined();
  });

  it('keyFor and evict of arguments that cannot be keyed throw a RingKeyError naming the method', async () => {
    const cache = (await boot()).get(RingCacheService);
    // An internal KeyAnswerError before, naming no method.
    expect(() => cache.keyFor(KeyTrouble, 'byObjectKey', 1)).toThrow(
      new RingKeyError('KeyTrouble.byObjectKey: the key function returned {"id":1}, not a string'),
    );
    await expect(cache.evict(KeyTrouble, 'byId', -1)).rejects.toThrow(
      new RingKeyError('KeyTrouble.byId: the key function threw (no key for -1)'),
    );
    await expect(cache.evict(KeyTrouble, 'byId', -1)).rejects.toBeInstanceOf(RingKeyError);
    expect(() => cache.keyFor(KeyTrouble, 'byObjectKey', 1)).toThrow(RingKeyError);
  });

  it('a method that does not return a Promise is called through, with a one-time warning', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const app = await boot();
    const weather = app.get(WeatherService);
    expect(weather.sync(1)).toBe(2);
    expect(weather.sync(1)).toBe(2);
    expect(weather.calls).toBe(2);
    expect(warn.mock.calls.filter(([m]) => String(m).includes('WeatherService.sync'))).toHaveLength(
      1,
    );
  });

  it('without return type metadata, the first call teaches it and is cached too', async () => {
    expect(Reflect.getMetadata('design:returntype', PlainJs.prototype, 'lookup')).toBeUndefined();
    const app = await boot();
    const plain = app.get(PlainJs);
    expect(await plain.lookup(4)).toBe(40);
    expect(await plain.lookup(4)).toBe(40);
    expect(plain.calls).toBe(1);
  });

  it("keeps the method's name and other decorators' metadata", async () => {
    expect(WeatherService.prototype.forecast.name).toBe('forecast');
    expect(Reflect.getMetadata('role', WeatherService.prototype.decorated)).toBe('admin');
    const app = await boot();
    expect(await app.get(WeatherService).decorated()).toBe('ok');
  });

  it('works on controller route handlers', async () => {
    const app = await boot();
    const server = app.getHttpServer();
    const first = await request(server).get('/cached/5').expect(200);
    const second = await request(server).get('/cached/5').expect(200);
    expect(first.body).toEqual({ id: '5', served: 1 });
    expect(second.body).toEqual(first.body);
    expect(app.get(CachedController).hits).toBe(1);
  });

  it('evicts one call by its arguments, and every call of a method by its prefix', async () => {
    const app = await boot();
    const weather = app.get(WeatherService);
    const cache = app.get(RingCacheService);
    for (const server of nest.fleet.servers)
      await redisCommand(server.port, 'SET', 'foreign:1', 'x');
    await weather.forecast('Oslo', 1);
    await weather.forecast('Rome', 1);
    await weather.byQuery(1);
    expect(await cache.evict(WeatherService, 'forecast', 'Oslo', 1)).toBe(true);
    expect(await cache.evict(WeatherService, 'forecast', 'Oslo', 1)).toBe(false);
    await weather.forecast('Oslo', 1);
    await weather.forecast('Rome', 1);
    expect(weather.calls).toBe(4);
    expect(await cache.evictAll(WeatherService, 'forecast')).toBe(2);
    await weather.forecast('Rome', 1);
    await weather.byQuery(1);
    expect(weather.calls).toBe(5);
    for (const server of nest.fleet.servers)
      expect(await redisCommand(server.port, 'GET', 'foreign:1')).toBe('x');
  });

  it("evict and evictAll reject with no node alive, whatever the group's onFail answers", async () => {
    // onFail's answer was taken for theirs: evictAll counted 7 entries, evict said removed.
    for (const onFail of [() => 7, () => true]) {
      const app = await boot('gone:', { onFail, retryRatio: 0 });
      const cache = app.get(RingCacheService);
      await app.get(WeatherService).forecast('Oslo', 1);
      await Promise.all(nest.fleet.servers.map((server) => server.kill()));
      await expect(cache.evictAll(WeatherService, 'forecast')).rejects.toBeInstanceOf(
        RingClusterUnavailableError,
      );
      await expect(cache.evict(WeatherService, 'forecast', 'Oslo', 1)).rejects.toBeInstanceOf(
        RingClusterUnavailableError,
      );
      await Promise.all(nest.fleet.servers.map((server) => server.restart()));
      await app.close();
    }
  });

  it('two apps in one process keep separate caches', async () => {
    const a = await boot('a:');
    const b = await boot('b:');
    const wa = a.get(WeatherService);
    const wb = b.get(WeatherService);
    expect(wa).not.toBe(wb);
    await wa.forecast('Lima', 2);
    await wa.forecast('Lima', 2);
    await wb.forecast('Lima', 2);
    expect(wa.calls).toBe(1);
    expect(wb.calls).toBe(1);
    const key = a.get(RingCacheService).keyFor(WeatherService, 'forecast', 'Lima', 2);
    const da = a.get(RingRedisService).getOrThrow('default');
    const db = b.get(RingRedisService).getOrThrow('default');
    expect(da.getEntry(key)).toBe('a:WeatherService.forecast:["Lima",2]');
    expect(await da.has(key)).toBe(true);
    expect(await db.has(key)).toBe(true);
    await nest.closeNow(a);
    // b still works on its own after a is gone.
    await wb.forecast('Lima', 2);
    expect(wb.calls).toBe(1);
  });
});
