import 'reflect-metadata';
import { Injectable, Logger, type INestApplication } from '@nestjs/common';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  RingCacheService,
  RingCached,
  RingRedisModule,
  RingRedisService,
} from '../../lib/index.js';
import { fast, useNestApps } from '../helpers/nest-apps.js';
import { redisCommand } from '../helpers/redis-command.js';
import { serverOf } from '../helpers/redis-fleet.js';
import { sleep, until } from '../helpers/wait.js';

/**
 * @RingCached that keeps serving when its method does not: grace (the stale value when the
 * method fails, the method retried once per graceBackoff per process), soft timeouts (the
 * stale value when the method is slow, its result stored in the background) and refresh-ahead
 * (a hit close to expiry refreshed in the background), with the ring failing in the middle.
 * Times are scaled down from the goals (60 s outages, 2 s ttls) with the same ratios.
 */

/** A backend that can be made to fail or to be slow, shared by every app of a test. */
class Backend {
  failing = false;
  /** Answers null (not cached without cacheNullish). */
  nullish = false;
  delayMs = 0;
  version = 0;
  /** Runs per app (by its label), and when each run started. */
  readonly runs: { app: string; at: number }[] = [];

  async load(app: string, id: number): Promise<string> {
    this.runs.push({ app, at: performance.now() });
    if (this.delayMs > 0) await sleep(this.delayMs);
    if (this.failing) throw new Error(`backend down (${id})`);
    if (this.nullish) return null as unknown as string;
    return `v${this.version}:${id}`;
  }
}

let backend = new Backend();

@Injectable()
class Catalog {
  /** Which app this instance belongs to (set after boot). */
  app = '';

  @RingCached({ ttl: '200ms', grace: '10s', graceBackoff: '300ms' })
  async item(id: number): Promise<string> {
    return backend.load(this.app, id);
  }

  @RingCached({ ttl: '200ms', grace: '10s', softTimeout: '50ms' })
  async slowItem(id: number): Promise<string> {
    return backend.load(this.app, id);
  }

  @RingCached({ ttl: 1, refreshAhead: 0.5 })
  async hot(id: number): Promise<string> {
    return backend.load(this.app, id);
  }

  @RingCached({ ttl: 2, refreshAhead: 0.5, grace: '10s' })
  async hotInGrace(id: number): Promise<string> {
    return backend.load(this.app, id);
  }
}

const nest = useNestApps();

afterEach(() => {
  vi.restoreAllMocks();
  backend = new Backend();
});

async function boot(app = 'a'): Promise<INestApplication> {
  const nestApp = await nest.boot({
    imports: [
      RingRedisModule.forRoot({
        groups: { default: nest.nodes() },
        defaults: { prefix: 'grace:', ...fast },
      }),
    ],
    providers: [Catalog],
  });
  nestApp.get(Catalog).app = app;
  return nestApp;
}

function quiet() {
  return vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
}

describe('@RingCached grace', () => {
  it('answers the stale value while the method fails, and runs it at most once per graceBackoff per process', async () => {
    const warn = quiet();
    // Two processes' worth of apps over the same nodes.
    const apps = [await boot('a'), await boot('b')];
    const catalogs = apps.map((app) => app.get(Catalog));
    const ids = [1, 2, 3];
    for (const id of ids) expect(await catalogs[0].item(id)).toBe(`v0:${id}`);
    await sleep(250); // past the ttl: stale, in grace
    backend.failing = true;
    backend.runs.length = 0;
    // The backend fails 100 % for 1.5 s (5 backoffs): every call still answers.
    const start = performance.now();
    let thrown = 0;
    let calls = 0;
    while (performance.now() - start < 1_500) {
      const results = await Promise.allSettled(
        catalogs.flatMap((catalog) => ids.map((id) => catalog.item(id))),
      );
      calls += results.length;
      for (const [i, result] of results.entries()) {
        if (result.status === 'rejected') thrown++;
        else expect(result.value).toBe(`v0:${ids[i % ids.length]}`);
      }
      await sleep(20);
    }
    expect(calls).toBeGreaterThan(200);
    expect(thrown).toBe(0);
    // Per key and app: one run at first, then at most one per 300 ms backoff.
    for (const app of ['a', 'b']) {
      const runs = backend.runs.filter((run) => run.app === app);
      expect(runs.length).toBeGreaterThanOrEqual(ids.length);
      expect(runs.length).toBeLessThanOrEqual(ids.length * (Math.ceil(1_500 / 300) + 1));
    }
    expect(
      warn.mock.calls.some(([m]) =>
        /Catalog\.item: the method failed \(backend down/.test(String(m)),
      ),
    ).toBe(true);
    // The backend is back: the next run after the backoff stores a fresh value.
    backend.failing = false;
    backend.version = 1;
    await sleep(350);
    expect(await catalogs[0].item(1)).toBe('v1:1');
    expect(await catalogs[1].item(1)).toBe('v1:1');
  });

  it('keeps the entry ttl + grace in Redis, and a fresh value needs no run', async () => {
    const app = await boot();
    const catalog = app.get(Catalog);
    await catalog.item(7);
    await catalog.item(7);
    expect(backend.runs).toHaveLength(1);
    const dict = app.get(RingRedisService).getOrThrow('default');
    const entry = dict.getEntry(app.get(RingCacheService).keyFor(Catalog, 'item', 7));
    const port = serverOf(nest.fleet.servers, dict.aliveHash.locate(entry)!).port;
    const pttl = Number(await redisCommand(port, 'PTTL', entry));
    expect(pttl).toBeGreaterThan(10_000);
    expect(pttl).toBeLessThanOrEqual(10_200);
  });

  it('a cold key has no stale value: the method’s error reaches the caller', async () => {
    quiet();
    const catalog = (await boot()).get(Catalog);
    backend.failing = true;
    await expect(catalog.item(9)).rejects.toThrow('backend down (9)');
  });
});

describe('@RingCached softTimeout', () => {
  it('a run slower than softTimeout answers the stale value; the run finishes and is stored', async () => {
    const catalog = (await boot()).get(Catalog);
    expect(await catalog.slowItem(1)).toBe('v0:1');
    await sleep(250);
    backend.version = 1;
    backend.delayMs = 300;
    const started = performance.now();
    expect(await catalog.slowItem(1)).toBe('v0:1');
    // 50 ms and one round trip, with room for a loaded machine.
    expect(performance.now() - started).toBeLessThan(250);
    // The background run stores its result: the next call sees it without a run of its own.
    await until(async () => (await catalog.slowItem(1)) === 'v1:1', 3_000, 'the refreshed value');
    expect(backend.runs).toHaveLength(2);
  });

  it('a run within softTimeout answers its own fresh value', async () => {
    const catalog = (await boot()).get(Catalog);
    await catalog.slowItem(2);
    await sleep(250);
    backend.version = 1;
    backend.delayMs = 5;
    expect(await catalog.slowItem(2)).toBe('v1:2');
  });
});

describe('@RingCached refreshAhead', () => {
  it('read every 50 ms on a 1 s ttl: one miss, then every call a hit, refreshed in the background', async () => {
    const catalog = (await boot()).get(Catalog);
    backend.delayMs = 100;
    const slow: number[] = [];
    const values = new Set<string>();
    const start = performance.now();
    let first = true;
    while (performance.now() - start < 3_000) {
      const t0 = performance.now();
      backend.version = Math.floor((t0 - start) / 500);
      values.add(await catalog.hot(1));
      // A miss waits for the 100 ms method; a hit does not.
      if (!first && performance.now() - t0 >= 100) slow.push(performance.now() - t0);
      first = false;
      await sleep(50);
    }
    expect(slow).toEqual([]);
    // Refreshed about every 0.5 s, never more than once at a time.
    expect(backend.runs.length).toBeGreaterThanOrEqual(4);
    expect(backend.runs.length).toBeLessThanOrEqual(8);
    expect(values.size).toBeGreaterThanOrEqual(3);
  });

  it('a background refresh that finds the ring unavailable is logged; the service keeps answering', async () => {
    const warn = quiet();
    const catalog = (await boot()).get(Catalog);
    await catalog.hot(2);
    await sleep(600); // under half the ttl left: the next hit refreshes
    backend.delayMs = 200;
    expect(await catalog.hot(2)).toBe('v0:2');
    // The ring goes away while the refresh runs: its write fails.
    await Promise.all(nest.fleet.servers.map((server) => server.kill()));
    await until(
      () => warn.mock.calls.some(([m]) => /Catalog\.hot: cache write failed/.test(String(m))),
      3_000,
      'the failed write to be logged',
    );
    backend.version = 1;
    backend.delayMs = 0;
    // No ring: the method answers.
    expect(await catalog.hot(2)).toBe('v1:2');
  });

  // The entry stayed as close to its expiry, so every hit started another run: 55 of 56. The
  // hold is refresh-ahead's own: past the ttl, grace runs the method as usual (it answered the
  // stale value, the method not run, for graceBackoff).
  it('a refresh that stores nothing (a null result) is not run again on every hit', async () => {
    const catalog = (await boot()).get(Catalog);
    expect(await catalog.hotInGrace(3)).toBe('v0:3');
    await sleep(1_100); // under half the ttl left
    backend.nullish = true;
    const before = backend.runs.length;
    const answers = new Set<string>();
    for (const started = performance.now(); performance.now() - started < 300;) {
      answers.add(await catalog.hotInGrace(3));
      await sleep(5);
    }
    expect(answers).toEqual(new Set(['v0:3']));
    expect(backend.runs.length - before).toBe(1);
    await sleep(2_100 - 1_100 - 300 + 200); // past the ttl, in grace
    expect(await catalog.hotInGrace(3)).toBeNull();
    expect(backend.runs.length - before).toBe(2);
  });
});
