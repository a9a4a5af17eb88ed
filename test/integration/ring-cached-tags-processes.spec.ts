import 'reflect-metadata';
import { describe, expect, it } from 'vitest';
import { RingCacheService, RingRedisModule, RingRedisService } from '../../lib/index.js';
import { fast, nestAppScript, useNestApps } from '../helpers/nest-apps.js';
import { startNodeScript } from '../helpers/node-script.js';
import { sleep } from '../helpers/wait.js';

/**
 * Tags across real processes: a child process reads a tagged `wrap` in a loop, its value taken
 * from a key of the ring (the "database"), while this one changes that key and invalidates the
 * tag 40 times. Every read that began after an invalidation resolved must answer its version or
 * a later one; `process.hrtime` is the machine's monotonic clock, the same in both processes.
 * With a near cache in both, the reader answers entries and versions from memory.
 */

const nest = useNestApps();
const LAST = 40;

/**
 * The reader's script: reads until it answers `LAST`, then prints, per run of equal answers,
 * when the last read of the run began, and the answer.
 */
function childReader(near: boolean): string {
  const forRoot = {
    groups: { default: nest.nodes() },
    defaults: { prefix: 'tags:', heartbeatInterval: 100, commandTimeout: 300, retryRatio: 0 },
    groupOptions: { default: { nearCache: near ? {} : false } },
  };
  return nestAppScript(
    forRoot,
    `
    while (${near} && !dict.nodeStates().every((state) => state.invalidation === 'up')) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    // The database, read uncached: visitRedis is never answered by a near cache.
    const load = async () => Number(await dict.visitRedis('GET', 'db:user:1'));
    const runs = [];
    console.log('ready');
    const end = performance.now() + 12_000;
    while (performance.now() < end) {
      const start = String(process.hrtime.bigint());
      const value = await cache.wrap('user:1', load, { ttl: 60, tags: ['user:1'] });
      if (runs.at(-1)?.[1] === value) runs.at(-1)[0] = start;
      else runs.push([start, value]);
      if (value === ${LAST}) break;
    }
    console.log('reads ' + JSON.stringify(runs));
    await app.close();
  `,
  );
}

async function invalidatedWhileReading(near: boolean) {
  const app = await nest.boot({
    imports: [
      RingRedisModule.forRoot({
        groups: { default: nest.nodes() },
        defaults: { prefix: 'tags:', ...fast, retryRatio: 0 },
        groupOptions: { default: { nearCache: near ? {} : false } },
      }),
    ],
  });
  const cache = app.get(RingCacheService);
  const dict = app.get(RingRedisService).getOrThrow('default');
  await dict.setRaw('db:user:1', '0');
  const reader = startNodeScript(childReader(near));
  try {
    await reader.line(/^ready$/);
    const resolvedAt: bigint[] = [];
    for (let version = 1; version <= LAST; version++) {
      await dict.setRaw('db:user:1', String(version));
      await cache.invalidateTags(['user:1']);
      resolvedAt.push(process.hrtime.bigint());
      await sleep(20);
    }
    const line = await reader.line(/^reads /, 15_000);
    const runs = (JSON.parse(line.slice('reads '.length)) as [string, number][]).map(
      ([start, value]) => ({ start: BigInt(start), value }),
    );
    const stale = runs.filter(({ start, value }) => {
      const due = resolvedAt.filter((at) => at < start).length;
      return value < due;
    });
    return { runs, stale };
  } finally {
    await reader.kill();
  }
}

describe('@RingCached tags across processes', () => {
  it('no read begun after invalidateTags resolved answers an older value', async () => {
    const { runs, stale } = await invalidatedWhileReading(false);
    expect(runs.length).toBeGreaterThan(LAST / 2);
    expect(stale).toEqual([]);
    expect(runs.at(-1)!.value).toBe(LAST);
  });

  it('with a near cache in both: none either (invalidateTags waits out the near cache’s maxLag)', async () => {
    const { runs, stale } = await invalidatedWhileReading(true);
    expect(runs.length).toBeGreaterThan(LAST / 2);
    expect(stale).toEqual([]);
    expect(runs.at(-1)!.value).toBe(LAST);
  });

  // A stale entry's refresh joined any run under way: one begun before the invalidation
  // answered its value to a call begun 1.7–3.9 s after the invalidation resolved.
  it('a call on a grace entry stored after an invalidation never joins a run begun before it', async () => {
    const options = { ttl: 0.3, grace: 30, tags: ['g'] };
    const forRoot = {
      groups: { default: nest.nodes() },
      defaults: { prefix: 'tagsg:', heartbeatInterval: 100, commandTimeout: 300, retryRatio: 0 },
    };
    const app = await nest.boot({
      imports: [
        RingRedisModule.forRoot({ ...forRoot, defaults: { ...forRoot.defaults, ...fast } }),
      ],
    });
    const cache = app.get(RingCacheService);
    const dict = app.get(RingRedisService).getOrThrow('default');
    await dict.setRaw('db', '1');
    const load = async () => Number(await dict.visitRedis('GET', 'db'));
    const before = cache.wrap('k', async () => [await load(), await sleep(2_500)][0], options);
    await sleep(100);
    await dict.setRaw('db', '2');
    await cache.invalidateTags(['g']);
    // Another process stores the new value; its entry goes stale (in grace) after 300 ms.
    const writer = startNodeScript(
      nestAppScript(
        forRoot,
        `const load = async () => Number(await dict.visitRedis('GET', 'db'));
        console.log('stored ' + (await cache.wrap('k', load, ${JSON.stringify(options)})));
        await app.close();`,
      ),
    );
    try {
      expect(await writer.line(/^stored /, 10_000)).toBe('stored 2');
    } finally {
      await writer.kill();
    }
    await sleep(400);
    expect(await cache.wrap('k', load, options)).toBe(2);
    expect(await before).toBe(1);
  });
});
