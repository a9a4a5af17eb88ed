import { describe, expect, it } from 'vitest';
import { RingConfigError, type RingDict } from '../../lib/index.js';
import { FAILURE_TIMINGS, SETTLE, TEST_TIMEOUT } from '../helpers/failure-scenes.js';
import { redisCommand } from '../helpers/redis-command.js';
import { ringNodes } from '../helpers/redis-fleet.js';
import type { RedisServer } from '../helpers/redis-servers.js';
import { collect, saw, useRingDicts } from '../helpers/ring-dicts.js';
import { until } from '../helpers/wait.js';

/**
 * Replication (`replicas`): each entry on its owner and the next distinct nodes clockwise,
 * checked on the servers themselves; deletes on every copy; a node lost, hung or back with old
 * data serving nothing stale while the other copies keep the hits; a node added then removed
 * leaving no copy behind to come back.
 */

const fixture = useRingDicts(FAILURE_TIMINGS);
const NODES = ['node0', 'node1', 'node2'];
const LONG_TEST = { timeout: 30_000 };

/** The keys a server holds under `prefix`, straight from the server. */
async function keysOn(server: RedisServer, prefix: string): Promise<Set<string>> {
  const reply = await redisCommand(server.port, 'KEYS', `${prefix}*`);
  return new Set(reply === '' ? [] : reply.split('\n'));
}

function keyList(count: number, tag = 'k'): string[] {
  return Array.from({ length: count }, (_, i) => `${tag}${i}`);
}

/** Runs `fn` on `keys`, `inFlight` at a time; answers the results in order. */
async function mapLimited<T>(
  keys: readonly string[],
  fn: (key: string) => Promise<T>,
  inFlight = 32,
): Promise<T[]> {
  const results: T[] = Array.from({ length: keys.length });
  let next = 0;
  const lane = async () => {
    while (next < keys.length) {
      const i = next++;
      results[i] = await fn(keys[i]);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  return results;
}

/** Every value `dict` answers for `keys`, and how many calls threw. */
async function readAll<V>(dict: RingDict<V>, keys: readonly string[]) {
  let thrown = 0;
  const values = await mapLimited(keys, (key) =>
    dict.get(key).catch(() => {
      thrown++;
      return undefined;
    }),
  );
  return { values, thrown };
}

describe('replicas: where the copies are', () => {
  it('writes each entry on the nodes locateAll names and nowhere else, with equal TTLs', async () => {
    const dict = fixture.dict<string>({ prefix: 'place:', replicas: 2 });
    const keys = keyList(300);
    await mapLimited(keys, (key) => dict.set(key, `v-${key}`, { ttl: 60 }));
    const expected = new Map(NODES.map((node) => [node, new Set<string>()]));
    for (const key of keys) {
      const entry = dict.getEntry(key);
      const copies = dict.totalHash.locateAll(entry, 2);
      expect(dict.nodesOf(key)).toEqual(copies);
      for (const node of copies) expected.get(node)!.add(entry);
    }
    for (const node of NODES) {
      const held = await keysOn(fixture.serverOf(node), 'place:');
      expect([...held].sort(), node).toEqual([...expected.get(node)!].sort());
      // Two thirds of the entries each, give or take the keys' own spread.
      expect(held.size).toBeGreaterThan(150);
      expect(held.size).toBeLessThan(250);
    }
    // The same TTL on both copies: both written with the same PX, in parallel.
    for (const key of keys.slice(0, 20)) {
      const entry = dict.getEntry(key);
      const ttls = await Promise.all(
        dict
          .nodesOf(key)
          .map(async (node) =>
            Number(await redisCommand(fixture.serverOf(node).port, 'PTTL', entry)),
          ),
      );
      expect(Math.abs(ttls[0] - ttls[1])).toBeLessThan(1_000);
      expect(Math.min(...ttls)).toBeGreaterThan(50_000);
    }
  });

  it('deletes every copy, and answers true when any copy was removed', async () => {
    const dict = fixture.dict<string>({ prefix: 'del:', replicas: 3 });
    const keys = keyList(60);
    await mapLimited(keys, (key) => dict.set(key, 'v'));
    for (const node of NODES) expect((await keysOn(fixture.serverOf(node), 'del:')).size).toBe(60);
    // One key with its owner's copy gone: the delete still removes the others, and says so.
    const [first, ...rest] = keys;
    const owner = dict.nodesOf(first)[0];
    await redisCommand(fixture.serverOf(owner).port, 'DEL', dict.getEntry(first));
    expect(await dict.delete(first)).toBe(true);
    await mapLimited(rest.slice(0, 29), (key) => dict.delete(key));
    for (const node of NODES) {
      const held = await keysOn(fixture.serverOf(node), 'del:');
      expect(held.size, node).toBe(30);
      for (const key of keys.slice(0, 30)) expect(held.has(dict.getEntry(key))).toBe(false);
    }
    expect(await dict.delete(first)).toBe(false);
  });

  it("reads the next copy when the owner misses, and has() too; the owner's miss is not written back", async () => {
    const dict = fixture.dict<string>({ prefix: 'miss:', replicas: 2 });
    await dict.set('a', 'value');
    const [owner, copy] = dict.nodesOf('a');
    await redisCommand(fixture.serverOf(owner).port, 'DEL', dict.getEntry('a'));
    expect(await dict.get('a')).toBe('value');
    expect(await dict.has('a')).toBe(true);
    expect(await dict.getRaw('a')).toBe('"value"');
    expect(await redisCommand(fixture.serverOf(owner).port, 'EXISTS', dict.getEntry('a'))).toBe(
      '0',
    );
    expect(await redisCommand(fixture.serverOf(copy).port, 'EXISTS', dict.getEntry('a'))).toBe('1');
    expect(await dict.get('absent')).toBeUndefined();
  });

  it('refuses more replicas than nodes, and anything but a whole number ≥ 1, naming the option', () => {
    for (const replicas of [4, 0, -1, 1.5, Number.NaN, '2']) {
      expect(() => fixture.dict({ replicas: replicas as number, lazyConnect: true })).toThrow(
        RingConfigError,
      );
      expect(() => fixture.dict({ replicas: replicas as number, lazyConnect: true })).toThrow(
        /replicas: expected an integer from 1 to the node count \(3\)/,
      );
    }
  });
});

describe('replicas: visitRedis and the copy handoff', () => {
  it('visitRedis writes every copy and reads the next one when the owner has nothing', async () => {
    const dict = fixture.dict<string>({ prefix: 'visit:', replicas: 2 });
    expect(await dict.visitRedis('HSET', 'cart', 'apples', 3)).toBe(1);
    const [owner, copy] = dict.nodesOf('cart');
    for (const node of [owner, copy]) {
      expect(await redisCommand(fixture.serverOf(node).port, 'HGET', 'visit:cart', 'apples')).toBe(
        '3',
      );
    }
    await redisCommand(fixture.serverOf(owner).port, 'DEL', 'visit:cart');
    expect(await dict.visitRedis('HGET', 'cart', 'apples')).toBe('3');
  });

  it(
    "'copy' mode: the returning node gets the newer value back, its stand-in's copy goes, the home copy stays",
    TEST_TIMEOUT,
    async () => {
      const dict = fixture.dict<string>({ prefix: 'copy:', replicas: 2, handoff: 'copy' });
      const events = collect(dict);
      // A key whose copies are on node1 and another node, and the third node stands in for node1.
      const key = keyList(200).find((k) => dict.nodesOf(k).includes('node1'))!;
      const entry = dict.getEntry(key);
      const other = dict.nodesOf(key).find((n) => n !== 'node1')!;
      const standIn = NODES.find((n) => n !== 'node1' && n !== other)!;
      await dict.set(key, 'v1');
      fixture.serverOf('node1').hang();
      await dict.set(key, 'v2'); // node1 times out: ejected, its copy written on the stand-in
      await until(() => saw(events, 'ejected', 'node1') === 1, SETTLE);
      expect(await redisCommand(fixture.serverOf(standIn).port, 'GET', entry)).toBe('"v2"');
      fixture.serverOf('node1').resume();
      await until(() => saw(events, 'rediscovered', 'node1') === 1, SETTLE);
      expect(await redisCommand(fixture.serverOf('node1').port, 'GET', entry)).toBe('"v2"');
      expect(await redisCommand(fixture.serverOf(other).port, 'GET', entry)).toBe('"v2"');
      expect(await redisCommand(fixture.serverOf(standIn).port, 'EXISTS', entry)).toBe('0');
      expect(await dict.get(key)).toBe('v2');
    },
  );
});

describe('replicas: a node lost', () => {
  /** Sets `keys`, SIGKILLs node1, and reads every key back: the hit ratio and the calls thrown. */
  async function hitsAfterKill(replicas: number, prefix: string) {
    const dict = fixture.dict<string>({ prefix, replicas });
    const events = collect(dict);
    const keys = keyList(3_000);
    await mapLimited(keys, (key) => dict.set(key, `v-${key}`));
    await fixture.serverOf('node1').kill();
    const { values, thrown } = await readAll(dict, keys);
    const wrong = values.filter((v, i) => v !== undefined && v !== `v-${keys[i]}`).length;
    const hits = values.filter((v) => v !== undefined).length / keys.length;
    expect(saw(events, 'ejected', 'node1')).toBe(1);
    return { hits, thrown, wrong };
  }

  it(
    'replicas 2 over 3 nodes, one SIGKILLed: ≥ 99 % of the cached keys still hit, no call thrown',
    LONG_TEST,
    async () => {
      const two = await hitsAfterKill(2, 'lost2:');
      console.log(`replicas 2, node1 SIGKILLed: ${(two.hits * 100).toFixed(2)} % hits`);
      expect(two.hits).toBeGreaterThanOrEqual(0.99);
      expect(two.thrown).toBe(0);
      expect(two.wrong).toBe(0);
    },
  );

  it('replicas 1, for contrast: about a third of the keys miss', LONG_TEST, async () => {
    const one = await hitsAfterKill(1, 'lost1:');
    console.log(`replicas 1, node1 SIGKILLed: ${(one.hits * 100).toFixed(2)} % hits`);
    expect(one.hits).toBeLessThan(0.8);
    expect(one.thrown).toBe(0);
  });
});

describe('replicas: a node back with old data serves nothing stale', () => {
  /** Sets v1 everywhere, lets `fault` take node1 out, writes v2 everywhere, heals, reads. */
  async function afterReturn(
    prefix: string,
    fault: (dict: RingDict<string>) => Promise<void>,
    heal: () => Promise<void>,
  ) {
    const dict = fixture.dict<string>({ prefix, replicas: 2 });
    const events = collect(dict);
    const keys = keyList(600);
    await mapLimited(keys, (key) => dict.set(key, 'v1'));
    await fault(dict);
    await until(() => saw(events, 'ejected', 'node1') === 1, SETTLE);
    await mapLimited(keys, (key) => dict.set(key, 'v2'));
    await heal();
    await until(() => saw(events, 'rediscovered', 'node1') === 1, SETTLE);
    const { values, thrown } = await readAll(dict, keys);
    const old = values.filter((v) => v === 'v1').length;
    const hits = values.filter((v) => v === 'v2').length / keys.length;
    // node1 holds no copy of v1 any more, whatever it held when it came back.
    const entries = keys.map((key) => dict.getEntry(key));
    const onNode1 = await keysOn(fixture.serverOf('node1'), prefix);
    const v1Left = await Promise.all(
      entries
        .filter((entry) => onNode1.has(entry))
        .map((entry) => redisCommand(fixture.serverOf('node1').port, 'GET', entry)),
    );
    return { old, hits, thrown, v1OnNode1: v1Left.filter((raw) => raw === '"v1"').length };
  }

  it('hung (SIGSTOP) while the entries were rewritten, then resumed', TEST_TIMEOUT, async () => {
    const result = await afterReturn(
      'hung:',
      async (dict) => {
        fixture.serverOf('node1').hang();
        // A write that times out on node1 ejects it; the others fail over to its stand-in.
        await dict.set('k0', 'v1');
      },
      async () => fixture.serverOf('node1').resume(),
    );
    expect(result).toMatchObject({ old: 0, thrown: 0, v1OnNode1: 0 });
    // The copies that stayed current on the other node keep the hits.
    expect(result.hits).toBeGreaterThanOrEqual(0.99);
  });

  it('SIGKILLed and restarted empty', TEST_TIMEOUT, async () => {
    const result = await afterReturn(
      'empty:',
      () => fixture.serverOf('node1').kill(),
      () => fixture.serverOf('node1').restart(),
    );
    expect(result).toMatchObject({ old: 0, thrown: 0, v1OnNode1: 0 });
    expect(result.hits).toBeGreaterThanOrEqual(0.99);
  });

  it('restarted from a snapshot older than the last writes', TEST_TIMEOUT, async () => {
    const server = fixture.serverOf('node1');
    const result = await afterReturn(
      'rdb:',
      async () => {
        await redisCommand(server.port, 'SAVE');
        await server.kill();
      },
      () => server.restart(), // loads the snapshot: v1 everywhere
    );
    expect(result).toMatchObject({ old: 0, thrown: 0, v1OnNode1: 0 });
    expect(result.hits).toBeGreaterThanOrEqual(0.99);
  });
});

describe('replicas: a node added, then removed', () => {
  it(
    'a node that holds no copy of an entry after the change keeps none: a deleted entry never comes back',
    LONG_TEST,
    async () => {
      const servers = fixture.fleet.servers;
      const [two, three] = [ringNodes(servers.slice(0, 2)), ringNodes(servers)];
      const dict = fixture.dict<string>({ nodes: two, prefix: 'grow:', replicas: 2 });
      const keys = keyList(30, 'g');
      await mapLimited(keys, (key) => dict.set(key, 'v1'));
      await dict.setNodes(three);
      // On two nodes each entry had a copy on both; each that has one on node2 now lost one.
      expect(keys.filter((key) => dict.nodesOf(key).includes('node2')).length).toBeGreaterThan(5);
      await mapLimited(keys, (key) => dict.delete(key));
      const copiesLeft = async () => {
        const held = await Promise.all(servers.map((server) => keysOn(server, 'grow:')));
        return held.reduce((count, on) => count + on.size, 0);
      };
      await until(async () => (await copiesLeft()) === 0, 5_000, 'no copy left on any server');
      await dict.setNodes(two);
      expect(await mapLimited(keys, (key) => dict.get(key))).toEqual(keys.map(() => undefined));
    },
  );
});
