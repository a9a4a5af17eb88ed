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
});
