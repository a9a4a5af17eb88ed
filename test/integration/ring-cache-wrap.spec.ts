import 'reflect-metadata';
import { Injectable, Logger, type INestApplication } from '@nestjs/common';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  RingArgumentError,
  RingCacheService,
  RingCached,
  RingConfigError,
  RingRedisModule,
  RingRedisService,
} from '../../lib/index.js';
import { fast, useNestApps } from '../helpers/nest-apps.js';
import { redisCommand } from '../helpers/redis-command.js';
import { serverOf } from '../helpers/redis-fleet.js';
import { sleep } from '../helpers/wait.js';

/**
 * `RingCacheService.wrap(key, fn, options)`, as cache-manager's wrap: a cached function under
 * a key of the caller's, with `@RingCached`'s options; and durations with units wherever a
 * duration goes (`ttl`, the group's `expire`, `grace`).
 */

@Injectable()
class Clock {
  calls = 0;

  @RingCached({ ttl: '1500ms' })
  async tick(): Promise<number> {
    return ++this.calls;
  }
}

const nest = useNestApps();

afterEach(() => {
  vi.restoreAllMocks();
});

async function boot(expire: number | string = '5m'): Promise<INestApplication> {
  return nest.boot({
    imports: [
      RingRedisModule.forRoot({
        groups: { default: nest.nodes(), other: nest.nodes(0, 1) },
        defaults: { prefix: 'wrap:', expire: expire as never, ...fast },
      }),
    ],
    providers: [Clock],
  });
}

async function pttl(app: INestApplication, key: string, group = 'default'): Promise<number> {
  const dict = app.get(RingRedisService).getOrThrow(group);
  const entry = dict.getEntry(key);
  return Number(
    await redisCommand(
      serverOf(nest.fleet.servers, dict.aliveHash.locate(entry)!).port,
      'PTTL',
      entry,
    ),
  );
}

describe('RingCacheService.wrap', () => {
  it("caches fn's result under the key, with the group's expire by default", async () => {
    const app = await boot();
    const cache = app.get(RingCacheService);
    let runs = 0;
    const fn = async () => ({ n: ++runs });
    expect(await cache.wrap('profile:1', fn)).toEqual({ n: 1 });
    expect(await cache.wrap('profile:1', fn)).toEqual({ n: 1 });
    expect(runs).toBe(1);
    // Plain JSON under the group's prefix + the key, as RingDict stores it.
    expect(await app.get(RingRedisService).getOrThrow('default').get('profile:1')).toEqual({
      n: 1,
    });
    const left = await pttl(app, 'profile:1');
    expect(left).toBeGreaterThan(299_000);
    expect(left).toBeLessThanOrEqual(300_000);
  });

  it('takes ttl as a duration, a group, and concurrent calls share one run', async () => {
    const app = await boot();
    const cache = app.get(RingCacheService);
    let runs = 0;
    const fn = async () => {
      await sleep(50);
      return ++runs;
    };
    const options = { ttl: '2s', group: 'other' } as const;
    const results = await Promise.all(
      Array.from({ length: 20 }, () => cache.wrap('w', fn, options)),
    );
    expect(new Set(results)).toEqual(new Set([1]));
    const left = await pttl(app, 'w', 'other');
    expect(left).toBeGreaterThan(1_500);
    expect(left).toBeLessThanOrEqual(2_000);
    expect(await app.get(RingRedisService).getOrThrow('default').has('w')).toBe(false);
  });

  it('with grace: the stale value when fn fails', async () => {
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const cache = (await boot()).get(RingCacheService);
    const options = { ttl: '100ms', grace: '10s' } as const;
    expect(await cache.wrap('g', async () => 'fresh', options)).toBe('fresh');
    await sleep(150);
    expect(
      await cache.wrap(
        'g',
        async () => {
          throw new Error('down');
        },
        options,
      ),
    ).toBe('fresh');
  });

  it('errors are never cached; a synchronous throw rejects', async () => {
    const cache = (await boot()).get(RingCacheService);
    await expect(
      cache.wrap('e', () => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
    expect(await cache.wrap('e', async () => 'ok')).toBe('ok');
  });

  it.each<[unknown, RegExp]>([
    [{ ttl: '1 minute' }, /^wrap: ttl: expected a duration > 0/],
    [{ tags: 'users' }, /^wrap: tags: expected an array of strings, got "users"$/],
    [{ group: 'nope' }, /no group "nope"/],
    [{ grace: 5, softTimeout: 0 }, /^wrap: softTimeout: expected a duration > 0/],
    [{ lokc: true }, /^wrap: unknown option "lokc"/],
  ])('options %o reject with a RingConfigError naming the option', async (options, message) => {
    const cache = (await boot()).get(RingCacheService);
    const attempt = cache.wrap('k', async () => 1, options as never);
    await expect(attempt).rejects.toBeInstanceOf(RingConfigError);
    await expect(attempt).rejects.toThrow(message);
  });

  it("a key among the cache's own (tag versions, locks) is refused, the tag's entries kept", async () => {
    const cache = (await boot()).get(RingCacheService);
    let runs = 0;
    const tagged = () => cache.wrap('report', async () => ++runs, { ttl: 60, tags: ['t'] });
    expect([await tagged(), await tagged()]).toEqual([1, 1]);
    for (const key of ['__ring-cached__:tag:t:0', '__ring-cached__:lock:0:report']) {
      const attempt = cache.wrap(key, async () => 'unrelated', { ttl: 60 });
      await expect(attempt).rejects.toThrow(
        new RingArgumentError(
          `wrap: the key "${key}" begins with "__ring-cached__:", where the cache keeps its tag ` +
            'versions and locks',
        ),
      );
    }
    expect(await tagged()).toBe(1);
  });

  it('a key that is not a non-empty string is refused', async () => {
    const cache = (await boot()).get(RingCacheService);
    await expect(cache.wrap('', async () => 1)).rejects.toBeInstanceOf(RingArgumentError);
    await expect(cache.wrap(7 as never, async () => 1)).rejects.toBeInstanceOf(RingArgumentError);
    // Objects whose string form throws: the message must not (a TypeError, or their own error).
    const throwing = {
      toString() {
        throw new Error('no string');
      },
    };
    for (const key of [Object.create(null), throwing]) {
      await expect(cache.wrap(key as never, async () => 1)).rejects.toThrow(
        new RingArgumentError('wrap: the key must be a non-empty string, got {}'),
      );
    }
  });
});

describe('durations', () => {
  it("@RingCached ttl '1500ms' and a group expire of '5m' are stored as such", async () => {
    const app = await boot();
    await app.get(Clock).tick();
    const left = await pttl(app, app.get(RingCacheService).keyFor(Clock, 'tick'));
    expect(left).toBeGreaterThan(1_000);
    expect(left).toBeLessThanOrEqual(1_500);
    expect(app.get(RingRedisService).getOrThrow('default').expire).toBe(300);
  });

  it('a bad group expire fails the boot naming the group and the option', async () => {
    await expect(boot('5 min')).rejects.toThrow(
      /group "default": expire: expected a duration > 0 .* got "5 min"/,
    );
  });
});
