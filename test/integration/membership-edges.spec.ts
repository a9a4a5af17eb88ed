import { afterEach, describe, expect, it } from 'vitest';
import { clientsNamed } from '../helpers/failure-scenes.js';
import { redisCommand } from '../helpers/redis-command.js';
import { taggedNodes } from '../helpers/redis-fleet.js';
import { collect, keysOwnedBy, saw, useRingDicts } from '../helpers/ring-dicts.js';
import { freePort } from '../helpers/redis-servers.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { sleep, until } from '../helpers/wait.js';

/**
 * setNodes() at its edges: a new address that leads to a member's server, a node removed while
 * its revival is under way, a change racing close(). No member's entries are wiped, and close()
 * leaves no connection open.
 */

const fixture = useRingDicts(
  { prefix: 'me:', commandTimeout: 400, heartbeatInterval: 100, connectTimeout: 600 },
  { servers: 4 },
);
const TIMEOUT = { timeout: 15_000 };
const proxies: TcpProxy[] = [];
afterEach(async () => {
  await Promise.all(proxies.splice(0).map((proxy) => proxy.close()));
});

async function proxyTo(server: number): Promise<TcpProxy> {
  const proxy = await TcpProxy.start(fixture.fleet.servers[server].port);
  proxies.push(proxy);
  return proxy;
}

/** The dict's entries on a server (not the ring's own control keys: a fleet report, say). */
const entriesOn = (server: number) =>
  redisCommand(
    fixture.fleet.servers[server].port,
    'EVAL',
    "return #redis.call('KEYS', 'me:*')",
    '0',
  );

describe('setNodes() at its edges', () => {
  // The joining node's entries were cleared before the same-server check ran: node0's went.
  it.each([
    ['a new node', 'node9'],
    ["a member's new connection", 'node2'],
  ])(
    "%s leading to a member's server (a proxy) stays out, the member's entries kept",
    TIMEOUT,
    async (_what, name) => {
      const nodes = taggedNodes(fixture.fleet.servers.slice(0, 3), `edge-${name}`);
      const dict = fixture.dict<number>({ nodes });
      await dict.setMany(Array.from({ length: 200 }, (_, i) => [`k${i}`, i]));
      const before = await entriesOn(0);
      const alias = await proxyTo(0);
      await dict.setNodes({ ...nodes, [name]: alias.url });
      expect(dict.nodeStates().find((state) => state.name === name)).toMatchObject({
        alive: false,
        lastError: expect.stringMatching(/the same server as node "node0"/),
      });
      expect(await entriesOn(0)).toBe(before);
    },
  );

  // Replaced in one change (the old connection leaves, the new joins unreachable), the new
  // one's report to the fleet went with the old one's withdrawal: the other dict read the
  // node while this one wrote its keys elsewhere, until this one's next revival try.
  it.each([
    ['removed, then added back', true],
    ['replaced under its name in one change', false],
  ])('a node %s unreachable is held out by the other dicts too', TIMEOUT, async (_what, twice) => {
    const nodes = taggedNodes(fixture.fleet.servers.slice(0, 3), `edge-fleet-${twice}`);
    // A slow heartbeat: the report must come from the change, not from a revival's try.
    const [a, b] = [0, 1].map(() => fixture.dict<string>({ nodes, heartbeatInterval: 5_000 }));
    await Promise.all([a.connect(), b.connect()]);
    // The fleet's own connections open once the nodes are ready: a report made before a's are
    // up is written, and one made before b's subscription is, heard, only a tick (5 s) later.
    await sleep(500);
    const [key] = keysOwnedBy(a, 'node2', 1);
    const unreachable = `redis://127.0.0.1:${await freePort()}`;
    if (twice) await a.setNodes({ node0: nodes.node0, node1: nodes.node1 });
    await a.setNodes({ ...nodes, node2: { capacity: 1, connection: unreachable } });
    await until(() => b.aliveHash.size === 2, 2_000, 'b holds node2 out');
    // Withdrawn with the old connection, the report held node2 out of b for a moment only.
    await sleep(600);
    expect(b.aliveHash.size).toBe(2);
    await b.set(key, 'old');
    await a.set(key, 'new');
    expect(await b.get(key)).toBe('new');
  });

  // The same-server check counted the node leaving in the same change: node2 joined ejected,
  // "the same server as node0", and /health was short a node until the heartbeat.
  it('a server handed from a leaving node to a new name joins alive', TIMEOUT, async () => {
    const nodes = taggedNodes(fixture.fleet.servers.slice(0, 2), 'edge-handover');
    const dict = fixture.dict<string>({ nodes });
    await dict.connect();
    const events = collect(dict);
    await dict.setNodes({ node1: nodes.node1, node2: nodes.node0 });
    expect(
      dict.nodeStates().map(({ name, alive, lastError }) => ({ name, alive, lastError })),
    ).toEqual([
      { name: 'node1', alive: true, lastError: undefined },
      { name: 'node2', alive: true, lastError: undefined },
    ]);
    expect(events.map(({ type, node }) => `${type} ${node}`)).toEqual([
      'removed node0',
      'added node2',
    ]);
  });

  // It joined ejected in its state only: no event, no callback, so no transition counted and
  // no log line, and its rediscovery came with no ejection before it.
  it(
    'a node that cannot be reached joins ejected, and says so as any ejection does',
    TIMEOUT,
    async () => {
      const nodes = taggedNodes(fixture.fleet.servers.slice(0, 2), 'edge-unreachable');
      const ejected: string[] = [];
      const dict = fixture.dict<string>({
        nodes,
        onNodeEjected: (_dict, node) => ejected.push(node),
      });
      await dict.connect();
      const events = collect(dict);
      const hung = await proxyTo(3);
      hung.cut();
      await dict.setNodes({ ...nodes, node3: hung.url });
      expect(events.map(({ type, node }) => `${type} ${node}`)).toEqual([
        'added node3',
        'ejected node3',
      ]);
      expect(events[1].error?.message).toMatch(/./);
      expect(ejected).toEqual(['node3']);
      hung.heal();
      await until(() => saw(events, 'rediscovered', 'node3') === 1, 3_000);
    },
  );

  // Reported as any ejection here (its revival's first try reports it, 45-70 ms after the
  // change): another process that reaches it would read it while this one writes its keys on
  // the next node.
  it('a node joining unreachable here is held out by another process too', TIMEOUT, async () => {
    const nodes = taggedNodes(fixture.fleet.servers.slice(0, 2), 'edge-reported');
    const direct = taggedNodes(fixture.fleet.servers.slice(3, 4), 'edge-reported').node0;
    const [reader, cutOff] = [0, 1].map(() => fixture.dict<string>({ nodes }));
    const events = [reader, cutOff].map(collect);
    const hung = await proxyTo(3);
    hung.cut();
    await reader.setNodes({ ...nodes, node3: direct });
    await cutOff.setNodes({ ...nodes, node3: hung.url });
    expect(saw(events[1], 'ejected', 'node3')).toBe(1);
    await until(() => saw(events[0], 'ejected', 'node3') === 1, 1_000, 'the reader ejects node3');
    hung.heal();
    await until(() => events.every((seen) => saw(seen, 'rediscovered', 'node3') === 1), 3_000);
  });

  // Its failed revival reported it after it left: close() then threw and closed nothing.
  it(
    'a node removed while its revival is under way: close() resolves, no connection left',
    TIMEOUT,
    async () => {
      const nodes = taggedNodes(fixture.fleet.servers.slice(0, 3), 'edge-revival');
      const dict = fixture.dict<string>({ nodes });
      await dict.set('x', 'y');
      const hung = await proxyTo(3);
      hung.hang();
      await dict.setNodes({ ...nodes, hung: hung.url });
      await sleep(250);
      await dict.setNodes(nodes);
      await sleep(800);
      await fixture.closeNow(dict);
      await sleep(300);
      const servers = fixture.fleet.servers.slice(0, 3);
      const left = await Promise.all(servers.map((server) => clientsNamed(server, 'edge-revival')));
      expect(left.flat()).toEqual([]);
    },
  );

  // The joining node was connected, then neither adopted nor closed.
  it('a change racing close(): the joining node is closed too', TIMEOUT, async () => {
    const nodes = taggedNodes(fixture.fleet.servers.slice(0, 3), 'edge-race');
    const dict = fixture.dict<string>({ nodes });
    await dict.set('x', 'y');
    const slow = await proxyTo(3);
    slow.delay(150);
    const joining = { host: '127.0.0.1', port: slow.port, connectionName: 'edge-race' };
    const change = dict.setNodes({ ...nodes, node3: { capacity: 1, connection: joining } });
    await sleep(20);
    await fixture.closeNow(dict);
    await expect(change).rejects.toThrow(/is closed/);
    await sleep(1000);
    expect(await clientsNamed(fixture.fleet.servers[3], 'edge-race')).toEqual([]);
  });
});

describe("setNodes() taking out the node that holds an absent owner's hints", () => {
  // The owner's handoff skipped an heir that was no member any more: its hints gone with it,
  // the owner came back with the values it held before the writes it missed, every one.
  it.each([1, 2])(
    'replicas %i: the owner, back, serves none of the values those writes replaced',
    TIMEOUT,
    async (replicas) => {
      const nodes = taggedNodes(fixture.fleet.servers.slice(0, 3), `edge-heir${replicas}`);
      const dict = fixture.dict<string>({ nodes, replicas, prefix: `me-heir${replicas}:` });
      const events = collect(dict);
      // node2's keys whose writes go to node1 while node2 is out (node1 not among their homes).
      const keys = Array.from({ length: 2000 }, (_, i) => `k${i}`).filter((key) => {
        const entry = dict.getEntry(key);
        const homes = dict.totalHash.locateAll(entry, replicas);
        const without = dict.totalHash.without('node2').locateAll(entry, replicas);
        return homes[0] === 'node2' && !homes.includes('node1') && without.includes('node1');
      });
      expect(keys.length).toBeGreaterThan(50);
      await dict.setMany(keys.map((key) => [key, 'v1']));
      const owner = fixture.fleet.servers[2];
      owner.hang();
      try {
        await dict.get(keys[0]);
        await until(() => saw(events, 'ejected', 'node2') === 1, 3000);
        await dict.setMany(keys.map((key) => [key, 'v2']));
        const { node1: _heir, ...rest } = nodes;
        await dict.setNodes(rest);
      } finally {
        owner.resume();
      }
      await until(() => saw(events, 'rediscovered', 'node2') === 1, 5000);
      const values = await dict.getMany(keys);
      expect(values.filter((value) => value === 'v1')).toEqual([]);
    },
  );
});
