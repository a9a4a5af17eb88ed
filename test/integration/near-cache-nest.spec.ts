import 'reflect-metadata';
import { Injectable, Logger } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RingRedisHealthIndicator } from '../../lib/health/index.js';
import {
  RingCacheService,
  RingCached,
  RingRedisModule,
  RingRedisService,
} from '../../lib/index.js';
import { fast, useNestApps } from '../helpers/nest-apps.js';
import { commandCalls, redisCommand } from '../helpers/redis-command.js';
import { serverOf } from '../helpers/redis-fleet.js';
import { HeldReads } from '../../lib/nest/ring-cached/held-reads.js';
import { cacheView } from '../../lib/core/read-through.js';
import { NearCache } from '../../lib/core/near/near-cache.js';
import { until } from '../helpers/wait.js';

/**
 * The near cache in a Nest app: a `@RingCached` hit of a group with a near cache is answered
 * from process memory (a tagged one too), a write or an invalidation elsewhere still reaches
 * the method's callers, lock and grace work over it, and the health check shows each node's
 * invalidation channel.
 */

const apps = useNestApps();

let computed = 0;

@Injectable()
class Profiles {
  @RingCached({ prefix: 'near-nest:', ttl: 60 })
  async profile(id: number): Promise<{ id: number; name: string }> {
    computed++;
    return { id, name: `user ${id}` };
  }

  /** Tagged: its name comes from `names`, the "database". */
  @RingCached({ prefix: 'near-tags:', ttl: 60, tags: (id: number) => [`user:${id}`] })
  async tagged(id: number): Promise<string> {
    computed++;
    return names.get(id) ?? 'nobody';
  }

  /** One tag for every id: the entries of a node check the same version key. */
  @RingCached({ prefix: 'near-team:', ttl: 60, tags: () => ['team'] })
  async member(id: number): Promise<string> {
    computed++;
    return `member ${id} (${computed})`;
  }

  /** Two tags, in the order `flip` says; the key is the id alone. */
  @RingCached({
    prefix: 'near-order:',
    ttl: 60,
    key: (id: number) => String(id),
    tags: (id: number, flip: boolean) => (flip ? [`b:${id}`, `a:${id}`] : [`a:${id}`, `b:${id}`]),
  })
  async ordered(id: number, flip: boolean): Promise<string> {
    void flip;
    computed++;
    return names.get(id) ?? 'nobody';
  }

  /** With a lock and grace: slow, and failing while `failing` is set. */
  @RingCached({ prefix: 'near-lock:', ttl: '200ms', grace: '1h', lock: true })
  async guarded(id: number): Promise<string> {
    computed++;
    await new Promise((resolve) => setTimeout(resolve, 50));
    if (failing) throw new Error('backend down');
    return `report ${id} (${computed})`;
  }
}

let failing = false;

afterEach(() => {
  vi.restoreAllMocks();
  failing = false;
});

const names = new Map<number, string>();

async function boot(maxLag?: number) {
  const app = await apps.boot({
    imports: [
      TerminusModule,
      RingRedisModule.forRoot({
        groups: { default: apps.nodes() },
        defaults: fast,
        groupOptions: { default: { nearCache: { maxEntries: 1000, maxLag } } },
      }),
    ],
    providers: [Profiles, RingRedisHealthIndicator],
  });
  const dict = app.get(RingRedisService).getOrThrow('default');
  await until(
    () => dict.nodeStates().every((state) => state.invalidation === 'up'),
    3_000,
    'channels up',
  );
  return {
    app,
    dict,
    cache: app.get(RingCacheService),
    profiles: app.get(Profiles),
    health: app.get(RingRedisHealthIndicator),
  };
}

/** GETs (and MGETs) every server (but a hung one) has run so far. */
function gets(hung?: number): Promise<number> {
  return commandCalls(
    apps.fleet.servers.map((server) => server.port).filter((port) => port !== hung),
    ['get', 'mget'],
  );
}

/** Calls `call` until a call reaches no server: the entry (and its versions) are held. */
async function untilFromMemory(call: () => Promise<unknown>, hung?: number): Promise<void> {
  await until(
    async () => {
      const was = await gets(hung);
      await call();
      return (await gets(hung)) === was;
    },
    1_000,
    'a hit from memory',
  );
}

describe('@RingCached with a near cache', () => {
  it('answers a hit from memory, and sees a DEL made by another client', async () => {
    const { profiles } = await boot();
    computed = 0;
    expect(await profiles.profile(7)).toEqual({ id: 7, name: 'user 7' });
    expect(computed).toBe(1);
    // The first hits read Redis: the miss stored the value, and Redis' invalidation of that
    // write (this process had read the key) drops what a read just before it kept.
    await untilFromMemory(() => profiles.profile(7));
    const before = await gets();
    for (let i = 0; i < 20; i++) {
      const hit = await profiles.profile(7);
      expect(hit).toEqual({ id: 7, name: 'user 7' });
      hit.name = 'changed by the caller';
    }
    expect(await gets()).toBe(before);
    expect(computed).toBe(1);

    // The entry deleted behind the process's back: the next call runs the method again.
    let deleted = 0;
    for (const server of apps.fleet.servers) {
      const keys = (await redisCommand(server.port, 'KEYS', 'near-nest:*')).split('\n');
      for (const key of keys.filter(Boolean)) {
        deleted += Number(await redisCommand(server.port, 'DEL', key));
      }
    }
    expect(deleted).toBe(1);
    await until(
      async () => {
        await profiles.profile(7);
        return computed === 2;
      },
      1_000,
      'the method ran again',
    );
  });

  it('answers a tagged hit from memory, its versions too; invalidateTags in another app reaches it', async () => {
    const [a, b] = [await boot(), await boot()];
    names.set(3, 'Ada');
    computed = 0;
    expect(await a.profiles.tagged(3)).toBe('Ada');
    await untilFromMemory(() => a.profiles.tagged(3));
    const before = await gets();
    for (let i = 0; i < 20; i++) expect(await a.profiles.tagged(3)).toBe('Ada');
    expect(await gets()).toBe(before);
    expect(computed).toBe(1);
    // Another app invalidates: Redis tells this process its version key changed.
    names.set(3, 'Grace');
    await b.cache.invalidateTags(['user:3']);
    expect(await a.profiles.tagged(3)).toBe('Grace');
    expect(computed).toBe(2);
  });

  it('a hit from memory keeps its versions’ replies: one invalidated in another app is not answered', async () => {
    // maxLag 50 in both: the invalidation waits out the other app's lag, and this one's hits
    // are answered from memory without waiting for a poll.
    const [a, b] = [await boot(50), await boot(50)];
    names.set(4, 'Ada');
    expect(await a.profiles.tagged(4)).toBe('Ada');
    await untilFromMemory(() => a.profiles.tagged(4));
    // Right after a read: a hit from memory, which keeps the version's reply with the entry.
    expect(await a.profiles.tagged(4)).toBe('Ada');
    const holds = vi.spyOn(NearCache.prototype, 'holds');
    names.set(4, 'Grace');
    await b.cache.invalidateTags(['user:4']);
    // The sockets read (the invalidation heard): the next call is checked in memory at once.
    await (a.dict[cacheView].near as NearCache).polled();
    expect(await a.profiles.tagged(4)).toBe('Grace');
    expect(holds, 'the kept reply was checked').toHaveReturnedWith(false);
  });

  it('no stale tagged read after an invalidation, under concurrent reads from two apps', async () => {
    const [a, b] = [await boot(), await boot()];
    names.set(1, 'v0');
    let stale = 0;
    let reads = 0;
    let stop = false;
    let latest = 0;
    const readers = [a, b].map(async ({ profiles }) => {
      while (!stop) {
        // Only reads that begin after an invalidation resolved are checked against it.
        const expected = latest;
        const value = await profiles.tagged(1);
        if (Number(value.slice(1)) < expected) stale++;
        reads++;
      }
    });
    for (let version = 1; version <= 30; version++) {
      names.set(1, `v${version}`);
      await [a, b][version % 2].cache.invalidateTags(['user:1']);
      latest = version;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    stop = true;
    await Promise.all(readers);
    expect(reads).toBeGreaterThan(100);
    expect(stale).toBe(0);
  });

  it('checks an entry answered from memory as one read from Redis: its versions, its ttl', async () => {
    // Hits in a row are answered without waiting for a poll of the sockets (the path under
    // test) while the last poll is younger than maxLag: a generous one, so the last call
    // below takes it.
    const { dict, cache, profiles } = await boot(50);
    const nodeOf = (id: number) =>
      dict.aliveHash.locate(dict.getEntry(cache.keyFor(Profiles, 'member', id)));
    // Two entries on one node: they check one version key of the tag there.
    const second = [2, 3, 4, 5, 6, 7, 8, 9].find((id) => nodeOf(id) === nodeOf(1))!;
    expect(second).toBeDefined();
    const hitsInARow = async () => {
      for (let i = 0; i < 3; i++) await profiles.member(second);
    };
    computed = 0;
    await untilFromMemory(() => profiles.member(1));
    await cache.invalidateTags(['team']);
    // Another entry of the tag creates its next version, then holds it (and its entry).
    await untilFromMemory(() => profiles.member(second));
    await hitsInARow();
    // Entry 1 is still held, recording the version before the invalidation: a miss.
    const runs = computed;
    expect(await profiles.member(1)).toBe(`member 1 (${runs + 1})`);

    // Past its ttl, an entry held in memory is refreshed (grace: the method runs).
    expect(await profiles.guarded(2)).toMatch(/^report 2/);
    await untilFromMemory(() => profiles.guarded(2));
    const before = computed;
    await new Promise((resolve) => setTimeout(resolve, 250));
    await hitsInARow();
    expect(await profiles.guarded(2)).toBe(`report 2 (${before + 1})`);
  });

  it('a tagged entry held in memory, read with its tags in another order: still checked against its versions', async () => {
    const [a, b] = [await boot(), await boot()];
    names.set(4, 'Ada');
    computed = 0;
    expect(await a.profiles.ordered(4, false)).toBe('Ada');
    await untilFromMemory(() => a.profiles.ordered(4, false));
    // The entry recorded a, b: read as b, a it is the same entry, its versions checked anew.
    expect(await a.profiles.ordered(4, true)).toBe('Ada');
    expect(computed).toBe(1);
    names.set(4, 'Grace');
    await b.cache.invalidateTags(['b:4']);
    expect(await a.profiles.ordered(4, true)).toBe('Grace');
    await untilFromMemory(() => a.profiles.ordered(4, false));
    names.set(4, 'Hopper');
    await b.cache.invalidateTags(['a:4']);
    expect(await a.profiles.ordered(4, false)).toBe('Hopper');
    expect(computed).toBe(3);
  });

  it('tagged entries held in memory while another node is ejected: answered from memory, invalidated as before', async () => {
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const [a, b] = [await boot(), await boot()];
    const nodeOf = (id: number) =>
      a.dict.aliveHash.locate(a.dict.getEntry(a.cache.keyFor(Profiles, 'tagged', id)))!;
    // Two entries on one node, the node of a third hung (ejected in both apps).
    const ids = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    const kept = ids.find((id) =>
      ids.some((other) => other !== id && nodeOf(other) !== nodeOf(id)),
    )!;
    const out = nodeOf(ids.find((id) => nodeOf(id) !== nodeOf(kept))!);
    for (const id of ids) names.set(id, `v0 ${id}`);
    computed = 0;
    expect(await a.profiles.tagged(kept), 'the first read').toBe(`v0 ${kept}`);
    await untilFromMemory(() => a.profiles.tagged(kept));
    const probe = ['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7', 'p8', 'p9'].find(
      (key) => a.dict.aliveHash.locate(a.dict.getEntry(key)) === out,
    )!;
    const server = serverOf(apps.fleet.servers, out);
    server.hang();
    try {
      await until(
        async () => {
          await Promise.all([a, b].map(({ dict }) => dict.get(probe).catch(() => undefined)));
          return [a, b].every(({ dict }) => !dict.aliveHash.nodes.includes(out));
        },
        3_000,
        'the hung node to be ejected in both apps',
      );
      await untilFromMemory(() => a.profiles.tagged(kept), server.port);
      expect(computed, 'runs before the invalidation').toBe(1);
      names.set(kept, `v1 ${kept}`);
      await b.cache.invalidateTags([`user:${kept}`]);
      expect(await a.profiles.tagged(kept), 'the read after it').toBe(`v1 ${kept}`);
      expect(computed, 'runs after it').toBe(2);
    } finally {
      server.resume();
    }
  });

  it('a wrap with a codec, its options written inline, is answered from memory at once', async () => {
    // maxLag 50: hits in a row are answered without waiting for a poll of the sockets.
    const { cache } = await boot(50);
    const call = () =>
      cache.wrap('inline:1', async () => ({ n: 1 }), { ttl: 60, codec: 'msgpack', tags: ['t1'] });
    expect(await call()).toEqual({ n: 1 });
    await untilFromMemory(call);
    // Hits right after a read: the loop has polled its sockets, each hit is answered at once.
    await call();
    // Each call's options are a new object, with a codec of its own: still the same codec.
    const read = vi.spyOn(HeldReads.prototype, 'read');
    for (let i = 0; i < 3; i++) expect(await call()).toEqual({ n: 1 });
    expect(read.mock.results.map(({ value }) => value !== undefined)).toEqual([true, true, true]);
  });

  it('lock and grace with a near cache: one run for two apps on a cold key, the stale value while the method fails', async () => {
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const [a, b] = [await boot(), await boot()];
    computed = 0;
    failing = false;
    const values = await Promise.all(
      [a, b].flatMap(({ profiles }) => Array.from({ length: 5 }, () => profiles.guarded(1))),
    );
    expect(computed).toBe(1);
    expect(new Set(values)).toEqual(new Set(['report 1 (1)']));
    // Past its ttl, the method failing: the value held is answered, in both apps.
    failing = true;
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(await a.profiles.guarded(1)).toBe('report 1 (1)');
    expect(await b.profiles.guarded(1)).toBe('report 1 (1)');
  });

  it("shows each node's invalidation channel in the health details", async () => {
    const { health } = await boot();
    const details = health.isHealthy('ring')['ring'];
    expect(details.status).toBe('up');
    const nodes = (details as unknown as { groups: Record<string, { nodes: object }> }).groups
      .default.nodes;
    for (const node of Object.values(nodes)) expect(node).toMatchObject({ invalidation: 'up' });
  });
});
