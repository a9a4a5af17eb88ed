import { describe, expect, it } from 'vitest';
import { HashRing, type RingDict, type RingNodesConfig } from '../../lib/index.js';
import { FAILURE_TIMINGS, SETTLE, TEST_TIMEOUT } from '../helpers/failure-scenes.js';
import { commandCalls, redisCommand } from '../helpers/redis-command.js';
import { ringNodes } from '../helpers/redis-fleet.js';
import { useRingDicts } from '../helpers/ring-dicts.js';
import { sleep, until } from '../helpers/wait.js';

/**
 * Keys that move without a node joining, leaving or coming back: new capacities, the end of a
 * migration. The near cache holds values read from the keys' former owners, which never see the
 * writes other processes make at the new ones: it drops them. Before, every moved key answered
 * its former value (every read for seconds, until the entry's TTL or the warm-up's sweep).
 */

const fixture = useRingDicts({ ...FAILURE_TIMINGS, nearCache: {} });

const KEYS = Array.from({ length: 120 }, (_, i) => `k${i}`);

/** The nodes with node1 weighing four times the others. */
function reweighted(): RingNodesConfig {
  const nodes = ringNodes(fixture.fleet.servers);
  return { ...nodes, node1: { ...nodes.node1, capacity: 4 } };
}

/** Holds every key in `dict`'s near cache, written `v1`. */
async function held(dict: RingDict<string>): Promise<void> {
  await dict.connect();
  await until(() => dict.nodeStates().every((s) => s.invalidation === 'up'), SETTLE, 'channels');
  await dict.setMany(KEYS.map((key) => [key, 'v1']));
  await dict.getMany(KEYS);
}

/** The ring of three equal nodes, where the keys were. */
const before = new HashRing({ node0: 1, node1: 1, node2: 1 });

/** Writes `v2` where `dict` places each key now, as a process on that list would; the keys moved. */
async function writtenElsewhere(dict: RingDict<string>) {
  const moved = KEYS.filter(
    (key) => dict.totalHash.locate(dict.getEntry(key)) !== before.locate(dict.getEntry(key)),
  );
  expect(moved.length).toBeGreaterThan(10);
  for (const key of moved) {
    const owner = fixture.serverOf(dict.totalHash.locate(dict.getEntry(key))!);
    await redisCommand(owner.port, 'SET', dict.getEntry(key), '"v2"');
  }
  return moved;
}

describe('the near cache when keys move with no node event', () => {
  it('new capacities: a moved key answers what its new owner holds', TEST_TIMEOUT, async () => {
    const dict = fixture.dict<string>({ prefix: 'mv:' });
    await held(dict);
    await dict.setNodes(reweighted());
    const moved = await writtenElsewhere(dict);
    expect(await dict.getMany(moved)).toEqual(moved.map(() => 'v2'));
  });

  // The near cache's GET is not GET itself, and the warm-up looked only for GET: every moved
  // key missed with a near cache (96 of 300), none without.
  it('new capacities: a moved key is still found on its former owner', TEST_TIMEOUT, async () => {
    const dict = fixture.dict<string>({ prefix: 'mvw:', warmUpWindow: 60 });
    await held(dict);
    await dict.setNodes(reweighted());
    const values = await Promise.all(KEYS.map((key) => dict.get(key)));
    expect(values).toEqual(KEYS.map(() => 'v1'));
  });

  it(
    'an unchanged list: nothing moved, everything still answered from memory',
    TEST_TIMEOUT,
    async () => {
      const dict = fixture.dict<string>({ prefix: 'mvs:' });
      await held(dict);
      await dict.getMany(KEYS);
      const ports = fixture.fleet.servers.map((server) => server.port);
      const reads = () => commandCalls(ports, ['get', 'mget']);
      const before = await reads();
      await dict.setNodes(ringNodes(fixture.fleet.servers));
      expect(await dict.getMany(KEYS)).toEqual(KEYS.map(() => 'v1'));
      expect(await reads()).toBe(before);
    },
  );

  it('a migration ending: a moved key answers what its new owner holds', TEST_TIMEOUT, async () => {
    const until = Date.now() + 2_500;
    const from = ringNodes(fixture.fleet.servers);
    const dict = fixture.dict<string>({
      prefix: 'mvm:',
      nodes: reweighted(),
      migration: { from, until },
    });
    await held(dict);
    // Held while the migration lasted, or the test proves nothing.
    expect(Date.now()).toBeLessThan(until);
    await sleep(until - Date.now() + 100);
    const moved = await writtenElsewhere(dict);
    expect(await dict.getMany(moved)).toEqual(moved.map(() => 'v2'));
  });
});
