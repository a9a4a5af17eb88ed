import { describe, expect, it } from 'vitest';
import {
  RingClusterUnavailableError,
  RingDict,
  type RingDictOptions,
  type RingEvent,
} from '../../lib/index.js';
import { redisCommand, ringNodes, type RedisServer } from '../helpers/redis-servers.js';
import { useRingFleet } from '../helpers/ring-fleet.js';
import { until } from '../helpers/wait.js';

/**
 * Failure paths of RingDict that the other suites do not reach: a second total outage, stale
 * copies left on non-owners, a connection killed under a healthy node, user hooks that throw,
 * the empty-prefix guard of the overflow policy, copies left on an earlier heir, and the
 * handoff's passes for writes that arrive while it runs.
 */

const COMMAND_TIMEOUT = 300;
const HEARTBEAT = 50;
/** How long a test waits for something the heartbeat or a reconnect does by itself. */
const SETTLE = 3_000;
const TEST_TIMEOUT = { timeout: 10_000 };

const fixture = useRingFleet(3);

function makeDict<V = unknown, F = never>(
  options: Partial<RingDictOptions<V, F>> = {},
): RingDict<V, F> {
  const dict = new RingDict<V, F>({
    nodes: ringNodes(fixture.fleet.servers),
    heartbeatInterval: HEARTBEAT,
    commandTimeout: COMMAND_TIMEOUT,
    retryRatio: 0,
    ...options,
  });
  fixture.track(dict);
  return dict;
}

/** The fleet as ring nodes whose connections carry `tag` as their CLIENT name. */
function taggedNodes(tag: string): RingDictOptions['nodes'] {
  return Object.fromEntries(
    fixture.fleet.servers.map((server, i) => [
      `node${i}`,
      { capacity: 1, connection: { host: '127.0.0.1', port: server.port, connectionName: tag } },
    ]),
  );
}

function serverOf(node: string): RedisServer {
  return fixture.fleet.servers[Number(node.replace('node', ''))];
}

/**
 * Keys owned by `owner` when every node is alive and, with `owner` out, by `heir` (any heir
 * when not given).
 */
function keysOwnedBy(
  dict: RingDict<unknown, unknown>,
  owner: string,
  count: number,
  options: { heir?: string; tag?: string } = {},
): string[] {
  const { heir, tag = 'k' } = options;
  const keys: string[] = [];
  for (let i = 0; keys.length < count; i++) {
    const entry = dict.getEntry(`${tag}${i}`);
    if (dict.totalHash.locate(entry) !== owner) continue;
    if (heir !== undefined && dict.totalHash.without(owner).locate(entry) !== heir) continue;
    keys.push(`${tag}${i}`);
  }
  return keys;
}

function collect(dict: RingDict<unknown, unknown>): RingEvent[] {
  const events: RingEvent[] = [];
  dict.events$.subscribe((event) => events.push(event));
  return events;
}

function saw(events: readonly RingEvent[], type: RingEvent['type'], node?: string): number {
  return events.filter((e) => e.type === type && (node === undefined || e.node === node)).length;
}

/**
 * The scene of the overflow tests: a dict whose handoff log holds one entry; `remembered`
 * and `forgotten`, owned by node0 with node1 as heir (with node0 out, the first write fills
 * the log and the second is past it); `onNode1`, owned by node1.
 */
function overflowScene(prefix: string) {
  const dict = makeDict<string>({ prefix, handoffLimit: 1 });
  const events = collect(dict);
  const [remembered, forgotten] = keysOwnedBy(dict, 'node0', 2, { heir: 'node1' });
  const [onNode1] = keysOwnedBy(dict, 'node1', 1, { tag: 'n1-' });
  return { dict, events, remembered, forgotten, onNode1 };
}

/** Kills `node` (its data goes with it) and waits until the dict has ejected it once more. */
async function killUntilEjected(events: readonly RingEvent[], node: string): Promise<void> {
  const before = saw(events, 'ejected', node);
  await serverOf(node).kill();
  await until(() => saw(events, 'ejected', node) === before + 1, SETTLE);
}

/**
 * Hangs `node` (it keeps its data) and reads `key`, which it owns: the read times out and
 * ejects it once more.
 */
async function hangUntilEjected(
  dict: RingDict<string>,
  events: readonly RingEvent[],
  node: string,
  key: string,
): Promise<void> {
  const before = saw(events, 'ejected', node);
  serverOf(node).hang();
  await dict.get(key);
  await until(() => saw(events, 'ejected', node) === before + 1, SETTLE);
}

/** CLIENT LIST lines of the connections named `tag` on `server`. */
async function clientsNamed(server: RedisServer, tag: string): Promise<string[]> {
  const list = await redisCommand(server.port, 'CLIENT', 'LIST');
  return list.split('\n').filter((line) => line.includes(` name=${tag} `));
}

/** Waits until a connection named `tag` on `server` is held by CLIENT PAUSE on `command`. */
async function pausedOn(server: RedisServer, tag: string, command: string): Promise<void> {
  await until(
    async () =>
      (await clientsNamed(server, tag)).some(
        (line) => / flags=\w*b/.test(line) && line.includes(` cmd=${command} `),
      ),
    SETTLE,
  );
}

describe('unavailable after a recovery', () => {
  it(
    'a second total outage after a node came back fires unavailable again',
    TEST_TIMEOUT,
    async () => {
      const dict = makeDict();
      const events = collect(dict);
      await dict.connect();

      await Promise.all(fixture.fleet.servers.map((server) => server.kill()));
      await until(() => saw(events, 'unavailable') === 1, SETTLE);
      await expect(dict.get('x')).rejects.toBeInstanceOf(RingClusterUnavailableError);

      await serverOf('node0').restart();
      await until(() => saw(events, 'rediscovered', 'node0') === 1, SETTLE);
      await dict.set('x', 'back');
      expect(await dict.get('x')).toBe('back');

      await serverOf('node0').kill();
      await until(() => !dict.nodeStates()[0].alive, SETTLE);
      await expect(dict.get('x')).rejects.toBeInstanceOf(RingClusterUnavailableError);
      await expect(dict.set('x', 1)).rejects.toBeInstanceOf(RingClusterUnavailableError);
      // Once per transition to "no node alive": one for each outage, not one per call.
      expect(saw(events, 'unavailable')).toBe(2);
      expect(events.map((e) => e.type)).toEqual([
        'ejected',
        'ejected',
        'ejected',
        'unavailable',
        'rediscovered',
        'ejected',
        'unavailable',
      ]);
    },
  );
});

describe('a request that every node failed while some came back', () => {
  it(
    'says every node failed this request, not that no node is alive, and fires no unavailable',
    TEST_TIMEOUT,
    async () => {
      const dict = makeDict({ heartbeatInterval: 20 });
      const events = collect(dict);
      await dict.connect();
      for (const server of fixture.fleet.servers) server.hang();
      // The first node to time out answers again at once, and rejoins while the request
      // is still waiting on the others.
      const first = dict.events$.subscribe((event) => {
        if (event.type !== 'ejected') return;
        first.unsubscribe();
        serverOf(event.node!).resume();
      });
      const error = await dict.get('x').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(RingClusterUnavailableError);
      expect((error as Error).message).toMatch(
        /^RingDict "default": every node failed this request \(node0: .*no reply within 300 ms/,
      );
      expect(dict.aliveHash.size).toBe(1);
      expect(saw(events, 'unavailable')).toBe(0);
    },
  );
});

describe('unavailable without a request', () => {
  it(
    'every node killed: the ejections alone fire unavailable, no command needed',
    TEST_TIMEOUT,
    async () => {
      const dict = makeDict();
      const events = collect(dict);
      await dict.connect();
      expect(events).toEqual([]);

      // No request from here on: each lost connection is retried once, refused, ejected.
      await Promise.all(fixture.fleet.servers.map((server) => server.kill()));
      await until(() => saw(events, 'unavailable') === 1, SETTLE);
      expect(events.map((e) => e.type)).toEqual(['ejected', 'ejected', 'ejected', 'unavailable']);
      expect(events[3]).toMatchObject({ type: 'unavailable', at: expect.any(Date) });
      expect(events[3].node).toBeUndefined();
      expect(dict.aliveHash.size).toBe(0);
      expect(dict.nodeStates().map((s) => s.alive)).toEqual([false, false, false]);
    },
  );
});

describe('size() and keys() with stale copies', () => {
  it(
    "count only the owner's copy when a non-owner still holds one (handoffLimit 0)",
    TEST_TIMEOUT,
    async () => {
      const dict = makeDict<string>({ prefix: 'own:', handoffLimit: 0 });
      const events = collect(dict);
      const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
      for (const key of keys) await dict.set(key, 'v1');
      const [stale] = keysOwnedBy(dict, 'node0', 1);
      expect(keys).toContain(stale);

      serverOf('node0').hang();
      // Ejected by a read: a write sent to the hung node0 would still land there once resumed.
      await dict.get(stale);
      await dict.set(stale, 'v2'); // on node0's heir
      const heir = dict.aliveHash.locate(dict.getEntry(stale))!;
      expect(heir).not.toBe('node0');
      serverOf('node0').resume();
      // No handoff: node0 rejoins with its own v1, the heir keeps its v2 copy.
      await until(() => saw(events, 'rediscovered', 'node0') === 1, SETTLE);
      expect(events.find((e) => e.type === 'rediscovered')?.handoff).toBeUndefined();
      const entry = dict.getEntry(stale);
      expect(await redisCommand(serverOf('node0').port, 'GET', entry)).toBe('"v1"');
      expect(await redisCommand(serverOf(heir).port, 'GET', entry)).toBe('"v2"');

      expect(await dict.size()).toBe(keys.length);
      const listed: string[] = [];
      for await (const key of dict.keys()) listed.push(key);
      expect(listed.sort()).toEqual([...keys].sort());
      const entries: [string, string][] = [];
      for await (const pair of dict.entries()) entries.push(pair);
      // Once, with the owner's value, as get() reads it.
      expect(entries.filter(([key]) => key === stale)).toEqual([[stale, 'v1']]);
      expect(await dict.get(stale)).toBe('v1');
      expect(entries).toHaveLength(keys.length);
    },
  );
});

describe('a connection lost under a healthy node', () => {
  it(
    'CLIENT KILL of the ring connection: it reconnects by itself, no ejection, requests go on',
    TEST_TIMEOUT,
    async () => {
      const tag = `lost-${process.pid}`;
      const dict = makeDict<string>({ nodes: taggedNodes(tag) });
      const events = collect(dict);
      await dict.connect();
      const [key] = keysOwnedBy(dict, 'node1', 1);
      await dict.set(key, 'before');
      const server = serverOf('node1');
      const idOf = (line: string) => /(?:^|\s)id=(\d+)/.exec(line)![1];
      const before = (await clientsNamed(server, tag)).map(idOf);
      expect(before).toHaveLength(1);

      expect(await redisCommand(server.port, 'CLIENT', 'KILL', 'ID', before[0])).toBe('1');
      // Without any request, a new connection replaces the killed one: one, not a storm.
      await until(async () => {
        const ids = (await clientsNamed(server, tag)).map(idOf);
        return ids.length === 1 && ids[0] !== before[0];
      }, SETTLE);

      expect(await dict.get(key)).toBe('before');
      await dict.set(key, 'after');
      expect(await redisCommand(server.port, 'GET', dict.getEntry(key))).toBe('"after"');
      expect(events).toEqual([]);
      expect(dict.aliveHash.size).toBe(3);
      expect(dict.nodeStates()[1]).toMatchObject({ name: 'node1', alive: true, ejections: 0 });
      expect(await clientsNamed(server, tag)).toHaveLength(1);
    },
  );
});

describe('a throwing onNodeEjected', () => {
  it(
    'the node is still ejected and the request is served by the next node',
    TEST_TIMEOUT,
    async () => {
      const warnings: string[] = [];
      const onWarning = (warning: Error) => warnings.push(warning.message);
      process.on('warning', onWarning);
      try {
        const called: string[] = [];
        const dict = makeDict<string>({
          onNodeEjected: (_dict, node) => {
            called.push(node);
            throw new Error(`hook failed for ${node}`);
          },
        });
        const events = collect(dict);
        const [key, other] = keysOwnedBy(dict, 'node1', 2);
        await dict.set(key, 'v1');
        serverOf('node1').hang();

        // Times out on node1: ejected (the hook throws), then answered by the heir.
        expect(await dict.get(key)).toBeUndefined();
        expect(called).toEqual(['node1']);
        expect(saw(events, 'ejected', 'node1')).toBe(1);
        expect(dict.aliveHash.nodes).toEqual(['node0', 'node2']);
        expect(dict.nodeStates()[1]).toMatchObject({ alive: false, ejections: 1 });
        // Routing goes on: node1's keys are written and read on the heir.
        await dict.set(other, 'on the heir');
        expect(await dict.get(other)).toBe('on the heir');
        const heir = dict.aliveHash.locate(dict.getEntry(other))!;
        expect(await redisCommand(serverOf(heir).port, 'GET', dict.getEntry(other))).toBe(
          '"on the heir"',
        );
        // The hook's error is reported, not swallowed silently.
        await until(() => warnings.some((w) => w.includes('hook failed for node1')), SETTLE);
        expect(warnings.find((w) => w.includes('hook failed'))).toMatch(
          /ring-redis: a node callback threw: hook failed for node1/,
        );
      } finally {
        process.off('warning', onWarning);
      }
    },
  );
});

describe("the 'clear' overflow policy and an empty prefix", () => {
  it(
    'an overflowed handoff with no prefix trusts TTLs instead of wiping the whole node',
    TEST_TIMEOUT,
    async () => {
      // handoffOverflow 'clear' is the default; given here to show it is what is refused.
      const dict = makeDict<string>({ handoffLimit: 1, handoffOverflow: 'clear' });
      const events = collect(dict);
      const [first, second, untouched] = keysOwnedBy(dict, 'node2', 3);
      await dict.set(untouched, 'kept');
      const port = serverOf('node2').port;
      await redisCommand(port, 'SET', 'foreign:key', 'not ours');

      serverOf('node2').hang();
      await dict.set(first, 'new'); // times out on node2: ejected, remembered for it
      await dict.set(second, 'new'); // past handoffLimit: overflowed
      serverOf('node2').resume();
      await until(() => saw(events, 'rediscovered', 'node2') === 1, SETTLE);

      // Another application's key and this dict's untouched entry are still on node2.
      expect(await redisCommand(port, 'GET', 'foreign:key')).toBe('not ours');
      expect(await redisCommand(port, 'GET', untouched)).toBe('"kept"');
      expect(await dict.get(untouched)).toBe('kept');
      expect(await dict.get(first)).toBe('new');
      const { handoff } = events.find((e) => e.type === 'rediscovered')!;
      expect(handoff).toMatchObject({ entries: 1, overflowed: true, policy: 'ttl' });
      expect(handoff?.cleared).toBeUndefined();
    },
  );
});

describe("the 'clear' overflow policy and the copies on other nodes", () => {
  it(
    "deletes the returning node's entries that other nodes took but the log did not remember",
    TEST_TIMEOUT,
    async () => {
      const { dict, events, remembered, forgotten } = overflowScene('ovf:');
      const [theirs] = keysOwnedBy(dict, 'node1', 1, { tag: 'n1-' });
      await dict.set(theirs, 'node1 owns it');
      const node1 = serverOf('node1').port;
      await redisCommand(node1, 'SET', 'foreign:key', 'not ours');

      await killUntilEjected(events, 'node0');
      await dict.set(remembered, 'v1');
      await dict.set(forgotten, 'v1'); // past handoffLimit: on node1, not remembered
      await serverOf('node0').restart();
      await until(() => saw(events, 'rediscovered', 'node0') === 1, SETTLE);
      expect(events.find((e) => e.type === 'rediscovered')?.handoff).toMatchObject({
        overflowed: true,
        policy: 'clear',
      });
      expect(await redisCommand(node1, 'EXISTS', dict.getEntry(forgotten))).toBe('0');
      // The remembered write is handed back, not cleared with the rest.
      expect(await dict.get(remembered)).toBe('v1');
      expect(await dict.get(forgotten)).toBeUndefined();
      // node1's own entry and another application's key are left alone.
      expect(await dict.get(theirs)).toBe('node1 owns it');
      expect(await redisCommand(node1, 'GET', 'foreign:key')).toBe('not ours');

      await dict.set(forgotten, 'v2'); // on node0
      await serverOf('node0').kill();
      await until(() => saw(events, 'ejected', 'node0') === 2, SETTLE);
      // Read on node1 again: a miss, never the v1 it took during the first outage.
      expect(await dict.get(forgotten)).toBeUndefined();
      expect(await dict.get(remembered)).toBeUndefined();
    },
  );
});

describe("the 'clear' overflow policy with another node hung", () => {
  it(
    'ejects the hung node, not the returning one, and clears the hung one when it returns',
    TEST_TIMEOUT,
    async () => {
      const dict = makeDict<string>({ prefix: 'ovf2:', handoffLimit: 1 });
      const events = collect(dict);
      const [first, second] = keysOwnedBy(dict, 'node0', 2, { heir: 'node1' });
      const [onNode2] = keysOwnedBy(dict, 'node2', 1, { tag: 'n2-' });
      await dict.set(onNode2, 'node2 owns it');

      await killUntilEjected(events, 'node0');
      await dict.set(first, 'v1');
      await dict.set(second, 'v1'); // past handoffLimit
      serverOf('node2').hang(); // alive still: nothing has asked it anything
      await serverOf('node0').restart();
      await until(() => saw(events, 'rediscovered', 'node0') === 1, SETTLE);
      expect(saw(events, 'ejected', 'node2')).toBe(1);
      expect(dict.nodeStates()[0]).toMatchObject({ name: 'node0', alive: true });
      expect(await dict.get(first)).toBe('v1');

      // node2 may hold copies of node0's entries it cannot tell from its own: cleared on return.
      serverOf('node2').resume();
      await until(() => saw(events, 'rediscovered', 'node2') === 1, SETTLE);
      const back = events.filter((e) => e.type === 'rediscovered' && e.node === 'node2');
      expect(back[0].handoff).toMatchObject({ overflowed: true, policy: 'clear' });
      expect(await dict.get(onNode2)).toBeUndefined();
    },
  );
});

describe("the 'clear' overflow policy with an earlier heir out too", () => {
  it(
    'clears that heir when it returns, so it cannot serve its unremembered copy later',
    TEST_TIMEOUT,
    async () => {
      const { dict, events, remembered, forgotten, onNode1 } = overflowScene('ovf3:');

      await killUntilEjected(events, 'node0');
      await dict.set(remembered, 'v1');
      await dict.set(forgotten, 'v1'); // past handoffLimit: on node1, not remembered
      serverOf('node1').hang(); // keeps its data, unlike a restart
      expect(await dict.get(onNode1)).toBeUndefined(); // times out: node1 ejected
      await serverOf('node0').restart();
      await until(() => saw(events, 'rediscovered', 'node0') === 1, SETTLE);
      await dict.set(forgotten, 'v2'); // on node0

      serverOf('node1').resume();
      await until(() => saw(events, 'rediscovered', 'node1') === 1, SETTLE);
      const back = events.find((e) => e.type === 'rediscovered' && e.node === 'node1');
      expect(back?.handoff).toMatchObject({ overflowed: true, policy: 'clear' });
      await serverOf('node0').kill();
      await until(() => saw(events, 'ejected', 'node0') === 2, SETTLE);
      expect(dict.aliveHash.locate(dict.getEntry(forgotten))).toBe('node1');
      // Read on node1 again: a miss, never the v1 it took during node0's first outage.
      expect(await dict.get(forgotten)).toBeUndefined();
    },
  );
});

describe("the 'clear' overflow policy when the heir returns before the owner", () => {
  it(
    'the heir that took forgotten writes is cleared on its return: no stale copy while the owner is out',
    TEST_TIMEOUT,
    async () => {
      const { dict, events, remembered, forgotten, onNode1 } = overflowScene('ovf5:');

      await killUntilEjected(events, 'node0');
      await dict.set(remembered, 'v1');
      await dict.set(forgotten, 'v1'); // past handoffLimit: on node1, not remembered
      serverOf('node1').hang();
      expect(await dict.get(onNode1)).toBeUndefined(); // times out: node1 ejected
      await dict.set(forgotten, 'v2'); // on node2 now
      serverOf('node1').resume();
      await until(() => saw(events, 'rediscovered', 'node1') === 1, SETTLE);
      // node0 is still out: the key is read on node1 again, which must not say v1.
      expect(dict.aliveHash.locate(dict.getEntry(forgotten))).toBe('node1');
      expect(await dict.get(forgotten)).toBeUndefined();
    },
  );
});

describe("the 'clear' overflow policy while the owner stays out", () => {
  it(
    'a heir cleared once keeps what it took since at its next returns',
    { timeout: 20_000 },
    async () => {
      const { dict, events, remembered, forgotten, onNode1 } = overflowScene('ovf6:');
      await killUntilEjected(events, 'node0'); // for the whole test
      await dict.set(remembered, 'v1');
      await dict.set(forgotten, 'v1'); // past handoffLimit: on node1, not remembered
      for (let round = 1; round <= 3; round++) {
        await hangUntilEjected(dict, events, 'node1', onNode1);
        serverOf('node1').resume();
        await until(() => saw(events, 'rediscovered', 'node1') === round, SETTLE);
        const back = events.filter((e) => e.type === 'rediscovered' && e.node === 'node1');
        // Cleared the first time only: nothing was spilled to it since.
        expect(back[round - 1].handoff?.overflowed).toBe(round === 1);
        if (round > 1) expect(await dict.get(onNode1)).toBe(`keep-${round - 1}`);
        await dict.set(onNode1, `keep-${round}`);
      }
    },
  );

  it(
    'a spill recorded after its heir was ejected by another request still clears that heir',
    TEST_TIMEOUT,
    async () => {
      const { dict, events, remembered, forgotten, onNode1 } = overflowScene('ovf7:');
      await dict.connect();
      await killUntilEjected(events, 'node0');
      await dict.set(remembered, 'v1'); // fills the log
      serverOf('node1').hang();
      const read = dict.get(onNode1); // first in line: its timeout ejects node1
      await new Promise((resolve) => setTimeout(resolve, 100));
      // Buffered on the hung node1 (which runs it when resumed), failed over to node2.
      const write = dict.set(forgotten, 'v1');
      await read;
      await write;
      await dict.set(forgotten, 'v2'); // node2
      serverOf('node1').resume();
      await until(() => saw(events, 'rediscovered', 'node1') === 1, SETTLE);
      expect(dict.aliveHash.locate(dict.getEntry(forgotten))).toBe('node1');
      expect(await dict.get(forgotten)).toBeUndefined();
    },
  );

  it(
    "a copy spilled to a second heir is not served at the first heir's next outage",
    TEST_TIMEOUT,
    async () => {
      const { dict, events, remembered, forgotten, onNode1 } = overflowScene('ovf8:');
      await killUntilEjected(events, 'node0');
      await dict.set(remembered, 'v1');
      await dict.set(forgotten, 'v1'); // node1, not remembered
      await hangUntilEjected(dict, events, 'node1', onNode1);
      await dict.set(forgotten, 'v2'); // node2, not remembered
      serverOf('node1').resume();
      await until(() => saw(events, 'rediscovered', 'node1') === 1, SETTLE);
      await dict.set(forgotten, 'v3'); // node1 again: the newest value
      await hangUntilEjected(dict, events, 'node1', onNode1);
      expect(dict.aliveHash.locate(dict.getEntry(forgotten))).toBe('node2');
      expect(await dict.get(forgotten)).toBeUndefined();
    },
  );
});

describe('a heir that took unremembered writes, under the ttl policy', () => {
  it.each([
    ["handoffOverflow 'ttl'", { prefix: 'ovf9:', handoffOverflow: 'ttl' as const }],
    ["no prefix (where 'clear' falls back to 'ttl')", { prefix: '' }],
  ])('%s: rejoins while the owner stays out', TEST_TIMEOUT, async (_what, options) => {
    const dict = makeDict<string>({ ...options, handoffLimit: 1 });
    const events = collect(dict);
    const [remembered, forgotten] = keysOwnedBy(dict, 'node0', 2, { heir: 'node1', tag: 'ttl-' });
    const [onNode1] = keysOwnedBy(dict, 'node1', 1, { tag: 'ttl-n1-' });
    await killUntilEjected(events, 'node0');
    await dict.set(remembered, 'v1');
    await dict.set(forgotten, 'v1'); // past handoffLimit: on node1, not remembered
    serverOf('node1').hang();
    await dict.get(onNode1); // times out: node1 ejected
    serverOf('node1').resume();
    await until(() => saw(events, 'rediscovered', 'node1') === 1, SETTLE);
    expect(events.find((e) => e.type === 'rediscovered')?.handoff).toMatchObject({
      overflowed: true,
      policy: 'ttl',
    });
  });
});

describe("the 'clear' overflow policy and a node back that took nothing unremembered", () => {
  it.each([
    ['dead', 'ovf10:'],
    // Hung: each heartbeat's revival waits up to commandTimeout on it.
    ['hung', 'ovf11:'],
  ])(
    'still deletes the copies of the owner, %s and still out, that now route to it',
    TEST_TIMEOUT,
    async (how, prefix) => {
      const { dict, events, remembered, forgotten, onNode1 } = overflowScene(prefix);
      if (how === 'dead') await killUntilEjected(events, 'node0');
      else await hangUntilEjected(dict, events, 'node0', remembered);
      await dict.set(remembered, 'v1'); // fills the log; node1 holds nothing unremembered
      await hangUntilEjected(dict, events, 'node1', onNode1);
      await dict.set(forgotten, 'v1'); // node2, not remembered
      serverOf('node1').resume();
      await until(() => saw(events, 'rediscovered', 'node1') === 1, SETTLE);
      expect(await dict.get(forgotten)).toBeUndefined();
      await dict.set(forgotten, 'v2'); // node1
      await hangUntilEjected(dict, events, 'node1', onNode1);
      // Read on node2 again: a miss, never the v1 written there before.
      expect(dict.aliveHash.locate(dict.getEntry(forgotten))).toBe('node2');
      expect(await dict.get(forgotten)).toBeUndefined();
    },
  );
});

describe("the 'clear' overflow policy with two nodes back together", () => {
  it(
    'each hands back what its log remembered: neither clears the other a second time',
    TEST_TIMEOUT,
    async () => {
      const dict = makeDict<string>({ prefix: 'ovf4:', handoffLimit: 1 });
      const events = collect(dict);
      await dict.connect();
      await Promise.all([serverOf('node0').kill(), serverOf('node1').kill()]);
      await until(() => saw(events, 'ejected') === 2, SETTLE);
      const forNode0 = keysOwnedBy(dict, 'node0', 3, { tag: 'a' });
      const forNode1 = keysOwnedBy(dict, 'node1', 3, { tag: 'b' });
      // All on node2; past handoffLimit for both owners.
      for (const key of [...forNode0, ...forNode1]) await dict.set(key, 'v');
      await Promise.all([serverOf('node0').restart(), serverOf('node1').restart()]);
      await until(() => saw(events, 'rediscovered') === 2, SETTLE);
      // The first write for each owner was remembered: handed back, not cleared.
      expect(await dict.getMany([forNode0[0], forNode1[0]])).toEqual(['v', 'v']);
      expect(await dict.getMany([...forNode0.slice(1), ...forNode1.slice(1)])).toEqual([
        undefined,
        undefined,
        undefined,
        undefined,
      ]);
    },
  );
});

describe('copies left on an earlier heir', () => {
  it(
    'an earlier heir that is out too deletes its copy before it rejoins',
    TEST_TIMEOUT,
    async () => {
      const dict = makeDict<string>({ prefix: 'heir:' });
      const events = collect(dict);
      const [key] = keysOwnedBy(dict, 'node0', 1, { heir: 'node1' });
      const entry = dict.getEntry(key);

      await killUntilEjected(events, 'node0');
      await dict.set(key, 'v1'); // on node1, for node0
      expect(await redisCommand(serverOf('node1').port, 'GET', entry)).toBe('"v1"');

      serverOf('node1').hang();
      expect(await dict.get(key)).toBeUndefined(); // times out on node1: ejected, still holding v1
      await dict.set(key, 'v2'); // on node2: node1's v1 is stale now
      expect(dict.aliveHash.nodes).toEqual(['node2']);

      serverOf('node1').resume();
      await until(() => saw(events, 'rediscovered', 'node1') === 1, SETTLE);
      // node0 is still out, so the key is read on node1 again: a miss, never the stale v1.
      expect(dict.aliveHash.locate(entry)).toBe('node1');
      expect(await dict.get(key)).toBeUndefined();
      expect(await redisCommand(serverOf('node1').port, 'EXISTS', entry)).toBe('0');
      // The deletion was node1's handoff.
      expect(events.find((e) => e.type === 'rediscovered')?.handoff).toMatchObject({
        entries: 1,
      });

      await serverOf('node0').restart();
      await until(() => saw(events, 'rediscovered', 'node0') === 1, SETTLE);
      expect(await dict.get(key)).toBe('v2');
      expect(await redisCommand(serverOf('node0').port, 'GET', entry)).toBe('"v2"');
      expect(await redisCommand(serverOf('node2').port, 'EXISTS', entry)).toBe('0');
    },
  );

  it(
    'an earlier heir that is alive deletes its copy as soon as a newer write lands elsewhere',
    TEST_TIMEOUT,
    async () => {
      const dict = makeDict<string>({ prefix: 'heir:' });
      const events = collect(dict);
      // node0's key; with node0 out it goes to node1, with node0 and node1 out to node2.
      const [key] = keysOwnedBy(dict, 'node0', 1, { heir: 'node1' });
      const entry = dict.getEntry(key);
      const node2 = serverOf('node2').port;

      await serverOf('node1').kill();
      await serverOf('node0').kill();
      await until(() => dict.aliveHash.size === 1, SETTLE);
      await dict.set(key, 'v1'); // on node2, for node0
      expect(await redisCommand(node2, 'GET', entry)).toBe('"v1"');

      await serverOf('node1').restart();
      await until(() => saw(events, 'rediscovered', 'node1') === 1, SETTLE);
      await dict.set(key, 'v2'); // on node1, for node0: node2's v1 is stale now
      expect(dict.aliveHash.locate(entry)).toBe('node1');
      await until(async () => (await redisCommand(node2, 'EXISTS', entry)) === '0', SETTLE);

      await serverOf('node0').restart();
      await until(() => saw(events, 'rediscovered', 'node0') === 1, SETTLE);
      expect(await dict.get(key)).toBe('v2');
      expect(await redisCommand(serverOf('node0').port, 'GET', entry)).toBe('"v2"');

      // node0 and node1 out again: the key falls to node2, which must not serve v1.
      await Promise.all([serverOf('node0').kill(), serverOf('node1').kill()]);
      await until(() => dict.aliveHash.size === 1, SETTLE);
      expect(await dict.get(key)).toBeUndefined();
    },
  );
});

describe('writes that arrive during a handoff', () => {
  // The handoff takes the hints, copies them back, and takes again what was written
  // meanwhile, three times; what is written after the last pass is deleted on both sides (a
  // miss). CLIENT PAUSE WRITE holds a pass at a write of the ring's, while the test writes.
  it(
    'are handed back by the second and third passes, not lost as misses',
    TEST_TIMEOUT,
    async () => {
      const tag = `passes-${process.pid}`;
      // Long enough for the test to write while a pass waits on a paused server.
      const commandTimeout = 1_500;
      const dict = makeDict<string>({ nodes: taggedNodes(tag), prefix: 'pass:', commandTimeout });
      const events = collect(dict);
      await dict.connect();
      const [beforeKey] = keysOwnedBy(dict, 'node0', 1, { heir: 'node1', tag: 'a' });
      const pass1Keys = keysOwnedBy(dict, 'node0', 3, { heir: 'node2', tag: 'b' });
      const pass2Keys = keysOwnedBy(dict, 'node0', 3, { heir: 'node1', tag: 'c' });
      const [node0, node2] = [serverOf('node0'), serverOf('node2')];

      try {
        // node0 answers reads, holds writes: the write below times out and ejects it, and the
        // heartbeat's revival then waits in the first pass, at its RESTORE on node0.
        await redisCommand(node0.port, 'CLIENT', 'PAUSE', '60000', 'WRITE');
        await dict.set(beforeKey, 'before'); // on node1, for node0
        expect(dict.aliveHash.nodes).toEqual(['node1', 'node2']);
        await pausedOn(node0, tag, 'restore');

        // Written after the first pass took its hints.
        for (const key of pass1Keys) await dict.set(key, `during pass 1: ${key}`); // on node2
        // The second pass copies those from node2 and waits at its DEL there.
        await redisCommand(node2.port, 'CLIENT', 'PAUSE', '60000', 'WRITE');
        await redisCommand(node0.port, 'CLIENT', 'UNPAUSE');
        await pausedOn(node2, tag, 'del');

        // Written after the second pass took its hints.
        for (const key of pass2Keys) await dict.set(key, `during pass 2: ${key}`); // on node1
        await redisCommand(node2.port, 'CLIENT', 'UNPAUSE');
        await until(() => saw(events, 'rediscovered', 'node0') === 1, SETTLE);
      } finally {
        await redisCommand(node0.port, 'CLIENT', 'UNPAUSE');
        await redisCommand(node2.port, 'CLIENT', 'UNPAUSE');
      }

      expect(await dict.get(beforeKey)).toBe('before');
      for (const key of pass1Keys) expect(await dict.get(key)).toBe(`during pass 1: ${key}`);
      for (const key of pass2Keys) expect(await dict.get(key)).toBe(`during pass 2: ${key}`);
      expect(events.find((e) => e.type === 'rediscovered')?.handoff).toEqual({
        entries: 1 + pass1Keys.length + pass2Keys.length,
        overflowed: false,
      });
      // On node0 itself, and nowhere else.
      for (const key of [beforeKey, ...pass1Keys, ...pass2Keys]) {
        const entry = dict.getEntry(key);
        expect(await redisCommand(node0.port, 'EXISTS', entry)).toBe('1');
        expect(await redisCommand(serverOf('node1').port, 'EXISTS', entry)).toBe('0');
        expect(await redisCommand(node2.port, 'EXISTS', entry)).toBe('0');
      }
    },
  );
});

describe("the 'clear' overflow policy and a reply error on another node", () => {
  it(
    'keeps the returning node out, names the node that refused, ejects neither, and takes it back once that node answers',
    TEST_TIMEOUT,
    async () => {
      const { dict, events, remembered, forgotten } = overflowScene('ovf-acl:');
      const [onNode2] = keysOwnedBy(dict, 'node2', 1, { tag: 'n2-' });
      await dict.set(onNode2, 'node2 owns it');
      const node2 = serverOf('node2').port;

      await killUntilEjected(events, 'node0');
      await dict.set(remembered, 'v1');
      await dict.set(forgotten, 'v1'); // past handoffLimit: on node1, not remembered
      // node2 answers, but refuses the clean-up's SCAN with a reply error.
      await redisCommand(node2, 'ACL', 'SETUSER', 'default', '-scan');
      try {
        await serverOf('node0').restart();
        await until(() => dict.nodeStates()[0].lastError?.includes('NOPERM') === true, SETTLE);
        const [node0State, , node2State] = dict.nodeStates();
        expect(node0State).toMatchObject({ alive: false });
        expect(node0State.lastError).toMatch(/node2/);
        // A reply error never ejects a node: node2 keeps serving its own entries.
        expect(node2State).toMatchObject({ alive: true });
        expect(saw(events, 'ejected', 'node2')).toBe(0);
        expect(await dict.get(onNode2)).toBe('node2 owns it');
        // node0 out, its remembered entry is still served by the node that took it.
        expect(await dict.get(remembered)).toBe('v1');
      } finally {
        await redisCommand(node2, 'ACL', 'SETUSER', 'default', '+scan');
      }
      await until(() => saw(events, 'rediscovered', 'node0') === 1, SETTLE);
      expect(await dict.get(remembered)).toBe('v1');
      expect(await dict.get(forgotten)).toBeUndefined();
      expect(await redisCommand(serverOf('node1').port, 'EXISTS', dict.getEntry(forgotten))).toBe(
        '0',
      );
    },
  );
});

describe('scans when every node stops answering', () => {
  const listKeys = async (dict: RingDict<string, string>) => {
    const listed: string[] = [];
    for await (const key of dict.keys()) listed.push(key);
    return listed;
  };
  it.each([
    ['size()', (dict: RingDict<string, string>) => dict.size()],
    ['keys()', listKeys],
    ['clearPrefix()', (dict: RingDict<string, string>) => dict.clearPrefix('x')],
  ])(
    '%s fails as unavailable, or answers onFail, instead of reporting an empty dict',
    { timeout: 20_000 },
    async (_, scan) => {
      const dict = makeDict<string, string>({ prefix: 'allhung:', heartbeatInterval: 0 });
      const withOnFail = makeDict<string, string>({
        prefix: 'allhung:',
        heartbeatInterval: 0,
        onFail: () => 'unavailable',
      });
      await dict.set('a', '1');
      await dict.connect();
      await withOnFail.connect();
      for (const server of fixture.fleet.servers) server.hang();
      try {
        await expect(scan(dict)).rejects.toBeInstanceOf(RingClusterUnavailableError);
        if (scan !== listKeys) expect(await scan(withOnFail)).toBe('unavailable');
      } finally {
        for (const server of fixture.fleet.servers) server.resume();
      }
    },
  );
});

describe('close() with the only node hung', () => {
  it.each([
    ['without onFail', {}],
    ['with onFail', { onFail: () => 'failed' }],
  ])('a request waiting on it rejects as closed, %s', TEST_TIMEOUT, async (_, extra) => {
    const [server] = fixture.fleet.servers;
    const dict = makeDict<string, string>({
      nodes: { node0: { capacity: 1, connection: server.url } },
      ...extra,
    });
    await dict.connect();
    server.hang();
    try {
      const pending = dict.get('k');
      await new Promise((resolve) => setTimeout(resolve, 50));
      await dict.close();
      await expect(pending).rejects.toThrow(/RingDict "default" is closed/);
    } finally {
      server.resume();
    }
  });
});

describe('clear() while a node stops answering', () => {
  it('the node deletes what the clear missed before it serves again', TEST_TIMEOUT, async () => {
    const dict = makeDict<string>({ prefix: 'clr:' });
    const events = collect(dict);
    const keys = keysOwnedBy(dict, 'node1', 5);
    for (const key of keys) await dict.set(key, 'old');
    await dict.connect();
    serverOf('node1').hang();
    try {
      // node1's SCAN times out: ejected in the middle of the clear.
      await dict.clear();
      expect(saw(events, 'ejected', 'node1')).toBe(1);
    } finally {
      serverOf('node1').resume();
    }
    await until(() => saw(events, 'rediscovered', 'node1') === 1, SETTLE);
    for (const key of keys) expect(await dict.get(key)).toBeUndefined();
  });

  it(
    'a node ejected and back before the clear ends is cleared all the same',
    { timeout: 20_000 },
    async () => {
      const dict = makeDict<string>({ prefix: 'clr2:', commandTimeout: 1_000 });
      const events = collect(dict);
      const keys = [...keysOwnedBy(dict, 'node1', 5), ...keysOwnedBy(dict, 'node2', 5)];
      for (const key of keys) await dict.set(key, 'old');
      await dict.connect();
      // The clear scans node0, node1, node2 in turn. node1 is back while node2 still hangs.
      dict.events$.subscribe((event) => {
        if (event.type === 'ejected' && event.node === 'node1') serverOf('node1').resume();
      });
      serverOf('node1').hang();
      serverOf('node2').hang();
      try {
        await dict.clear();
        expect(events.map((e) => `${e.type} ${e.node}`).slice(0, 3)).toEqual([
          'ejected node1',
          'rediscovered node1',
          'ejected node2',
        ]);
      } finally {
        serverOf('node1').resume();
        serverOf('node2').resume();
      }
      await until(() => saw(events, 'rediscovered', 'node2') === 1, SETTLE);
      for (const key of keys) expect(await dict.get(key)).toBeUndefined();
    },
  );
});

describe('close() while a scan runs', () => {
  it.each([
    ['keys()', (dict: RingDict<string>) => dict.keys()],
    ['entries()', (dict: RingDict<string>) => dict.entries()],
  ])('%s rejects as closed instead of ending early', TEST_TIMEOUT, async (_, iterate) => {
    const dict = makeDict<string>({ prefix: 'closescan:' });
    await dict.setMany(Array.from({ length: 60 }, (_, i) => [`k${i}`, 'v'] as const));
    let seen = 0;
    await expect(
      (async () => {
        for await (const item of iterate(dict)) {
          void item;
          // Closed once the first keys are in: the rest can no longer be read.
          if (seen++ === 0) await dict.close();
        }
      })(),
    ).rejects.toThrow(/RingDict "default" is closed/);
    expect(seen).toBeLessThan(60);
  });
});

describe('clear() while an ejected node comes back', () => {
  it.each([0, 10, 30, 60])(
    'the values written for it meanwhile are cleared too, not handed back (back after %i ms)',
    TEST_TIMEOUT,
    async (delay) => {
      const dict = makeDict<string>({ prefix: `clrback${delay}:`, heartbeatInterval: 10 });
      const events = collect(dict);
      const keys = keysOwnedBy(dict, 'node1', 50);
      const [probe] = keysOwnedBy(dict, 'node1', 1, { tag: 'probe' });
      // Enough entries that the clear's SCANs take a while, so the return lands inside it.
      await dict.setMany(Array.from({ length: 30_000 }, (_, i) => [`filler${i}`, 'x'] as const));
      await hangUntilEjected(dict, events, 'node1', probe);
      // On node0 and node2, remembered for node1's handoff.
      await dict.setMany(keys.map((key) => [key, 'old'] as const));
      const cleared = dict.clear();
      setTimeout(() => serverOf('node1').resume(), delay);
      await cleared;
      await until(() => saw(events, 'rediscovered', 'node1') === 1, SETTLE);
      expect((await dict.getMany(keys)).filter((v) => v !== undefined)).toEqual([]);
    },
  );
});

describe('the end of a clear, while nodes come and go', () => {
  /**
   * A dict whose clear takes a while: node2 holds 150 000 entries, node1 60 000. node1 stops
   * answering as the clear starts and is back (ejected, rediscovered) before node2's scan
   * ends, so the clear's catch-up must delete node1's entries. `atScanEnd` runs once node2's
   * entries are all gone, as the catch-up begins.
   */
  async function clearWithNode1Flapping(
    dict: RingDict<string>,
    atScanEnd: () => Promise<void> | void,
  ): Promise<string> {
    await dict.connect();
    const fill = (owner: string, count: number, tag: string) =>
      dict.setMany(keysOwnedBy(dict, owner, count, { tag }).map((k) => [k, 'x'] as const));
    await fill('node2', 150_000, 'z');
    await fill('node1', 60_000, 'h');
    let settled = false;
    const scanEnd = until(
      async () => settled || Number(await redisCommand(serverOf('node2').port, 'DBSIZE')) === 0,
      20_000,
    ).then(() => (settled ? undefined : atScanEnd()));
    serverOf('node1').hang();
    const subscription = dict.events$.subscribe((event) => {
      if (event.type === 'ejected' && event.node === 'node1') serverOf('node1').resume();
    });
    try {
      return await dict.clear().then(
        (count) => `resolved ${count}`,
        (error: Error) => `rejected ${error.message}`,
      );
    } finally {
      settled = true;
      subscription.unsubscribe();
      await scanEnd;
    }
  }

  it(
    'a node out since before the clear, back at its end, is not handed values the clear deleted',
    { timeout: 30_000 },
    async () => {
      const dict = makeDict<string>({ prefix: 'clrend:', heartbeatInterval: 10 });
      const events = collect(dict);
      const keys = keysOwnedBy(dict, 'node0', 200, { heir: 'node1' });
      const [probe] = keysOwnedBy(dict, 'node0', 1, { tag: 'probe' });
      await hangUntilEjected(dict, events, 'node0', probe);
      // On node1, remembered for node0's handoff.
      await dict.setMany(keys.map((key) => [key, 'old'] as const));
      const outcome = await clearWithNode1Flapping(dict, () => serverOf('node0').resume());
      expect(outcome).toMatch(/^resolved/);
      await until(() => saw(events, 'rediscovered', 'node0') === 1, SETTLE);
      await until(() => dict.aliveHash.size === 3, SETTLE);
      expect((await dict.getMany(keys)).filter((v) => v !== undefined)).toEqual([]);
    },
  );

  it('close() then rejects the clear as closed', { timeout: 30_000 }, async () => {
    const dict = makeDict<string>({ prefix: 'clrclose:', heartbeatInterval: 10 });
    const outcome = await clearWithNode1Flapping(dict, () => dict.close());
    expect(outcome).toMatch(/^rejected RingDict "default" is closed/);
  });
});

describe('close() right after clear() is called', () => {
  it(
    'rejects the clear as closed, even when its commands were answered',
    TEST_TIMEOUT,
    async () => {
      const dict = makeDict<string>({
        prefix: 'clrquick:',
        nodes: { node0: { capacity: 1, connection: fixture.fleet.servers[0].url } },
      });
      await dict.connect();
      // The QUIT queues behind the one SCAN already sent: it is answered, and that was the
      // whole scan, but the clear's catch-up never ran.
      const cleared = dict.clear();
      await dict.close();
      await expect(cleared).rejects.toThrow(/RingDict "default" is closed/);
    },
  );
});
