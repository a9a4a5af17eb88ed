import 'reflect-metadata';
import { Injectable, Logger, type INestApplication } from '@nestjs/common';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  RingCacheService,
  RingCached,
  RingRedisModule,
  RingRedisService,
  type RingDict,
  type RingNodesConfig,
} from '../../lib/index.js';
import { fast, nestAppScript, useNestApps } from '../helpers/nest-apps.js';
import { startNodeScript } from '../helpers/node-script.js';
import { deleteIfHolds } from '../../lib/core/read-through.js';
import { serverOf } from '../helpers/redis-fleet.js';
import { sleep, until } from '../helpers/wait.js';

/**
 * `lock`: on a cold key one process in the fleet runs the method while the others wait for
 * its value, bounded by the lock's ttl; the lock lives on the key's own node. Several Nest
 * apps stand for several processes (each has its own connections and single-flight table);
 * a holder that dies is a real child process, killed.
 */

/** Runs of the method in every app of a test, and how each behaves (by app label). */
let runs: { app: string; key: string; at: number }[] = [];
let behaviour: Record<string, { delayMs?: number; fails?: boolean }> = {};

@Injectable()
class Reports {
  app = '';

  @RingCached({ ttl: 30, lock: { ttl: '2s' } })
  build(key: string): Promise<string> {
    return this.work(key);
  }

  @RingCached({ ttl: 30, lock: { ttl: '2s' }, tags: (key: string) => [`r:${key}`] })
  tagged(key: string): Promise<string> {
    return this.work(key);
  }

  private async work(key: string): Promise<string> {
    runs.push({ app: this.app, key, at: performance.now() });
    const { delayMs = 50, fails = false } = behaviour[this.app] ?? {};
    await sleep(delayMs);
    if (fails) throw new Error(`build failed in ${this.app}`);
    return `report ${key} by ${this.app}`;
  }
}

const nest = useNestApps();

/**
 * A child process that takes the lock of `key` (ttl 1 s) through `wrap`, says so, and is
 * killed with its method still running; answers when it said so.
 */
async function killedHolder(key: string): Promise<number> {
  const child = startNodeScript(
    nestAppScript(
      {
        groups: { default: nest.nodes() },
        defaults: { prefix: 'lock:', heartbeatInterval: 100, commandTimeout: 300, retryRatio: 0 },
      },
      `void cache.wrap(${JSON.stringify(key)}, () => {
        console.log('running');
        return new Promise(() => undefined);
      }, { ttl: 30, lock: { ttl: 1000 } });`,
    ),
  );
  await child.line(/^running$/);
  const lockedAt = performance.now();
  await child.kill();
  return lockedAt;
}

afterEach(() => {
  vi.restoreAllMocks();
  runs = [];
  behaviour = {};
});

async function boot(app: string, nodes: RingNodesConfig = nest.nodes()): Promise<INestApplication> {
  const nestApp = await nest.boot({
    imports: [
      RingRedisModule.forRoot({
        groups: { default: nodes },
        defaults: { prefix: 'lock:', ...fast, retryRatio: 0 },
      }),
    ],
    providers: [Reports],
  });
  nestApp.get(Reports).app = app;
  return nestApp;
}

describe('@RingCached lock', () => {
  it('8 apps × 25 concurrent callers on a cold key: one run, every caller gets its value', async () => {
    const apps = await Promise.all(Array.from({ length: 8 }, (_, i) => boot(`p${i}`)));
    const reports = apps.map((app) => app.get(Reports));
    for (let trial = 0; trial < 20; trial++) {
      const key = `cold-${trial}`;
      const results = await Promise.all(
        reports.flatMap((report) => Array.from({ length: 25 }, () => report.build(key))),
      );
      const trialRuns = runs.filter((run) => run.key === key);
      expect(trialRuns).toHaveLength(1);
      expect(new Set(results)).toEqual(new Set([`report ${key} by ${trialRuns[0].app}`]));
    }
  });

  it('a holder whose method fails gives the key back: a waiter runs it at once, not after the lock ttl', async () => {
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const [a, b] = [await boot('a'), await boot('b')];
    behaviour = { a: { delayMs: 100, fails: true }, b: { delayMs: 10 } };
    const first = a.get(Reports).build('k');
    // a holds the lock once its method runs (a fixed pause lost that race on a loaded machine).
    await until(() => runs.some((run) => run.app === 'a'), 2_000, 'a runs the method');
    const started = performance.now();
    const second = b.get(Reports).build('k');
    await expect(first).rejects.toThrow('build failed in a');
    expect(await second).toBe('report k by b');
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(runs.map((run) => run.app)).toEqual(['a', 'b']);
  });

  it('a holder whose method fails and whose app closes at once still gives the key back', async () => {
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const [a, b] = [await boot('a'), await boot('b')];
    behaviour = { a: { delayMs: 10, fails: true }, b: { delayMs: 10 } };
    await expect(a.get(Reports).build('closing')).rejects.toThrow('build failed in a');
    await nest.closeNow(a);
    // The lock's ttl is 2 s: b runs at once, not when it expires.
    const started = performance.now();
    expect(await b.get(Reports).build('closing')).toBe('report closing by b');
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('owner hung while a lock is held: the waiter moves to the next node within commandTimeout', async () => {
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const [a, b] = [await boot('a'), await boot('b')];
    behaviour = { a: { delayMs: 2_500 }, b: { delayMs: 10 } };
    const first = a.get(Reports).build('hang');
    await until(() => runs.some((run) => run.app === 'a'), 2_000, 'a runs the method');
    const started = performance.now();
    const second = b.get(Reports).build('hang');
    await sleep(50);
    const dict = b.get(RingRedisService).getOrThrow('default');
    const entry = dict.getEntry(b.get(RingCacheService).keyFor(Reports, 'build', 'hang'));
    serverOf(nest.fleet.servers, dict.aliveHash.locate(entry)!).hang();
    // The lock (2 s) went with the hung node: b ejects it after commandTimeout (300 ms),
    // finds no lock on the next node, takes it there and runs.
    expect(await second).toBe('report hang by b');
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(runs.map((run) => run.app)).toEqual(['a', 'b']);
    await first.catch(() => undefined);
  });

  // The waiter that took the lock recorded the versions of the first read, on the lost node:
  // its entry was a miss for every other waiter, which ran in turn (3 runs of 3 apps).
  it.each(['killed', 'hung'])(
    'tagged, the owner %s while 3 apps × 5 callers wait: one run between them, one value',
    async (how) => {
      vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
      const apps = await Promise.all(['a', 'b', 'c', 'd'].map((name) => boot(name)));
      behaviour = { a: { delayMs: 4_000 }, b: { delayMs: 100 }, c: { delayMs: 100 } };
      behaviour.d = { delayMs: 100 };
      const key = `tagged-${how}`;
      const holder = apps[0].get(Reports).tagged(key);
      await until(() => runs.some((run) => run.app === 'a'), 2_000, 'a runs the method');
      const waiting = apps
        .slice(1)
        .flatMap((app) => Array.from({ length: 5 }, () => app.get(Reports).tagged(key)));
      await sleep(100);
      const dict = apps[0].get(RingRedisService).getOrThrow('default');
      const entry = dict.getEntry(apps[0].get(RingCacheService).keyFor(Reports, 'tagged', key));
      const server = serverOf(nest.fleet.servers, dict.aliveHash.locate(entry)!);
      if (how === 'killed') await server.kill();
      else server.hang();
      const values = await Promise.all(waiting);
      const waiterRuns = runs.filter((run) => run.app !== 'a');
      expect(waiterRuns).toHaveLength(1);
      expect(new Set(values)).toEqual(new Set([`report ${key} by ${waiterRuns[0].app}`]));
      await holder.catch(() => undefined);
    },
  );

  it('a holder that is killed delays the next run by the lock ttl at most', async () => {
    const app = await boot('parent');
    const lockedAt = await killedHolder('report:killed');
    let ranAt = 0;
    const value = await app.get(RingCacheService).wrap(
      'report:killed',
      async () => {
        ranAt = performance.now();
        return 'built by the parent';
      },
      { ttl: 30, lock: { ttl: 1000 } },
    );
    expect(value).toBe('built by the parent');
    const delay = ranAt - lockedAt;
    // The lock expires 1 s after the child took it (a little before it printed): the parent
    // runs right after, within one poll (25 ms) and a round trip, with room for a busy machine.
    expect(delay).toBeGreaterThan(800);
    expect(delay).toBeLessThan(1_500);
  });

  it('a holder that is killed: the apps waiting on it run the method once between them', async () => {
    const apps = await Promise.all(['a', 'b', 'c', 'd'].map((name) => boot(name)));
    await killedHolder('report:orphaned');
    // Each waiter's own wait ends a little after the lock expires; the first to take the lock
    // in turn runs, and the others wait for that one instead of running too.
    const values = await Promise.all(
      apps.flatMap((app) =>
        Array.from({ length: 5 }, () =>
          app.get(RingCacheService).wrap(
            'report:orphaned',
            async () => {
              runs.push({ app: 'waiter', key: 'report:orphaned', at: performance.now() });
              await sleep(50);
              return `built after the holder (${runs.length})`;
            },
            { ttl: 30, lock: { ttl: 1000 } },
          ),
        ),
      ),
    );
    expect(runs).toHaveLength(1);
    expect(new Set(values)).toEqual(new Set(['built after the holder (1)']));
  });

  it("a holder whose lock was lost and taken by another never frees the other's lock", async () => {
    const [a, b] = [await boot('a'), await boot('b')];
    behaviour = { a: { delayMs: 300 }, b: { delayMs: 1_500 } };
    const dict = a.get(RingRedisService).getOrThrow('default');
    const first = a.get(Reports).build('lost');
    await until(() => runs.some((run) => run.app === 'a'), 2_000, 'a runs the method');
    // The lock key vanishes, as with a node restarted without persistence: b takes it anew.
    const [lockKey] = await lockKeys(dict);
    expect(await dict.delete(lockKey)).toBe(true);
    const second = b.get(Reports).build('lost');
    await until(() => runs.some((run) => run.app === 'b'), 2_000, 'b runs the method');
    const bToken = await dict.visitRedis('GET', lockKey);
    expect(await first).toBe('report lost by a');
    // a frees its lock a turn after answering: b's, under the same key, must stay.
    await sleep(100);
    expect(await dict.visitRedis('GET', lockKey)).toBe(bToken);
    expect(await dict[deleteIfHolds](lockKey, 'another token')).toBe(false);
    expect(await second).toBe('report lost by b');
    await sleep(100);
    expect(await lockKeys(dict)).toEqual([]);
  });

  it('a warm key never takes the lock', async () => {
    const app = await boot('a');
    const report = app.get(Reports);
    await report.build('warm');
    const dict = app.get(RingRedisService).getOrThrow('default');
    const before = runs.length;
    await report.build('warm');
    expect(runs.length).toBe(before);
    // No lock key is left behind after the run stored its value.
    expect(await lockKeys(dict)).toEqual([]);
  });
});

async function lockKeys(dict: RingDict): Promise<string[]> {
  const locks: string[] = [];
  for await (const key of dict.keys()) if (key.startsWith('__ring-cached__:lock:')) locks.push(key);
  return locks;
}
