import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { describe, expect, it } from 'vitest';
import {
  HashRing,
  RingCacheService,
  RingRedisModule,
  RingRedisService,
  type RingNodesConfig,
} from '../../lib/index.js';
import { TAG_KEY_PREFIX } from '../../lib/nest/ring-cached/tag-versions.js';
import { fast, useNestApps } from '../helpers/nest-apps.js';
import { sleep } from '../helpers/wait.js';

/**
 * Tags across a rolling change of nodes: apps still on the old nodes and apps on the new ones
 * (with `migration`) share entries, where the old nodes place them. An invalidation in either
 * kind of app must reach the versions the other kind checks, though each ring would pick other
 * version keys for its nodes.
 */

const nest = useNestApps({ servers: 4 });

/** node0–node2 (old), or node0, node1 and node3 (new). */
function nodes(which: 'old' | 'new'): RingNodesConfig {
  return which === 'old' ? nest.nodes(0, 3) : { ...nest.nodes(0, 2), ...nest.nodes(3, 4) };
}

async function boot(which: 'old' | 'new', until = Date.now() + 60_000): Promise<INestApplication> {
  const migration = { from: nodes('old'), until };
  return nest.boot({
    imports: [
      RingRedisModule.forRoot({
        groups: { default: nodes(which) },
        defaults: { prefix: 'mig-tags:', ...fast },
        groupOptions: which === 'new' ? { default: { migration } } : {},
      }),
    ],
  });
}

function partsOf(app: INestApplication) {
  const dict = app.get(RingRedisService).getOrThrow('default');
  const cache = app.get(RingCacheService);
  const wrap = (key: string, tag: string, value: string) =>
    cache.wrap(key, async () => value, { ttl: 60, tags: [tag] });
  return { dict, cache, wrap };
}

/** The version key `ring` picks for `node`: the first `<tag>:<n>` it places there. */
function versionKeyOf(ring: HashRing, entry: (key: string) => string, tag: string, node: string) {
  for (let n = 0; n < 64 * ring.size; n++) {
    const key = `${TAG_KEY_PREFIX}${tag}:${n}`;
    if (ring.locate(entry(key)) === node) return key;
  }
  throw new Error(`no version key of ${tag} on ${node}`);
}

/** Every version key `ring` picks for `tag`, one per node. */
function versionKeysOf(ring: HashRing, entry: (key: string) => string, tag: string): string[] {
  return ring.nodes.map((node) => versionKeyOf(ring, entry, tag, node));
}

/** The first `t<n>` tag and `k<n>` key for which `fits` holds. */
function sceneWhere(fits: (tag: string, key: string) => boolean): { key: string; tag: string } {
  for (let t = 0; t < 2_000; t++) if (fits(`t${t}`, `k${t}`)) return { key: `k${t}`, tag: `t${t}` };
  throw new Error('no tag and key fit the scene');
}

type Parts = ReturnType<typeof partsOf>;

/**
 * `reader` caches the tagged call and hits it; `invalidate` runs (`before` first); `reader`'s
 * next call must run the function again.
 */
async function expectInvalidated(
  reader: Parts,
  invalidator: Parts,
  { key, tag }: { key: string; tag: string },
  before: () => Promise<void> = async () => undefined,
): Promise<void> {
  expect(await reader.wrap(key, tag, 'v0')).toBe('v0');
  expect(await reader.wrap(key, tag, 'unused')).toBe('v0');
  await before();
  await invalidator.cache.invalidateTags([tag]);
  expect(await reader.wrap(key, tag, 'v1')).toBe('v1');
}

const OLD_RING = new HashRing({ node0: 1, node1: 1, node2: 1 });

describe('@RingCached tags during a migration', () => {
  it('an invalidation by an app on the new nodes reaches an app on the old ones', async () => {
    const [old, fresh] = [partsOf(await boot('old')), partsOf(await boot('new'))];
    const entry = (key: string) => old.dict.getEntry(key);
    const newRing = fresh.dict.totalHash;
    // A tag whose version key on the entry's node (old ring) is none the new ring picks.
    const scene = sceneWhere((tag, key) => {
      const node = OLD_RING.locate(entry(key))!;
      return !versionKeysOf(newRing, entry, tag).includes(versionKeyOf(OLD_RING, entry, tag, node));
    });
    await expectInvalidated(old, fresh, scene);
  });

  it('an invalidation by an app on the old nodes reaches an app on the new ones', async () => {
    const [old, fresh] = [partsOf(await boot('old')), partsOf(await boot('new'))];
    const entry = (key: string) => old.dict.getEntry(key);
    const newRing = fresh.dict.totalHash;
    // A tag whose version key on the entry's node (new ring) is none the old ring picks, and
    // that the old ring places where it places the entry (read in one MGET there).
    const scene = sceneWhere((tag, key) => {
      const versionKey = versionKeyOf(newRing, entry, tag, newRing.locate(entry(key))!);
      const together = OLD_RING.locate(entry(versionKey)) === OLD_RING.locate(entry(key));
      return together && !versionKeysOf(OLD_RING, entry, tag).includes(versionKey);
    });
    await expectInvalidated(fresh, old, scene);
  });

  it('an invalidation by an app whose migration is over reaches one whose clock says it is not', async () => {
    const until = Date.now() + 300;
    const [over, on] = [partsOf(await boot('new', until)), partsOf(await boot('new'))];
    const entry = (key: string) => on.dict.getEntry(key);
    const newRing = on.dict.totalHash;
    // A tag whose version key on the entry's node (old ring) is none the new ring picks, on a
    // node of both rings: the app whose migration is over deletes it there too.
    const scene = sceneWhere((tag, key) => {
      const node = OLD_RING.locate(entry(key))!;
      const versionKey = versionKeyOf(OLD_RING, entry, tag, node);
      return node !== 'node2' && !versionKeysOf(newRing, entry, tag).includes(versionKey);
    });
    await expectInvalidated(on, over, scene, () => sleep(until - Date.now() + 200));
  });

  it('the same when the entry is on a node only the old list names', async () => {
    const until = Date.now() + 300;
    const [over, on] = [partsOf(await boot('new', until)), partsOf(await boot('new'))];
    const entry = (key: string) => on.dict.getEntry(key);
    const scene = sceneWhere((_, key) => OLD_RING.locate(entry(key)) === 'node2');
    // The app whose migration is over deletes on node2 too, in its warm-up window.
    await expectInvalidated(on, over, scene, () => sleep(until - Date.now() + 200));
  });
});
