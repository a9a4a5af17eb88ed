import 'reflect-metadata';
import { Injectable, Logger, type INestApplication } from '@nestjs/common';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RingCacheService, RingCached, RingRedisModule } from '../../lib/index.js';
import { fast, useNestApps } from '../helpers/nest-apps.js';
import { sleep, until } from '../helpers/wait.js';

/**
 * The resilient options together: an invalidated value is never answered as a stale one, a
 * lock makes a stale refresh single-flight across apps, tags and a lock on one key, and an
 * entry written with options read by a method without them (a rolling deploy), tags included.
 */

let state = { version: 0, failing: false, delayMs: 0 };
let runs: string[] = [];

async function load(app: string, id: number): Promise<string> {
  runs.push(app);
  if (state.delayMs > 0) await sleep(state.delayMs);
  if (state.failing) throw new Error('backend down');
  return `v${state.version}:${id}`;
}

@Injectable()
class Products {
  app = '';

  @RingCached({ ttl: '200ms', grace: '10s', tags: (id: number) => [`product:${id}`] })
  async tagged(id: number): Promise<string> {
    return load(this.app, id);
  }

  @RingCached({ ttl: '200ms', grace: '10s', lock: true })
  async shared(id: number): Promise<string> {
    return load(this.app, id);
  }

  @RingCached({ ttl: 30, lock: { ttl: '2s' }, tags: () => ['catalog'] })
  async listing(id: number): Promise<string> {
    return load(this.app, id);
  }

  @RingCached({ prefix: 'rolling:', ttl: 30, grace: '1m' })
  async withGrace(id: number): Promise<string> {
    return load(this.app, id);
  }

  @RingCached({ prefix: 'rolling:', ttl: 30 })
  async plain(id: number): Promise<string> {
    return load(this.app, id);
  }

  @RingCached({ prefix: 'untagging:', ttl: 30, tags: (id: number) => [`product:${id}`] })
  async taggedBefore(id: number): Promise<string> {
    return load(this.app, id);
  }

  /** `taggedBefore` after a deploy that removed its tags and gave it `grace`. */
  @RingCached({ prefix: 'untagging:', ttl: 30, grace: '1m' })
  async untaggedAfter(id: number): Promise<string> {
    return load(this.app, id);
  }
}

const nest = useNestApps();

afterEach(() => {
  vi.restoreAllMocks();
  state = { version: 0, failing: false, delayMs: 0 };
  runs = [];
});

async function boot(app: string): Promise<INestApplication> {
  const nestApp = await nest.boot({
    imports: [
      RingRedisModule.forRoot({
        groups: { default: nest.nodes() },
        defaults: { prefix: 'combined:', ...fast, retryRatio: 0 },
      }),
    ],
    providers: [Products],
  });
  nestApp.get(Products).app = app;
  return nestApp;
}

describe('@RingCached options together', () => {
  it('grace never answers a value whose tag was invalidated: the method’s error reaches the caller', async () => {
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const app = await boot('a');
    const products = app.get(Products);
    expect(await products.tagged(1)).toBe('v0:1');
    await sleep(250); // stale, in grace
    state.failing = true;
    expect(await products.tagged(1)).toBe('v0:1'); // stale-if-error, not invalidated
    await app.get(RingCacheService).invalidateTags(['product:1']);
    await expect(products.tagged(1)).rejects.toThrow('backend down');
  });

  it('grace with a lock: one app refreshes a stale value, the others answer it meanwhile', async () => {
    const [a, b] = [await boot('a'), await boot('b')];
    expect(await a.get(Products).shared(1)).toBe('v0:1');
    await sleep(250);
    state = { version: 1, failing: false, delayMs: 300 };
    runs = [];
    const refreshing = a.get(Products).shared(1);
    await sleep(50);
    // b finds the lock taken: a is refreshing; b answers the stale value without a run.
    const started = performance.now();
    expect(await b.get(Products).shared(1)).toBe('v0:1');
    expect(performance.now() - started).toBeLessThan(200);
    expect(await refreshing).toBe('v1:1');
    expect(runs).toEqual(['a']);
    expect(await b.get(Products).shared(1)).toBe('v1:1');
  });

  it('tags with a lock: after an invalidation, callers in two apps share one run', async () => {
    const [a, b] = [await boot('a'), await boot('b')];
    await a.get(Products).listing(1);
    await a.get(RingCacheService).invalidateTags(['catalog']);
    state = { version: 1, failing: false, delayMs: 50 };
    runs = [];
    const results = await Promise.all(
      [a, b].flatMap((app) => Array.from({ length: 10 }, () => app.get(Products).listing(1))),
    );
    expect(new Set(results)).toEqual(new Set(['v1:1']));
    expect(runs).toHaveLength(1);
  });

  it('grace, a lock and tags: a refresh begun before an invalidation is not answered to a call after it', async () => {
    const app = await boot('a');
    const cache = app.get(RingCacheService);
    let db = 'v0';
    let begun = 0;
    const load = async () => {
      begun++;
      const value = db;
      await sleep(200);
      return value;
    };
    const options = { ttl: 0.1, grace: 60, tags: ['product:9'], lock: true };
    expect(await cache.wrap('refreshed', load, options)).toBe('v0');
    await sleep(150); // stale, in grace: the next call refreshes it in the background
    const refreshing = cache.wrap('refreshed', load, options);
    await until(() => begun === 2, 2_000, 'the refresh begins');
    db = 'v1';
    await cache.invalidateTags(['product:9']);
    expect(await cache.wrap('refreshed', load, options)).toBe('v1');
    expect(await refreshing).toBe('v0'); // begun before the invalidation
    expect(await cache.wrap('refreshed', load, options)).toBe('v1');
  });

  it('an entry that recorded tags misses for a call without them: no invalidated value is answered', async () => {
    const app = await boot('a');
    const products = app.get(Products);
    const cache = app.get(RingCacheService);
    expect(await products.taggedBefore(1)).toBe('v0:1');
    await cache.invalidateTags(['product:1']);
    state.version = 1;
    expect(await products.untaggedAfter(1)).toBe('v1:1');
    // wrap, on a key a tagged wrap wrote; the same without an invalidation.
    const tagged = { ttl: 30, tags: ['w'] };
    expect(await cache.wrap('w:1', async () => 'old', tagged)).toBe('old');
    expect(await cache.wrap('w:2', async () => 'old', tagged)).toBe('old');
    await cache.invalidateTags(['w']);
    expect(await cache.wrap('w:1', async () => 'new', { ttl: 30 })).toBe('new');
    expect(await cache.wrap('w:1', async () => 'newer', { ttl: 30 })).toBe('new');
    expect(await cache.wrap('w:2', async () => 'new', { ttl: 30, grace: 60 })).toBe('new');
    expect(runs).toEqual(['a', 'a']);
  });

  it('a rolling deploy: a method without grace reads the entry of one with it, and the other way round', async () => {
    const app = await boot('a');
    const products = app.get(Products);
    // Both methods share a prefix, as one method would across two versions of the app.
    expect(await products.withGrace(1)).toBe('v0:1');
    expect(await products.plain(1)).toBe('v0:1');
    expect(await products.plain(2)).toBe('v0:2');
    expect(await products.withGrace(2)).toBe('v0:2');
    expect(runs).toHaveLength(2);
  });
});
