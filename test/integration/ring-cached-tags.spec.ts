import 'reflect-metadata';
import { Injectable, Logger, type INestApplication } from '@nestjs/common';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  RingArgumentError,
  RingCacheService,
  RingCached,
  RingClusterUnavailableError,
  RingRedisModule,
  RingRedisService,
} from '../../lib/index.js';
import { fast, useNestApps } from '../helpers/nest-apps.js';
import { serverOf } from '../helpers/redis-fleet.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { commandCalls } from '../helpers/redis-command.js';
import { until } from '../helpers/wait.js';

/**
 * Tags: `invalidateTags` makes every cached call carrying one of its tags miss, in every
 * app, whatever the number of entries; nothing stale is read afterwards, also when the node
 * holding a tag's version is hung during the invalidation and comes back.
 */

/** What the "database" holds now; every read of it is counted. */
let db = new Map<number, string>();
let loads = 0;

@Injectable()
class Users {
  @RingCached({ ttl: 60, tags: (id: number) => [`user:${id}`, 'users'] })
  async byId(id: number): Promise<string | undefined> {
    loads++;
    return db.get(id);
  }

  @RingCached({ ttl: 60 })
  async untagged(id: number): Promise<string | undefined> {
    loads++;
    return db.get(id);
  }

  /** No tags, no resilient option, and the key of `wrap('slow:<id>')`. */
  @RingCached({ ttl: 60, prefix: 'slow:', key: (id: number) => String(id) })
  async slowKey(id: number): Promise<string | undefined> {
    loads++;
    return db.get(id);
  }

  @RingCached({ ttl: 60, tags: looseTags })
  async loose(id: number): Promise<string | undefined> {
    loads++;
    return db.get(id);
  }
}

/** A tags function that answers a list of strings for id 1 only. */
function looseTags(id: number): string[] {
  if (id === 1) return ['user:1'];
  if (id === 2) return 'users' as unknown as string[];
  if (id === 3) return ['users', 3] as unknown as string[];
  throw new Error(`no tags for ${id}`);
}

const nest = useNestApps();

afterEach(() => {
  vi.restoreAllMocks();
  db = new Map();
  loads = 0;
});

async function boot(nodes = nest.nodes()): Promise<INestApplication> {
  return nest.boot({
    imports: [
      RingRedisModule.forRoot({
        groups: { default: nodes },
        defaults: { prefix: 'tags:', ...fast, retryRatio: 0 },
      }),
    ],
    providers: [Users],
  });
}

/** A function that reads user 1 from the database when its run begins and answers `ms` later. */
function slowReader(ms: number): { load: () => Promise<string | undefined>; runs: () => number } {
  let begun = 0;
  const load = async () => {
    begun++;
    const value = db.get(1);
    await new Promise((resolve) => setTimeout(resolve, ms));
    return value;
  };
  return { load, runs: () => begun };
}

/** Writes `value` to the database and invalidates its tag, as an app would after an update. */
async function update(cache: RingCacheService, id: number, value: string): Promise<void> {
  db.set(id, value);
  await cache.invalidateTags([`user:${id}`]);
}

describe('@RingCached tags', () => {
  it('hits until a tag is invalidated, then misses in every app; other tags are untouched', async () => {
    const [a, b] = [await boot(), await boot()];
    for (let id = 0; id < 20; id++) db.set(id, `user ${id} v0`);
    for (let id = 0; id < 20; id++) {
      expect(await a.get(Users).byId(id)).toBe(`user ${id} v0`);
      expect(await b.get(Users).byId(id)).toBe(`user ${id} v0`);
    }
    expect(loads).toBe(20);
    await update(a.get(RingCacheService), 3, 'user 3 v1');
    expect(await b.get(Users).byId(3)).toBe('user 3 v1');
    expect(await a.get(Users).byId(3)).toBe('user 3 v1');
    expect(await a.get(Users).byId(4)).toBe('user 4 v0');
    expect(loads).toBe(21);
    // A tag many entries carry: one call invalidates them all.
    for (let id = 0; id < 20; id++) db.set(id, `user ${id} v2`);
    await b.get(RingCacheService).invalidateTags(['users']);
    for (let id = 0; id < 20; id++) expect(await a.get(Users).byId(id)).toBe(`user ${id} v2`);
    expect(loads).toBe(41);
  });

  it('no stale read after an invalidation, under concurrent reads from two apps', async () => {
    const [a, b] = [await boot(), await boot()];
    const apps = [a, b];
    db.set(1, 'v0');
    let stale = 0;
    let stop = false;
    let latest = 0;
    const readers = apps.map(async (app) => {
      while (!stop) {
        // Only reads that begin after an invalidation resolved are checked against it.
        const expected = latest;
        const value = await app.get(Users).byId(1);
        if (Number(value!.slice(1)) < expected) stale++;
      }
    });
    for (let version = 1; version <= 30; version++) {
      db.set(1, `v${version}`);
      await apps[version % 2].get(RingCacheService).invalidateTags(['user:1']);
      latest = version;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    stop = true;
    await Promise.all(readers);
    expect(stale).toBe(0);
  });

  it('a call begun after invalidateTags resolved never joins a run begun before it, in any app', async () => {
    const [a, b] = [await boot(), await boot()];
    db.set(1, 'v0');
    const { load, runs } = slowReader(200);
    const options = { ttl: 60, tags: ['user:1'] };
    const before = [a, b].map((app) => app.get(RingCacheService).wrap('slow:1', load, options));
    await until(() => runs() === 2, 2_000, 'both runs begin');
    await update(a.get(RingCacheService), 1, 'v1');
    const after = await Promise.all(
      [a, b].map((app) => app.get(RingCacheService).wrap('slow:1', load, options)),
    );
    expect(after).toEqual(['v1', 'v1']);
    // Begun before the invalidation, those two may answer the old value.
    expect(await Promise.all(before)).toEqual(['v0', 'v0']);
  });

  // Either joined the run and answered v0: it reads no versions, so it cannot tell that run
  // began before the invalidation.
  it('a call without tags begun after invalidateTags resolved never joins a tagged run begun before it', async () => {
    const app = await boot();
    const cache = app.get(RingCacheService);
    db.set(1, 'v0');
    const { load, runs } = slowReader(300);
    const before = cache.wrap('slow:1', load, { ttl: 60, tags: ['user:1'] });
    await until(() => runs() === 1, 2_000, 'the run begins');
    await update(cache, 1, 'v1');
    const after = await Promise.all([
      cache.wrap('slow:1', async () => db.get(1), { ttl: 60 }),
      app.get(Users).slowKey(1),
    ]);
    expect(after).toEqual(['v1', 'v1']);
    expect(await before).toBe('v0');
  });

  it('a call whose read fails after invalidateTags resolved never joins a run begun before it', async () => {
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const cache = (await boot()).get(RingCacheService);
    db.set(1, 'v0');
    const { load, runs } = slowReader(300);
    const options = { ttl: 60, tags: ['user:1'] };
    const before = cache.wrap('slow:1', load, options);
    await until(() => runs() === 1, 2_000, 'the run begins');
    await update(cache, 1, 'v1');
    // The read of the next call fails: it cannot see which versions the run records.
    await Promise.all(nest.fleet.servers.map((server) => server.kill()));
    expect(await cache.wrap('slow:1', load, options)).toBe('v1');
    expect(await before).toBe('v0');
    expect(runs()).toBe(2);
  });

  it('the node of a tag’s versions hung during the invalidation: no stale read before or after it returns', async () => {
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const app = await boot();
    const users = app.get(Users);
    const cache = app.get(RingCacheService);
    const dict = app.get(RingRedisService).getOrThrow('default');
    for (let id = 0; id < 30; id++) db.set(id, `user ${id} v0`);
    for (let id = 0; id < 30; id++) await users.byId(id);
    // The node holding the first entry: its entries and their tags' versions live there.
    const node = dict.aliveHash.locate(dict.getEntry(cache.keyFor(Users, 'byId', 0)))!;
    const server = serverOf(nest.fleet.servers, node);
    server.hang();
    await users.byId(0); // times out and ejects the node
    await until(() => !dict.aliveHash.nodes.includes(node), 3_000, 'the hung node to be ejected');
    for (let id = 0; id < 30; id++) db.set(id, `user ${id} v1`);
    await cache.invalidateTags(['users']);
    for (let id = 0; id < 30; id++) expect(await users.byId(id)).toBe(`user ${id} v1`);
    // With the node out, a hit still reads its entry and both versions in one MGET.
    const visit = vi.spyOn(dict, 'visitRedis');
    const getRaw = vi.spyOn(dict, 'getRaw');
    expect(await users.byId(0)).toBe('user 0 v1');
    expect(visit.mock.calls.map(([command, , ...args]) => [command, args.length])).toEqual([
      ['MGET', 2],
    ]);
    expect(getRaw).not.toHaveBeenCalled();
    visit.mockRestore();
    getRaw.mockRestore();
    // Back with its old entries and versions: the handoff deleted the versions first.
    server.resume();
    await until(() => dict.aliveHash.nodes.includes(node), 5_000, 'the node to rejoin');
    for (let id = 0; id < 30; id++) db.set(id, `user ${id} v2`);
    for (let id = 0; id < 30; id++) {
      expect(await users.byId(id)).toMatch(new RegExp(`^user ${id} v[12]$`));
    }
    await cache.invalidateTags(['users']);
    for (let id = 0; id < 30; id++) expect(await users.byId(id)).toBe(`user ${id} v2`);
  });

  it('one app cut off from a node invalidates: the apps that still reach it read nothing stale', async () => {
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    // b reaches every server through its own proxies; a reaches them directly.
    const proxies = await Promise.all(nest.fleet.servers.map((s) => TcpProxy.start(s.port)));
    for (const proxy of proxies) nest.track(proxy);
    const byProxy = Object.fromEntries(
      proxies.map((proxy, i) => [`node${i}`, { capacity: 1, connection: proxy.url }]),
    );
    const [a, b] = [await boot(), await boot(byProxy)];
    const dictOf = (app: INestApplication) => app.get(RingRedisService).getOrThrow('default');
    for (let id = 0; id < 30; id++) db.set(id, `user ${id} v0`);
    for (let id = 0; id < 30; id++) await a.get(Users).byId(id);
    const node = dictOf(a).aliveHash.locate(
      dictOf(a).getEntry(a.get(RingCacheService).keyFor(Users, 'byId', 0)),
    )!;
    proxies[Number(node.slice('node'.length))].cut();
    // b's delete of that node's versions fails over to another node (a hint for it), after
    // b's report that the node is out has reached the others: a holds it out too.
    for (let id = 0; id < 30; id++) db.set(id, `user ${id} v1`);
    await b.get(RingCacheService).invalidateTags(['users']);
    expect(dictOf(b).aliveHash.nodes).not.toContain(node);
    for (let id = 0; id < 30; id++) expect(await a.get(Users).byId(id)).toBe(`user ${id} v1`);
    expect(dictOf(a).aliveHash.nodes).not.toContain(node);
    // Healed: the node rejoins in both once the hints deleted its old versions.
    proxies[Number(node.slice('node'.length))].heal();
    await until(
      () => [a, b].every((app) => dictOf(app).aliveHash.nodes.includes(node)),
      5_000,
      'the node to rejoin in both apps',
    );
    for (let id = 0; id < 30; id++) {
      expect(await a.get(Users).byId(id)).toMatch(new RegExp(`^user ${id} v1$`));
    }
  });

  it('costs one DEL per node whatever the number of entries carrying the tag', async () => {
    const app = await boot();
    const cache = app.get(RingCacheService);
    for (let i = 0; i < 2_000; i += 100) {
      await Promise.all(
        Array.from({ length: 100 }, (_, j) =>
          cache.wrap(`item:${i + j}`, async () => i + j, { tags: ['bulk'] }),
        ),
      );
    }
    const ports = nest.fleet.servers.map((server) => server.port);
    const before = await Promise.all(ports.map((port) => commandCalls([port], ['del'])));
    await cache.invalidateTags(['bulk']);
    // One DEL on each node, of the tag's version there.
    const after = await Promise.all(ports.map((port) => commandCalls([port], ['del'])));
    expect(after.map((calls, i) => calls - before[i])).toEqual([1, 1, 1]);
    let ran = 0;
    await cache.wrap('item:5', async () => ++ran, { tags: ['bulk'] });
    expect(ran).toBe(1);
  });

  it('untagged entries stay plain JSON; tagged ones record their versions', async () => {
    const app = await boot();
    db.set(1, 'x');
    await app.get(Users).untagged(1);
    await app.get(Users).byId(1);
    const dict = app.get(RingRedisService).getOrThrow('default');
    const cache = app.get(RingCacheService);
    expect(await dict.getRaw(cache.keyFor(Users, 'untagged', 1))).toBe('"x"');
    const tagged = (await dict.getRaw(cache.keyFor(Users, 'byId', 1))) as string;
    const [mark, meta, value] = tagged.split('\u0001');
    expect(mark).toBe('');
    expect(Object.keys(JSON.parse(meta) as { t: object })).toEqual(['t']);
    const recorded = (JSON.parse(meta) as { t: string[] }).t;
    expect(recorded.filter((_, i) => i % 2 === 0)).toEqual(['user:1', 'users']);
    expect(value).toBe('"x"');
  });

  it('a tags function that throws or answers what is not a list of strings: the method runs uncached, saying why', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const users = (await boot()).get(Users);
    for (const id of [1, 2, 3, 4]) db.set(id, `v${id}`);
    // A string, a list holding a number, a throw (tagsOf's unit tests check each message).
    for (const id of [2, 3, 4]) {
      expect(await users.loose(id)).toBe(`v${id}`);
      expect(await users.loose(id)).toBe(`v${id}`);
    }
    expect(loads).toBe(6);
    // One warning per method per 10 s: the first failure's.
    expect(
      warn.mock.calls.map(([m]) => String(m)).filter((m) => m.startsWith('Users.loose:')),
    ).toEqual([
      'Users.loose: the tags function failed (expected an array of strings, got "users"); called uncached',
    ]);
    // Where it answers a list of strings, the same method is cached.
    loads = 0;
    expect(await users.loose(1)).toBe('v1');
    expect(await users.loose(1)).toBe('v1');
    expect(loads).toBe(1);
  });

  it('invalidateTags refuses what is not a list of strings, and a ring with no node alive', async () => {
    const app = await boot();
    const cache = app.get(RingCacheService);
    await expect(cache.invalidateTags('users' as never)).rejects.toBeInstanceOf(RingArgumentError);
    await expect(cache.invalidateTags(['users'], 'nope')).rejects.toThrow(/no group "nope"/);
    await Promise.all(nest.fleet.servers.map((server) => server.kill()));
    await expect(cache.invalidateTags(['users'])).rejects.toBeInstanceOf(
      RingClusterUnavailableError,
    );
  });

  it("invalidateTags rejects with no node alive though the group's onFail answers a number", async () => {
    // A number read as keys deleted: it resolved, and every entry carrying the tag went on
    // being answered once the nodes were back.
    const app = await nest.boot({
      imports: [
        RingRedisModule.forRoot({
          groups: { default: nest.nodes() },
          defaults: { prefix: 'tags:', ...fast, retryRatio: 0, onFail: () => 0 },
        }),
      ],
    });
    const cache = app.get(RingCacheService);
    expect(await cache.wrap('k', async () => 'v1', { ttl: 60, tags: ['t'] })).toBe('v1');
    await Promise.all(nest.fleet.servers.map((server) => server.kill()));
    const invalidated = cache.invalidateTags(['t']);
    await expect(invalidated).rejects.toBeInstanceOf(RingClusterUnavailableError);
    await expect(invalidated).rejects.toThrow(/no node is alive; the tags were not invalidated/);
  });
});
