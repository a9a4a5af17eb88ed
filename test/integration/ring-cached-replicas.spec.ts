import 'reflect-metadata';
import { Injectable, Logger, type INestApplication } from '@nestjs/common';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  RingCacheService,
  RingCached,
  RingRedisModule,
  RingRedisService,
  type RingDict,
} from '../../lib/index.js';
import { fast, useNestApps } from '../helpers/nest-apps.js';
import { serverOf } from '../helpers/redis-fleet.js';
import { sleep, until } from '../helpers/wait.js';

/**
 * Tagged entries in grace with `replicas: 2`, their owner lost: the next copy is answered as a
 * stale value when the method fails, checked against the versions the copy recorded (the
 * owner's), and an invalidation made while the owner is out reaches every copy.
 */

let failing = false;
let delayMs = 0;
let generation = 1;

async function load(id: number): Promise<string> {
  if (delayMs > 0) await sleep(delayMs);
  if (failing) throw new Error('backend down');
  return `v${generation}:${id}`;
}

const tagsOf = (id: number) => [`item:${id}`];

@Injectable()
class Items {
  @RingCached({ ttl: '200ms', grace: '30s', graceBackoff: '1s', tags: tagsOf })
  async tagged(id: number): Promise<string> {
    return load(id);
  }

  @RingCached({ ttl: '200ms', grace: '30s', softTimeout: 100, tags: tagsOf })
  async soft(id: number): Promise<string> {
    return load(id);
  }
}

const nest = useNestApps({ servers: 4 });

afterEach(() => {
  vi.restoreAllMocks();
  failing = false;
  delayMs = 0;
  generation = 1;
});

interface Scene {
  items: Items;
  cache: RingCacheService;
  dict: RingDict<unknown, unknown>;
  /** Ids whose entries node0 owns, cached and now in grace. */
  owned: number[];
}

/** 30 ids cached by `method`, in grace by the time this resolves; those node0 owns. */
async function scene(method: 'tagged' | 'soft', near: boolean): Promise<Scene> {
  vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  const app: INestApplication = await nest.boot({
    imports: [
      RingRedisModule.forRoot({
        groups: { default: nest.nodes() },
        defaults: {
          prefix: 'rep-grace:',
          ...fast,
          retryRatio: 0,
          replicas: 2,
          nearCache: near && {},
        },
      }),
    ],
    providers: [Items],
  });
  const items = app.get(Items);
  const cache = app.get(RingCacheService);
  const dict = app.get(RingRedisService).getOrThrow('default');
  const ids = Array.from({ length: 30 }, (_, i) => i + 1);
  for (const id of ids) expect(await items[method](id)).toBe(`v1:${id}`);
  await sleep(300);
  const owned = ids.filter(
    (id) => dict.totalHash.locate(dict.getEntry(cache.keyFor(Items, method, id))) === 'node0',
  );
  expect(owned.length).toBeGreaterThan(0);
  return { items, cache, dict, owned };
}

/** Each call's answer, or what it threw. */
function answers(calls: Promise<string>[]): Promise<string[]> {
  return Promise.all(calls.map((call) => call.catch((error: Error) => `threw ${error.message}`)));
}

const ejected = (dict: RingDict<unknown, unknown>) => () => !dict.aliveHash.nodes.includes('node0');

describe('replicas 2: invalidateTags between two setNodes, then an owner out', () => {
  // Over the changed nodes a node's version key is another `<tag>:<n>`; the invalidation also
  // deletes the earlier nodes' keys, but did so on their first copy only: with the owner out
  // after the change back, its version was read from a copy that still held the old id.
  it('no copy answers a value the invalidation removed', async () => {
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const all = nest.nodes();
    const app = await nest.boot({
      imports: [
        RingRedisModule.forRoot({
          groups: { default: all },
          defaults: { prefix: 'rep-nodes:', ...fast, retryRatio: 0, replicas: 2 },
        }),
      ],
    });
    const cache = app.get(RingCacheService);
    const service = app.get(RingRedisService);
    const dict = service.getOrThrow('default');
    const keys = Array.from({ length: 80 }, (_, i) => i);
    let version = 1;
    const read = (i: number) =>
      cache.wrap(`k:${i}`, async () => version, { ttl: 60, tags: [`t:${i}`] });
    for (const i of keys) expect(await read(i)).toBe(1);
    const { node3: _removed, ...three } = all;
    await service.setNodes(three);
    version = 2;
    await cache.invalidateTags(keys.map((i) => `t:${i}`));
    await service.setNodes(all);
    await serverOf(nest.fleet.servers, 'node0').kill();
    await until(async () => {
      await dict.ping();
      return !dict.aliveHash.nodes.includes('node0');
    }, 2_000);
    const answers = [];
    for (const i of keys) answers.push(await read(i));
    expect(answers.filter((answer) => answer === 1)).toEqual([]);
  });
});

describe.each([false, true])('replicas 2, tagged, in grace (near cache %s)', (near) => {
  it('the owner killed: each stale copy is answered while the read fails over', async () => {
    const { items, owned } = await scene('tagged', near);
    await serverOf(nest.fleet.servers, 'node0').kill();
    failing = true;
    expect(await answers(owned.map((id) => items.tagged(id)))).toEqual(
      owned.map((id) => `v1:${id}`),
    );
  });

  it("the owner ejected: each stale copy is answered, checked against the owner's versions", async () => {
    const { items, dict, owned } = await scene('tagged', near);
    await serverOf(nest.fleet.servers, 'node0').kill();
    await until(ejected(dict), 2_000, 'node0 ejected');
    failing = true;
    expect(await answers(owned.map((id) => items.tagged(id)))).toEqual(
      owned.map((id) => `v1:${id}`),
    );
  });

  it('the owner hung, a slow method: the stale copy within commandTimeout + softTimeout', async () => {
    const { items, owned } = await scene('soft', near);
    serverOf(nest.fleet.servers, 'node0').hang();
    delayMs = 3_000;
    const started = performance.now();
    const timed = await Promise.all(
      owned.map(async (id) => ({ answer: await items.soft(id), ms: performance.now() - started })),
    );
    expect(timed.map(({ answer }) => answer)).toEqual(owned.map((id) => `v1:${id}`));
    // commandTimeout 300 + softTimeout 100, and a margin for a loaded machine.
    expect(Math.max(...timed.map(({ ms }) => ms))).toBeLessThan(300 + 100 + 250);
  });

  it('invalidated while the owner is out: no copy answers the old value, then or after it returns', async () => {
    const { items, cache, dict, owned } = await scene('tagged', near);
    const owner = serverOf(nest.fleet.servers, 'node0');
    owner.hang();
    // No call needs node0 now: a ping finds it hung.
    await dict.ping();
    await until(ejected(dict), 2_000, 'node0 ejected');
    await cache.invalidateTags(owned.flatMap(tagsOf));
    generation = 2;
    expect(await answers(owned.map((id) => items.tagged(id)))).toEqual(
      owned.map((id) => `v2:${id}`),
    );
    generation = 3;
    owner.resume();
    await until(() => !ejected(dict)(), 3_000, 'node0 back');
    // Back with the first values and versions it held: the invalidation's deletes were handed
    // to it before it served again. Each answer is the outage's value, or a new run's.
    const after = await answers(owned.map((id) => items.tagged(id)));
    expect(after.filter((answer, i) => answer === `v1:${owned[i]}`)).toEqual([]);
  });
});
