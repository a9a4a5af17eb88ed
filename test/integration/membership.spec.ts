import { describe, expect, it } from 'vitest';
import {
  RingConfigError,
  type RingDict,
  type RingNodeConfig,
  type RingNodesConfig,
} from '../../lib/index.js';
import { clientsNamed } from '../helpers/failure-scenes.js';
import { redisCommand } from '../helpers/redis-command.js';
import { ringNodes, taggedNodes } from '../helpers/redis-fleet.js';
import { collect, useRingDicts } from '../helpers/ring-dicts.js';
import { sleep, until } from '../helpers/wait.js';

/**
 * setNodes(): membership changed at run time, under load, against real servers — nodes added
 * and removed with 64 requests in flight, bad input refused with nothing changed, changes run
 * in turn, and no value served that a later write or delete replaced.
 */

const fixture = useRingDicts({ prefix: 'm:', commandTimeout: 500 }, { servers: 5 });
const TIMEOUT = { timeout: 30_000 };

/** The first `count` servers of the fleet as `node0`…, each connection named `tag`. */
function nodesOf(count: number, tag: string): RingNodesConfig {
  return Object.fromEntries(
    Object.entries(taggedNodes(fixture.fleet.servers, tag)).slice(0, count),
  );
}

/**
 * 64 workers, each on keys of its own: set a new version, read it back, now and then delete.
 * A read must answer the last version written or nothing (a miss); anything else is stale.
 * Counts calls that failed and stale reads, until `stop()`.
 */
function load(dict: RingDict<number>, workers = 64) {
  let running = true;
  const result = { calls: 0, failed: 0, stale: 0, misses: 0, errors: [] as string[] };
  const worker = async (w: number) => {
    const versions = new Map<string, number | undefined>();
    for (let n = 0; running; n++) {
      const key = `w${w}:${n % 50}`;
      try {
        if (n % 7 === 0) {
          await dict.delete(key);
          versions.set(key, undefined);
        } else {
          await dict.set(key, n);
          versions.set(key, n);
        }
        const read = await dict.get(key);
        result.calls += 2;
        if (read === undefined) result.misses++;
        else if (read !== versions.get(key)) result.stale++;
      } catch (error) {
        result.failed++;
        result.errors.push((error as Error).message);
      }
    }
  };
  const done = Promise.all(Array.from({ length: workers }, (_, w) => worker(w)));
  return {
    result,
    stop: async () => {
      running = false;
      await done;
      return result;
    },
  };
}

describe('setNodes under load', () => {
  it(
    'adds a node and removes another with 64 calls in flight: none fails, none is stale',
    TIMEOUT,
    async () => {
      const tag = `grow-${process.pid}`;
      const dict = fixture.dict<number>({ nodes: nodesOf(4, tag) });
      const events = collect(dict);
      await dict.connect();
      const running = load(dict);
      await sleep(300);
      await dict.setNodes(nodesOf(5, tag));
      expect(dict.totalHash.nodes).toEqual(['node0', 'node1', 'node2', 'node3', 'node4']);
      await sleep(300);
      const { node1: _gone, ...withoutNode1 } = nodesOf(5, tag);
      const started = performance.now();
      await dict.setNodes(withoutNode1);
      // The removed node finished what was in flight and closed, within 2 s.
      expect(performance.now() - started).toBeLessThan(2_000);
      await sleep(300);
      const result = await running.stop();

      expect(result.errors).toEqual([]);
      expect(result.failed).toBe(0);
      expect(result.stale).toBe(0);
      expect(result.calls).toBeGreaterThan(1_000);
      expect(events.map((e) => `${e.type} ${e.node}`)).toEqual(['added node4', 'removed node1']);
      expect(dict.totalHash.nodes).toEqual(['node0', 'node2', 'node3', 'node4']);
      expect(dict.aliveHash.nodes).toEqual(['node0', 'node2', 'node3', 'node4']);
      expect(dict.nodeStates().map((s) => s.name)).toEqual(['node0', 'node2', 'node3', 'node4']);
      // No connection of this dict is left on the removed node's server (data, fleet, probe).
      await until(
        async () => (await clientsNamed(fixture.serverOf('node1'), tag)).length === 0,
        2_000,
      );
      // The new node serves its share.
      expect(await dict.get('w0:1')).not.toBe('x');
      expect(Number(await redisCommand(fixture.serverOf('node4').port, 'DBSIZE'))).toBeGreaterThan(
        0,
      );
    },
  );

  it(
    'removing a hung node: the calls waiting on it move on, and it is closed within 2 s',
    TIMEOUT,
    async () => {
      const nodes = ringNodes(fixture.fleet.servers.slice(0, 3));
      const { node2: _third, ...two } = nodes;
      const dict = fixture.dict<string>({ nodes, commandTimeout: 1_000 });
      await dict.connect();
      const keys = Array.from({ length: 200 }, (_, i) => `k${i}`).filter(
        (key) => dict.totalHash.locate(dict.getEntry(key)) === 'node2',
      );
      await dict.setMany(keys.map((key) => [key, 'v'] as const));
      fixture.serverOf('node2').hang();
      const waiting = keys.map((key) => dict.get(key));
      const started = performance.now();
      await dict.setNodes(two);
      expect(performance.now() - started).toBeLessThan(2_500);
      // Misses (their values stayed on the node that left), never a failure.
      expect(await Promise.all(waiting)).toEqual(keys.map(() => undefined));
      expect(dict.nodeStates().map((state) => state.name)).toEqual(['node0', 'node1']);
    },
  );

  it('unchanged nodes keep their connection; a new capacity re-weights', TIMEOUT, async () => {
    const tag = `keep-${process.pid}`;
    const dict = fixture.dict<string>({ nodes: nodesOf(3, tag) });
    const events = collect(dict);
    await dict.connect();
    const ids = async () =>
      (await clientsNamed(fixture.serverOf('node0'), tag)).map(
        (line) => /\bid=(\d+)/.exec(line)![1],
      );
    const before = await ids();
    expect(before.length).toBeGreaterThan(0);
    const nodes = nodesOf(3, tag) as Record<string, RingNodeConfig>;
    nodes.node0.capacity = 3;
    await dict.setNodes(nodes);
    expect(dict.totalHash.capacityOf('node0')).toBe(3);
    expect(events).toEqual([]);
    expect(await ids()).toEqual(before);
    // node0 now takes about 3/5 of the keys.
    let owned = 0;
    for (let i = 0; i < 10_000; i++)
      if (dict.aliveHash.locate(dict.getEntry(i)) === 'node0') owned++;
    expect(owned / 10_000).toBeGreaterThan(0.55);
    expect(owned / 10_000).toBeLessThan(0.65);
    await dict.set('k', 'v');
    expect(await dict.get('k')).toBe('v');
  });

  it('bad input is refused with a RingConfigError and changes nothing', TIMEOUT, async () => {
    const tag = `bad-${process.pid}`;
    const dict = fixture.dict<string>({ nodes: nodesOf(3, tag) });
    await dict.connect();
    await dict.set('k', 'v');
    const total = dict.totalHash;
    const servers = fixture.fleet.servers;
    const bad: unknown[] = [
      {},
      null,
      { node0: { capacity: -1, connection: servers[0].url } },
      { node0: { capacity: 1, connection: servers[0].url, url: 'x' } },
      // Two nodes on one server.
      { node0: servers[0].url, node1: servers[0].url },
      { node0: 'redis://' },
    ];
    for (const nodes of bad) {
      await expect(dict.setNodes(nodes as RingNodesConfig)).rejects.toBeInstanceOf(RingConfigError);
    }
    expect(dict.totalHash).toBe(total);
    expect(dict.nodeStates().map((s) => [s.name, s.alive])).toEqual([
      ['node0', true],
      ['node1', true],
      ['node2', true],
    ]);
    expect(await dict.get('k')).toBe('v');
    // A later good change still goes through.
    await dict.setNodes(nodesOf(4, tag));
    expect(dict.totalHash.size).toBe(4);
  });

  it('concurrent calls run in turn: the last one wins, events in order', TIMEOUT, async () => {
    const tag = `turns-${process.pid}`;
    const dict = fixture.dict<string>({ nodes: nodesOf(2, tag) });
    const events = collect(dict);
    await dict.connect();
    const { node0: _zero, ...rest } = nodesOf(4, tag);
    await Promise.all([
      dict.setNodes(nodesOf(3, tag)),
      dict.setNodes(nodesOf(4, tag)),
      dict.setNodes(rest),
    ]);
    expect(dict.totalHash.nodes).toEqual(['node1', 'node2', 'node3']);
    expect(events.map((e) => `${e.type} ${e.node}`)).toEqual([
      'added node2',
      'added node3',
      'removed node0',
    ]);
  });

  // The scans took the node names as they began: a node removed before its turn was a TypeError.
  it(
    'clear(), size() and keys() answer while setNodes removes a node not scanned yet',
    TIMEOUT,
    async () => {
      const tag = `scans-${process.pid}`;
      const dict = fixture.dict<number>({ prefix: 'scan:', nodes: nodesOf(4, tag) });
      const entries = Array.from({ length: 8000 }, (_, i): [string, number] => [`k${i}`, i]);
      const listAll = async () => {
        let count = 0;
        for await (const _key of dict.keys()) count++;
        return count;
      };
      for (const scan of [() => dict.size(), listAll, () => dict.clear()]) {
        await dict.setNodes(nodesOf(4, tag));
        await dict.setMany(entries);
        const [answer] = await Promise.all([scan(), dict.setNodes(nodesOf(3, tag))]);
        expect(answer).toBeTypeOf('number');
      }
      expect(
        (await dict.getMany(entries.map(([key]) => key))).filter((v) => v !== undefined),
      ).toEqual([]);
    },
  );
});

describe('warm-up after a change', () => {
  /** Four warm nodes with `count` keys, then a fifth: the share of keys read back. */
  async function hitsAfterGrowth(warmUpWindow: number, count: number): Promise<number> {
    const nodes = ringNodes(fixture.fleet.servers);
    const { node4: _fifth, ...four } = nodes;
    const dict = fixture.dict<number>({ nodes: four, warmUpWindow });
    await dict.setMany(Array.from({ length: count }, (_, i) => [`k${i}`, i] as const));
    await dict.setNodes(nodes);
    let hits = 0;
    for (let i = 0; i < count; i++) if ((await dict.get(`k${i}`)) === i) hits++;
    return hits / count;
  }

  it(
    '≥ 98 % of existing keys still hit after a 5th node joins 4 (cold: about 80 %)',
    TIMEOUT,
    async () => {
      expect(await hitsAfterGrowth(60_000, 4_000)).toBeGreaterThanOrEqual(0.98);
      await redisCommand(fixture.fleet.servers[4].port, 'FLUSHALL');
      const cold = await hitsAfterGrowth(0, 4_000);
      expect(cold).toBeGreaterThan(0.7);
      expect(cold).toBeLessThan(0.9);
    },
  );

  it(
    'deletes and overwrites during the window never come back; former copies go at its end',
    TIMEOUT,
    async () => {
      const nodes = ringNodes(fixture.fleet.servers);
      const { node4: _fifth, ...four } = nodes;
      const dict = fixture.dict<string>({ nodes: four, warmUpWindow: 1_000 });
      const before = dict.totalHash;
      const keys = Array.from({ length: 400 }, (_, i) => `k${i}`);
      await dict.setMany(keys.map((key) => [key, 'old'] as const));
      await dict.setNodes(nodes);
      const moved = keys.filter((key) => dict.totalHash.locate(dict.getEntry(key)) === 'node4');
      expect(moved.length).toBeGreaterThan(40);
      const [deleted, overwritten, batchDeleted, read] = [0, 1, 2, 3].map((part) =>
        moved.filter((_, i) => i % 4 === part),
      );
      for (const key of deleted) expect(await dict.delete(key)).toBe(true);
      for (const key of overwritten) await dict.set(key, 'new');
      await dict.deleteMany(batchDeleted);
      // Reads race the writes of other keys: the copies must follow the writes, not undo them.
      await Promise.all([
        ...deleted.map(async (key) => expect(await dict.get(key)).toBeUndefined()),
        ...overwritten.map(async (key) => expect(await dict.get(key)).toBe('new')),
        ...batchDeleted.map(async (key) => expect(await dict.get(key)).toBeUndefined()),
        ...read.map(async (key) => expect(await dict.get(key)).toBe('old')),
      ]);
      expect(await dict.has(deleted[0])).toBe(false);
      // The window ends: the former owners' copies of moved keys are deleted.
      const formerOf = (key: string) => before.locate(dict.getEntry(key))!;
      await until(async () => {
        for (const key of read) {
          const server = fixture.serverOf(formerOf(key));
          if ((await redisCommand(server.port, 'EXISTS', dict.getEntry(key))) !== '0') return false;
        }
        return true;
      }, 5_000);
      for (const key of read) expect(await dict.get(key)).toBe('old');
      for (const key of deleted) expect(await dict.get(key)).toBeUndefined();
    },
  );
});

describe('warm-up while the new owner is out', () => {
  it(
    'a write that falls back to the former owner is kept there, not dropped as a copy',
    TIMEOUT,
    async () => {
      const nodes = ringNodes(fixture.fleet.servers);
      const { node4: _fifth, ...four } = nodes;
      const dict = fixture.dict<string>({
        nodes: four,
        heartbeatInterval: 50,
        commandTimeout: 300,
        retryRatio: 0,
      });
      const events = collect(dict);
      const keys = Array.from({ length: 300 }, (_, i) => `k${i}`);
      await dict.setMany(keys.map((key) => [key, 'old'] as const));
      await dict.setNodes(nodes);
      const moved = keys.filter((key) => dict.totalHash.locate(dict.getEntry(key)) === 'node4');
      const server = fixture.serverOf('node4');
      server.hang();
      try {
        await dict.get(moved[0]);
        await until(() => events.some((e) => e.type === 'ejected' && e.node === 'node4'), 3_000);
        for (const key of moved) await dict.set(key, 'new');
        for (const key of moved) expect(await dict.get(key)).toBe('new');
      } finally {
        server.resume();
      }
    },
  );
});

describe('a node removed and added back', () => {
  it('serves nothing older than the writes made while it was out', TIMEOUT, async () => {
    const nodes = ringNodes(fixture.fleet.servers.slice(0, 3));
    const { node2: _third, ...two } = nodes;
    const dict = fixture.dict<string>({ nodes, warmUpWindow: 0 });
    const keys = Array.from({ length: 300 }, (_, i) => `k${i}`);
    await dict.setMany(keys.map((key) => [key, 'v1'] as const));
    await dict.setNodes(two);
    await dict.setMany(keys.map((key) => [key, 'v2'] as const));
    await dict.setNodes(nodes);
    for (const key of keys) expect([undefined, 'v2']).toContain(await dict.get(key));
    // And the other way round: written while it was a member, then it leaves again.
    await dict.setMany(keys.map((key) => [key, 'v3'] as const));
    // The former owners' copies (v2) were swept when the (empty) window ended, before this.
    await dict.setNodes(two);
    for (const key of keys) expect([undefined, 'v3']).toContain(await dict.get(key));
  });
});

describe('hinted handoff across a membership change', () => {
  /**
   * node2 is ejected (hung) while v2 is written to half the keys (its keys go to the heirs,
   * with hints), then removed while still out, v3 written to all, then added back: whether it
   * answers by then or only later, it must serve nothing older than v3.
   */
  async function scene(resumeBeforeAdding: boolean): Promise<(string | undefined)[]> {
    const nodes = ringNodes(fixture.fleet.servers.slice(0, 3));
    const { node2: _third, ...two } = nodes;
    const dict = fixture.dict<string>({
      nodes,
      warmUpWindow: 0,
      heartbeatInterval: 50,
      commandTimeout: 300,
      retryRatio: 0,
    });
    const events = collect(dict);
    const keys = Array.from({ length: 300 }, (_, i) => `k${i}`);
    await dict.setMany(keys.map((key) => [key, 'v1'] as const));
    const server = fixture.serverOf('node2');
    server.hang();
    try {
      const owned = keys.find((key) => dict.totalHash.locate(dict.getEntry(key)) === 'node2')!;
      await dict.get(owned);
      await until(() => events.some((e) => e.type === 'ejected' && e.node === 'node2'), 3_000);
      // Half the keys while it is out and a member (hinted), all of them once it is removed.
      for (const key of keys.slice(0, 150)) await dict.set(key, 'v2');
      await dict.setNodes(two);
      for (const key of keys) await dict.set(key, 'v3');
      if (resumeBeforeAdding) server.resume();
      await dict.setNodes(nodes);
      if (!resumeBeforeAdding) {
        expect(dict.nodeStates()[2]).toMatchObject({ name: 'node2', alive: false });
        server.resume();
      }
    } finally {
      if (server.isHung) server.resume();
    }
    await until(() => dict.aliveHash.size === 3, 5_000);
    return Promise.all(keys.map((key) => dict.get(key)));
  }

  it('added back answering: its entries are cleared before it serves', TIMEOUT, async () => {
    const values = await scene(true);
    expect(values.filter((v) => v !== undefined && v !== 'v3')).toEqual([]);
    expect(values.filter((v) => v === 'v3').length).toBeGreaterThan(150);
  });

  it('added back while still hung: cleared when the heartbeat brings it in', TIMEOUT, async () => {
    const values = await scene(false);
    expect(values.filter((v) => v !== undefined && v !== 'v3')).toEqual([]);
    expect(values.filter((v) => v === 'v3').length).toBeGreaterThan(150);
  });
});
