import { describe, expect, it } from 'vitest';
import type { RingDict } from '../../lib/index.js';
import { FAILURE_TIMINGS, killUntilEjected, TEST_TIMEOUT } from '../helpers/failure-scenes.js';
import { redisCommand } from '../helpers/redis-command.js';
import { collect, useRingDicts } from '../helpers/ring-dicts.js';

/**
 * Replication and the calls on many entries: getMany, setMany and deleteMany reach every copy
 * and read the next one on a miss; size, keys, entries and clear count each entry once.
 */

const fixture = useRingDicts(FAILURE_TIMINGS);
const NODES = ['node0', 'node1', 'node2'];

/** The dict's entries on `node`'s server (the ring's own control keys left out). */
async function entriesOn(node: string, prefix: string): Promise<number> {
  const reply = await redisCommand(fixture.serverOf(node).port, 'KEYS', `${prefix}*`);
  return reply === '' ? 0 : reply.split('\n').length;
}

function pairs(count: number, value = (i: number) => `v${i}`): [string, string][] {
  return Array.from({ length: count }, (_, i) => [`k${i}`, value(i)]);
}

async function collectKeys(dict: RingDict<string>): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of dict.keys()) keys.push(key);
  return keys.sort();
}

describe('replicas and batches', () => {
  it('setMany writes every copy where locateAll says, with its TTL; getMany reads them', async () => {
    const dict = fixture.dict<string>({ prefix: 'b:', replicas: 2 });
    const entries = pairs(500);
    await dict.setMany(entries, { ttl: 60 });
    for (const node of NODES) {
      const expected = entries.filter(([key]) =>
        dict.totalHash.locateAll(dict.getEntry(key), 2).includes(node),
      );
      expect(await entriesOn(node, 'b:'), node).toBe(expected.length);
    }
    const [key] = entries[0];
    const ttls = await Promise.all(
      dict
        .nodesOf(key)
        .map((node) => redisCommand(fixture.serverOf(node).port, 'PTTL', dict.getEntry(key))),
    );
    for (const ttl of ttls) expect(Number(ttl)).toBeGreaterThan(50_000);
    expect(await dict.getMany(entries.map(([k]) => k))).toEqual(entries.map(([, v]) => v));
  });

  it('getMany reads the next copy for the keys the owner lost, and size/keys count them once', async () => {
    const dict = fixture.dict<string>({ prefix: 'lost:', replicas: 2 });
    const entries = pairs(300);
    await dict.setMany(entries);
    // node0 restarted empty as far as these entries go: its copies are gone.
    await redisCommand(fixture.serverOf('node0').port, 'FLUSHALL');
    const keys = entries.map(([k]) => k);
    expect(await dict.getMany([...keys, 'absent'])).toEqual([
      ...entries.map(([, v]) => v),
      undefined,
    ]);
    expect(await dict.size()).toBe(300);
    expect(await collectKeys(dict)).toEqual([...keys].sort());
    const seen: string[] = [];
    for await (const [key, value] of dict.entries()) {
      expect(value).toBe(`v${key.slice(1)}`);
      seen.push(key);
    }
    expect(seen).toHaveLength(300);
  });

  it('deleteMany removes every copy and counts each entry once', async () => {
    const dict = fixture.dict<string>({ prefix: 'dm:', replicas: 3 });
    await dict.setMany(pairs(200));
    expect(await dict.size()).toBe(200);
    const gone = pairs(120).map(([k]) => k);
    expect(await dict.deleteMany([...gone, 'absent'])).toBe(120);
    for (const node of NODES) expect(await entriesOn(node, 'dm:'), node).toBe(80);
    expect(await dict.size()).toBe(80);
    expect(await dict.deleteMany(gone)).toBe(0);
  });

  it('clear deletes every copy and answers how many entries, not copies', async () => {
    const dict = fixture.dict<string>({ prefix: 'clr:', replicas: 2 });
    await dict.setMany(pairs(400));
    // A leftover copy on a node that is not a target of its entry: deleted, not counted.
    const [stray] = pairs(400)
      .map(([k]) => k)
      .filter((k) => !dict.nodesOf(k).includes('node2'));
    await redisCommand(fixture.serverOf('node2').port, 'SET', dict.getEntry(stray), '"old"');
    expect(await dict.clear()).toBe(400);
    for (const node of NODES) expect(await entriesOn(node, 'clr:'), node).toBe(0);
    expect(await dict.size()).toBe(0);
  });

  it(
    'with a node out, setMany and deleteMany still reach the copies left, and count once',
    TEST_TIMEOUT,
    async () => {
      const dict = fixture.dict<string>({ prefix: 'out:', replicas: 2 });
      const events = collect(dict);
      await killUntilEjected(fixture, events, 'node1');
      const entries = pairs(200, (i) => `w${i}`);
      await dict.setMany(entries);
      expect(await dict.getMany(entries.map(([k]) => k))).toEqual(entries.map(([, v]) => v));
      expect(await dict.size()).toBe(200);
      // Two copies on the two nodes left: every entry on both.
      expect(await entriesOn('node0', 'out:')).toBe(200);
      expect(await entriesOn('node2', 'out:')).toBe(200);
      expect(await dict.deleteMany(entries.slice(0, 50).map(([k]) => k))).toBe(50);
      expect(await dict.size()).toBe(150);
    },
  );
});
