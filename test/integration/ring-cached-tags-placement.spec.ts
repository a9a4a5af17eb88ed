import 'reflect-metadata';
import { describe, expect, it, vi } from 'vitest';
import type { INestApplication } from '@nestjs/common';
import {
  RingCacheService,
  RingRedisModule,
  RingRedisService,
  type HashRing,
  type RingNodesConfig,
} from '../../lib/index.js';
import { cacheView } from '../../lib/core/read-through.js';
import { TAG_KEY_PREFIX } from '../../lib/nest/ring-cached/tag-versions.js';
import { fast, useNestApps } from '../helpers/nest-apps.js';
import { ringNodes } from '../helpers/redis-fleet.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { until } from '../helpers/wait.js';

/**
 * Where a tagged read finds its versions while a node is out. With `distribution: 'ketama'`
 * and unequal capacities an ejection rebuilds the continuum, so a version key the total ring
 * placed on the entry's node may now be placed elsewhere, where `invalidateTags` deletes it:
 * the read must look there, not at the entry's node. `handoffLimit: 0` keeps the hinted
 * handoff from deleting the old copy behind the test's back.
 */

const nest = useNestApps();

const CAPACITIES = [1, 3, 7];

describe('@RingCached tags: version placement with a node out', () => {
  it("ketama, unequal capacities: a read after invalidateTags misses though the version key moved off the entry's node", async () => {
    const proxies = await Promise.all(nest.fleet.servers.map((s) => TcpProxy.start(s.port)));
    for (const proxy of proxies) nest.track(proxy);
    const nodes = Object.fromEntries(
      proxies.map((proxy, i) => [`node${i}`, { capacity: CAPACITIES[i], connection: proxy.url }]),
    );
    const app = await nest.boot({
      imports: [
        RingRedisModule.forRoot({
          groups: { default: nodes },
          defaults: { prefix: 'tags:', ...fast, retryRatio: 0, distribution: 'ketama' },
          groupOptions: { default: { handoffLimit: 0 } },
        }),
      ],
    });
    const cache = app.get(RingCacheService);
    const dict = app.get(RingRedisService).getOrThrow('default');
    const scene = movedVersion(dict.totalHash, (key) => dict.getEntry(key));
    const options = (value: string) => [async () => value, { ttl: 60, tags: [scene.tag] }] as const;
    expect(await cache.wrap(scene.key, ...options('v0'))).toBe('v0');

    const proxy = proxies[Number(scene.out.slice('node'.length))];
    proxy.cut();
    await dict.ping();
    await until(() => !dict.aliveHash.nodes.includes(scene.out), 3_000, 'the node ejected');
    // The entry stays on its node; its version key now lives on another.
    expect(dict.aliveHash.locate(dict.getEntry(scene.key))).toBe(scene.node);
    expect(dict.aliveHash.locate(dict.getEntry(scene.versionKey))).not.toBe(scene.node);
    await cache.invalidateTags([scene.tag]);
    expect(await cache.wrap(scene.key, ...options('v1'))).toBe('v1');
    // Healed and back before the fixture closes the app and the proxies together: with the
    // path still cut, that close outlasted the hook's 30 s (the app alone closes in ms).
    proxy.heal();
    await until(() => dict.aliveHash.nodes.includes(scene.out), 5_000, 'the node back');
  });
});

describe('@RingCached tags: invalidateTags between two setNodes', () => {
  // Over the changed nodes, a node's version key is another `<tag>:<n>`: the invalidation deleted
  // that one, and the nodes changed back made the old one the node's again (10 of 60 entries
  // answered their old value, 6 with new capacities; 12 after reconciling calls of the same list).
  it.each(['node2 removed', 'node0 reweighted'])(
    '%s, then changed back: no entry answers a value the invalidation removed',
    async (change) => {
      const all = ringNodes(nest.fleet.servers);
      const app = await nest.boot({
        imports: [
          RingRedisModule.forRoot({
            groups: { default: all },
            defaults: { prefix: 'tagsnodes:', ...fast, retryRatio: 0 },
          }),
        ],
      });
      const cache = app.get(RingCacheService);
      const service = app.get(RingRedisService);
      const keys = Array.from({ length: 60 }, (_, i) => i);
      let version = 1;
      const read = (i: number) =>
        cache.wrap(`k:${i}`, async () => version, { ttl: 60, tags: [`t:${i}`] });
      for (const i of keys) expect(await read(i)).toBe(1);
      const { node2, ...two } = all;
      const changed =
        change === 'node2 removed' ? two : { ...all, node0: { ...all.node0, capacity: 3 }, node2 };
      await service.setNodes(changed);
      // A loop reconciling from service discovery: the same list again, a read between.
      for (let round = 0; round < 5; round++) {
        await service.setNodes(changed);
        await read(0);
      }
      version = 2;
      await cache.invalidateTags(keys.map((i) => `t:${i}`));
      await service.setNodes(all);
      const answers = [];
      for (const i of keys) answers.push(await read(i));
      expect(answers.filter((answer) => answer === 1)).toEqual([]);
    },
  );
});

describe('@RingCached tags: invalidateTags after a setNodes made before any tagged call', () => {
  const boot = (nodes: RingNodesConfig) =>
    nest.boot({
      imports: [
        RingRedisModule.forRoot({
          groups: { default: nodes },
          defaults: { prefix: 'tagsadded:', ...fast, retryRatio: 0 },
        }),
      ],
    });
  const keys = Array.from({ length: 60 }, (_, i) => i);
  let version = 1;
  const read = (app: INestApplication, i: number) =>
    app.get(RingCacheService).wrap(`k:${i}`, async () => version, { ttl: 60, tags: [`t:${i}`] });
  const staleOf = async (app: INestApplication) => {
    const answers = [];
    for (const i of keys) answers.push(await read(app, i));
    return answers.filter((answer) => answer === 1);
  };

  // The app's tag versions learnt the nodes at its first tagged call, after the change: the keys
  // the first list placed were never deleted, and 3 of 60 entries of an app still on it
  // answered their old value until their ttl.
  it('an app still on the first list reads no entry the invalidation removed', async () => {
    version = 1;
    const [stays, moves] = [await boot(nest.nodes(0, 2)), await boot(nest.nodes(0, 2))];
    for (const i of keys) expect(await read(stays, i)).toBe(1);
    await moves.get(RingRedisService).setNodes(nest.nodes(0, 3));
    version = 2;
    await moves.get(RingCacheService).invalidateTags(keys.map((i) => `t:${i}`));
    expect(await staleOf(stays)).toEqual([]);
  });

  // Two changes between two tagged calls: the keys of the list in between were never deleted
  // (8 of 60 entries of an app on it answered their old value).
  it('an app on a list used only between two tagged calls reads none either', async () => {
    version = 1;
    const three = ringNodes(nest.fleet.servers.slice(0, 3));
    const [middle, moves] = [await boot(three), await boot(nest.nodes(0, 2))];
    for (const i of keys) expect(await read(middle, i)).toBe(1);
    await read(moves, 0);
    await moves.get(RingRedisService).setNodes(three);
    await moves
      .get(RingRedisService)
      .setNodes({ ...three, node0: { ...three.node0, capacity: 3 } });
    version = 2;
    await moves.get(RingCacheService).invalidateTags(keys.map((i) => `t:${i}`));
    expect(await staleOf(middle)).toEqual([]);
  });

  // Built on the read that first followed the change, the rings of the lists in between held
  // the event loop for 125–147 ms with `slices: 2 ** 24`: an invalidation builds them.
  it('a tagged read after changes of nodes builds no ring; the next invalidation does', async () => {
    const servers = ringNodes(nest.fleet.servers.slice(0, 3));
    const list = (k: number) => ({ ...servers, node0: { ...servers.node0, capacity: k } });
    const app = await boot(list(1));
    const view = app.get(RingRedisService).getOrThrow('default')[cacheView];
    const builds = vi.spyOn(view, 'ringOf');
    await read(app, 0);
    for (let k = 2; k <= 5; k++) await app.get(RingRedisService).setNodes(list(k));
    await read(app, 1);
    expect(builds).not.toHaveBeenCalled();
    await app.get(RingCacheService).invalidateTags(['t:1']);
    expect(builds.mock.calls.length).toBeGreaterThan(0);
  });

  // The ring of the last tagged call, the oldest, was put first among the last four lists:
  // the second list was dropped (4 of 60 entries of an app on it answered their old value).
  it('five changes between two tagged calls: an app on the second list reads none', async () => {
    version = 1;
    const servers = ringNodes(nest.fleet.servers.slice(0, 3));
    // List k: node0 at capacity k, node2 at 9 - k (each list moves version keys of both).
    const list = (k: number) => ({
      ...servers,
      node0: { ...servers.node0, capacity: k },
      node2: { ...servers.node2, capacity: 9 - k },
    });
    const [second, moves] = [await boot(list(2)), await boot(list(1))];
    for (const i of keys) expect(await read(second, i)).toBe(1);
    await read(moves, 0);
    for (let k = 2; k <= 6; k++) await moves.get(RingRedisService).setNodes(list(k));
    version = 2;
    await moves.get(RingCacheService).invalidateTags(keys.map((i) => `t:${i}`));
    expect(await staleOf(second)).toEqual([]);
  });
});

/**
 * A node to take out, a key whose node stays, and a tag whose version key for that node (the
 * first `<tag>:<n>` the total ring places there) the ring without the node places elsewhere.
 */
function movedVersion(total: HashRing, entry: (key: string) => string) {
  for (const out of total.nodes) {
    const alive = total.without(out);
    for (let t = 0; t < 200; t++) {
      const tag = `t${t}`;
      for (let k = 0; k < 50; k++) {
        const key = `k${k}`;
        const node = total.locate(entry(key))!;
        if (node === out || alive.locate(entry(key)) !== node) continue;
        let versionKey: string | undefined;
        for (let n = 0; versionKey === undefined && n < 64 * total.size; n++) {
          const candidate = `${TAG_KEY_PREFIX}${tag}:${n}`;
          if (total.locate(entry(candidate)) === node) versionKey = candidate;
        }
        if (versionKey !== undefined && alive.locate(entry(versionKey)) !== node) {
          return { out, key, tag, node, versionKey };
        }
      }
    }
  }
  throw new Error('no version key that moves when a node is ejected');
}
