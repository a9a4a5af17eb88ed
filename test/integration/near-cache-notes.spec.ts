import 'reflect-metadata';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { cacheView } from '../../lib/core/read-through.js';
import type { NearCache } from '../../lib/core/near/near-cache.js';
import { ENTRY_OVERHEAD_BYTES } from '../../lib/core/near/near-store.js';
import { HashRing, RingCacheService, RingRedisModule, RingRedisService } from '../../lib/index.js';
import { fast, useNestApps } from '../helpers/nest-apps.js';
import { commandCalls } from '../helpers/redis-command.js';
import { until } from '../helpers/wait.js';

/**
 * What `@RingCached` keeps with an entry its near cache holds (a note: the entry's metadata,
 * where its tags' versions are): never so much that the entry itself is evicted, never an old
 * ring, and never more heap than it counts against `maxBytes`.
 */

const apps = useNestApps();

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

async function boot(nearCache: { maxBytes?: number; maxEntries?: number }) {
  const app = await apps.boot({
    imports: [
      RingRedisModule.forRoot({
        groups: { default: apps.nodes() },
        // No ejection under a loaded machine: one would drop what the near cache holds.
        defaults: { ...fast, commandTimeout: 3_000 },
        // maxLag 50: hits in a row are answered without waiting for a poll of the sockets.
        groupOptions: { default: { nearCache: { maxLag: 50, ...nearCache } } },
      }),
    ],
  });
  const dict = app.get(RingRedisService).getOrThrow('default');
  await until(
    () => dict.nodeStates().every((state) => state.invalidation === 'up'),
    3_000,
    'channels up',
  );
  return { dict, cache: app.get(RingCacheService) };
}

type Dict = Awaited<ReturnType<typeof boot>>['dict'];

function gets(): Promise<number> {
  return commandCalls(
    apps.fleet.servers.map((server) => server.port),
    ['get', 'mget'],
  );
}

interface Held {
  raw: string;
  note: unknown;
  bytes: number;
}

/** The entries the dict's near cache holds now, by entry. */
function heldOf(dict: Dict): Map<string, Held> {
  const near = dict[cacheView].near as NearCache;
  return (near.store as unknown as { entries: Map<string, Held> }).entries;
}

async function heapUsed(): Promise<number> {
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return process.memoryUsage().heapUsed;
}

/** True when `value`, or anything it holds (objects and lists, not functions), is a ring. */
function reachesRing(value: unknown, seen = new Set<unknown>()): boolean {
  if (value === null || typeof value !== 'object' || seen.has(value)) return false;
  if (value instanceof HashRing) return true;
  seen.add(value);
  return Object.values(value).some((field) => reachesRing(field, seen));
}

/** The heap the notes free when dropped, and what they counted, per note. */
async function notesHeap(dict: Dict): Promise<{ notes: number; freed: number; counted: number }> {
  const noted = [...heldOf(dict)].filter(([, held]) => held.note !== undefined);
  const counted = noted.reduce(
    (sum, [entry, held]) =>
      sum + held.bytes - (entry.length + held.raw.length + ENTRY_OVERHEAD_BYTES),
    0,
  );
  const before = await heapUsed();
  for (const [, held] of noted) held.note = undefined;
  const after = await heapUsed();
  return {
    notes: noted.length,
    freed: (before - after) / noted.length,
    counted: counted / noted.length,
  };
}

describe('notes on entries the near cache holds', () => {
  it('an entry that fits maxBytes only without its note is still answered from memory', async () => {
    const { cache } = await boot({ maxBytes: 4096 });
    const big = 'x'.repeat(3400);
    const call = () => cache.wrap('big', async () => big, { ttl: 60, tags: ['t'] });
    await call();
    let fromMemory = 0;
    for (let i = 0; i < 30; i++) {
      const was = await gets();
      expect(await call()).toBe(big);
      if ((await gets()) === was) fromMemory++;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(fromMemory).toBeGreaterThan(20);
  });

  it('keep no ring, which a change of nodes replaces (a few KB each)', async () => {
    const { dict, cache } = await boot({});
    let noted = 0;
    for (let i = 0; i < 20; i++) {
      // The same nodes: new rings, and nothing the near cache holds is dropped.
      await dict.setNodes(apps.nodes());
      const call = () => cache.wrap(`k${i}`, async () => i, { ttl: 600, tags: ['team'] });
      await call();
      await until(
        async () => {
          const was = await gets();
          await call();
          return (await gets()) === was;
        },
        1_000,
        'a hit from memory',
      );
      // Right after a read, the loop has polled its sockets: this hit is answered at once, and
      // leaves its note (one after a pause longer than maxLag waits for a poll instead).
      await call();
      for (const held of heldOf(dict).values()) {
        if (held.note === undefined) continue;
        noted++;
        expect(reachesRing(held.note)).toBe(false);
      }
    }
    expect(noted).toBeGreaterThan(0);
  });

  it('count the names of their versions’ keys, which only they hold past 10 000 tags', async () => {
    const { dict, cache } = await boot({ maxEntries: 100_000, maxBytes: 1 << 30 });
    const tagsOf = (i: number) => Array.from({ length: 10 }, (_, t) => `user:${i}:${t}`);
    const call = (i: number) => cache.wrap(`u${i}`, async () => i, { ttl: 600, tags: tagsOf(i) });
    // 1 050 entries of 10 tags each: 10 500 tags, more than TagVersions remembers.
    for (let i = 0; i < 1_050; i += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, j) => call(i + j)));
    }
    for (let pass = 0; pass < 3; pass++) {
      for (let i = 0; i < 1_050; i += 50) {
        await Promise.all(Array.from({ length: 50 }, (_, j) => call(i + j)));
      }
    }
    const { notes, freed, counted } = await notesHeap(dict);
    expect(notes).toBeGreaterThan(500);
    expect(freed).toBeLessThan(counted);
  });
});
