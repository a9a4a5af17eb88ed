import { describe, expect, it } from 'vitest';
import { clientsNamed, FAILURE_TIMINGS, SETTLE, TEST_TIMEOUT } from '../helpers/failure-scenes.js';
import { controlKey } from '../../lib/core/keys/control-keys.js';
import { redisCommand } from '../helpers/redis-command.js';
import { taggedNodes } from '../helpers/redis-fleet.js';
import { collect, keysOwnedBy, saw, useRingDicts } from '../helpers/ring-dicts.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { until } from '../helpers/wait.js';

/**
 * What ejects a node and what does not: a connection killed under a healthy node is replaced
 * without an ejection, and an `onNodeEjected` hook that throws neither stops the ejection nor
 * the request.
 */

const fixture = useRingDicts(FAILURE_TIMINGS);

describe('a connection lost under a healthy node', () => {
  it(
    'CLIENT KILL of the ring connection: it reconnects by itself, no ejection, requests go on',
    TEST_TIMEOUT,
    async () => {
      const tag = `lost-${process.pid}`;
      const dict = fixture.dict<string>({ nodes: taggedNodes(fixture.fleet.servers, tag) });
      const events = collect(dict);
      await dict.connect();
      const [key] = keysOwnedBy(dict, 'node1', 1);
      await dict.set(key, 'before');
      const server = fixture.serverOf('node1');
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
        const dict = fixture.dict<string>({
          onNodeEjected: (_dict, node) => {
            called.push(node);
            throw new Error(`hook failed for ${node}`);
          },
        });
        const events = collect(dict);
        const [key, other] = keysOwnedBy(dict, 'node1', 2);
        await dict.set(key, 'v1');
        fixture.serverOf('node1').hang();

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
        expect(await redisCommand(fixture.serverOf(heir).port, 'GET', dict.getEntry(other))).toBe(
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

describe('a node that pauses writes (CLIENT PAUSE WRITE, as during a FAILOVER)', () => {
  it(
    "keeps serving reads: the fleet's own bookkeeping never waits on the ring's connection",
    TEST_TIMEOUT,
    async () => {
      const dict = fixture.dict<string>({ heartbeatInterval: 50 });
      const events = collect(dict);
      await dict.connect();
      const [key] = keysOwnedBy(dict, 'node0', 1);
      await dict.set(key, 'v');
      // node2 out: this process reports it on node0 and node1 at every tick, with a write.
      await fixture.serverOf('node2').kill();
      await until(() => saw(events, 'ejected', 'node2') === 1, SETTLE);
      const node0 = fixture.serverOf('node0').port;
      await redisCommand(node0, 'CLIENT', 'PAUSE', '1500', 'WRITE');
      try {
        // Through several ticks of the fleet: every read is answered in time.
        const started = performance.now();
        while (performance.now() - started < 1_000) {
          expect(await dict.get(key)).toBe('v');
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      } finally {
        await redisCommand(node0, 'CLIENT', 'UNPAUSE');
      }
      expect(saw(events, 'ejected', 'node0')).toBe(0);
    },
  );
});

describe('two nodes on one server, under two addresses', () => {
  it('the second to connect is refused, naming the first: keys are never mixed', async () => {
    const server = fixture.fleet.servers[0];
    const proxy = await TcpProxy.start(server.port);
    try {
      const dict = fixture.dict<string>({
        nodes: {
          direct: { capacity: 1, connection: { host: '127.0.0.1', port: server.port } },
          proxied: { capacity: 1, connection: { host: '127.0.0.1', port: proxy.port } },
          other: { capacity: 1, connection: fixture.fleet.servers[1].url },
        },
      });
      await dict.connect();
      const states = dict.nodeStates();
      const refused = states.filter((state) => !state.alive);
      expect(refused).toHaveLength(1);
      const first = refused[0].name === 'direct' ? 'proxied' : 'direct';
      expect(refused[0].lastError).toMatch(
        new RegExp(`^the same server as node "${first}" \\(run_id \\w{8}, database 0\\)`),
      );
      await dict.set('k', 'v');
      expect(await dict.get('k')).toBe('v');
    } finally {
      await proxy.close();
    }
  });
});

describe('ping()', () => {
  it('finds a hung node with no traffic and ejects it; brings it back once it answers', async () => {
    const dict = fixture.dict<string>({ heartbeatInterval: 0, retryRatio: 0 });
    const events = collect(dict);
    await dict.connect();
    const server = fixture.serverOf('node1');
    server.hang();
    try {
      const started = performance.now();
      const answers = await dict.ping({ timeout: 150 });
      expect(performance.now() - started).toBeLessThan(1_000);
      expect(answers.map(({ name, alive, ok }) => ({ name, alive, ok }))).toEqual([
        { name: 'node0', alive: true, ok: true },
        { name: 'node1', alive: false, ok: false },
        { name: 'node2', alive: true, ok: true },
      ]);
      expect(answers[1].error).toMatch(/no answer to PING within 150 ms/);
      expect(saw(events, 'ejected', 'node1')).toBe(1);
    } finally {
      server.resume();
    }
    // No heartbeat: the next ping() revives it.
    const again = await dict.ping({ timeout: 1_000 });
    expect(again.every((answer) => answer.alive && answer.ok)).toBe(true);
    expect(saw(events, 'rediscovered', 'node1')).toBe(1);
    await expect(dict.ping({ timeout: 0 })).rejects.toThrow(/ping: timeout must be/);
  });
});

describe('a report renewed late (two processes)', () => {
  // A renewal written to a node that hung while the report was withdrawn lands when it answers
  // again, a lease long: the other process read it and held the healthy node out once more
  // (2 runs in 4 of the scene below). A report withdrawn is not believed again until an `out`
  // message announces it anew, or a lease after a poll found it.
  it('does not hold a node out again once its report was withdrawn', TEST_TIMEOUT, async () => {
    const nodes = taggedNodes(fixture.fleet.servers, 'late');
    const dicts = [0, 1].map(() => fixture.dict<string>({ nodes, prefix: 'late:' }));
    const events = dicts.map(collect);
    const [probe] = keysOwnedBy(dicts[0], 'node0', 1, { tag: 'probe' });
    const first = fixture.serverOf('node0');
    const heir = fixture.serverOf('node1');
    const reports = controlKey('late:', 'out');
    first.hang();
    await Promise.all(dicts.map((dict) => dict.get(probe)));
    await until(() => events.every((seen) => saw(seen, 'ejected', 'node0') === 1), SETTLE);
    await until(
      async () => (await redisCommand(heir.port, 'HLEN', reports)) === '2',
      SETTLE,
      "both processes' reports on node1",
    );
    const [field] = (await redisCommand(heir.port, 'HKEYS', reports)).split('\n');
    first.resume();
    await until(() => events.every((seen) => saw(seen, 'rediscovered', 'node0') === 1), SETTLE);
    await until(async () => (await redisCommand(heir.port, 'HLEN', reports)) === '0', SETTLE);
    // One process's renewal lands late, as it would from a hung node's socket.
    const [seconds] = (await redisCommand(heir.port, 'TIME')).split('\n');
    await redisCommand(heir.port, 'HSET', reports, field, String(Number(seconds) * 1000 + 3_000));
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(events.map((seen) => saw(seen, 'ejected', 'node0'))).toEqual([1, 1]);
  });

  it('believes a report made anew after its withdrawal at once', TEST_TIMEOUT, async () => {
    const server = fixture.serverOf('node0');
    const proxy = await TcpProxy.start(server.port);
    try {
      const direct = taggedNodes(fixture.fleet.servers, 'anew');
      const proxied = {
        ...direct,
        node0: { ...direct.node0, connection: { ...direct.node0.connection, port: proxy.port } },
      };
      const [reader, cut] = [direct, proxied].map((nodes) =>
        fixture.dict<string>({ nodes, prefix: 'anew:' }),
      );
      const events = [reader, cut].map(collect);
      const [probe] = keysOwnedBy(reader, 'node0', 1, { tag: 'probe' });
      await Promise.all([reader.get(probe), cut.get(probe)]);
      for (let round = 1; round <= 2; round++) {
        proxy.cut();
        await cut.get(probe);
        // Held out by the reader on the cut process's word, the second time too (its report
        // was withdrawn in between): within a poll or two, not a lease (3 s).
        await until(() => events.every((seen) => saw(seen, 'ejected', 'node0') === round), 1_000);
        proxy.heal();
        await until(
          () => events.every((seen) => saw(seen, 'rediscovered', 'node0') === round),
          SETTLE,
        );
      }
    } finally {
      await proxy.close();
    }
  });

  // A new report has a field of its own: one whose `out` message was lost (the reader's fleet
  // connections down as it went out) was taken by polls for the late renewal of the report
  // withdrawn before, and the reader went on using the node for a lease (3 s) while the cut
  // process wrote its keys elsewhere.
  it(
    'believes a new report at its first poll when its out message was lost',
    TEST_TIMEOUT,
    async () => {
      const proxy = await TcpProxy.start(fixture.serverOf('node0').port);
      try {
        const direct = taggedNodes(fixture.fleet.servers, 'lost-reader');
        const proxied = taggedNodes(fixture.fleet.servers, 'lost-cut');
        proxied.node0.connection.port = proxy.port;
        const [reader, cut] = [direct, proxied].map((nodes) =>
          fixture.dict<string>({ nodes, prefix: 'lost:' }),
        );
        const events = [reader, cut].map(collect);
        const [probe] = keysOwnedBy(reader, 'node0', 1, { tag: 'probe' });
        await Promise.all([reader.get(probe), cut.get(probe)]);
        proxy.cut();
        await cut.get(probe);
        await until(() => events.every((seen) => saw(seen, 'ejected', 'node0') === 1), 1_000);
        proxy.heal();
        await until(() => events.every((seen) => saw(seen, 'rediscovered', 'node0') === 1), SETTLE);
        // The reader's fleet connections (its subscription) to the nodes the report goes to
        // dropped; they reconnect after 200 ms, once the `out` message has gone.
        for (const node of ['node1', 'node2']) {
          const server = fixture.serverOf(node);
          for (const line of await clientsNamed(server, 'lost-reader:fleet')) {
            const id = /\bid=(\d+)/.exec(line)![1];
            await redisCommand(server.port, 'CLIENT', 'KILL', 'ID', id);
          }
        }
        proxy.cut();
        await cut.get(probe);
        await until(
          () => saw(events[0], 'ejected', 'node0') === 2,
          1_000,
          'the reader ejects node0',
        );
      } finally {
        await proxy.close();
      }
    },
  );
});

describe('a node out, then its heir, both back (two processes)', () => {
  // A report of the first, renewed on the heir while it was hung and never withdrawn there, held
  // the first out for every process until its lease ran out once the heir was back: the healthy
  // node ejected again (2 or 3 times in each process, for about 1.5 s). Each process's own stale
  // reports now go as it brings the heir back; another process's, as that one does.
  it(
    'each process brings the heir back without its stale reports of the first',
    { timeout: 20_000 },
    async () => {
      const nodes = taggedNodes(fixture.fleet.servers, 'twice');
      const dicts = [0, 1].map(() => fixture.dict<string>({ nodes, prefix: 'twice:' }));
      const events = dicts.map(collect);
      const ejectBoth = async (node: string) => {
        const [probe] = keysOwnedBy(dicts[0], node, 1, { tag: 'probe' });
        await Promise.all(dicts.map((dict) => dict.get(probe)));
        await until(() => events.every((seen) => saw(seen, 'ejected', node) === 1), SETTLE);
      };
      const keys = keysOwnedBy(dicts[0], 'node0', 10, { heir: 'node1' });
      const [first, heir] = [fixture.serverOf('node0'), fixture.serverOf('node1')];
      first.hang();
      await ejectBoth('node0');
      for (const [i, key] of keys.entries()) await dicts[i % 2].set(key, 'v2');
      heir.hang();
      await ejectBoth('node1');
      first.resume();
      await until(() => events.every((seen) => saw(seen, 'rediscovered', 'node0') === 1), SETTLE);
      heir.resume();
      await until(() => events.every((seen) => saw(seen, 'rediscovered', 'node1') === 1), SETTLE);
      // Well within the lease (3 s) the late renewals of node0's reports live on node1 for.
      const reports = controlKey('twice:', 'out');
      await until(
        async () => !(await redisCommand(heir.port, 'HKEYS', reports)).includes('node0 '),
        1_000,
        'node1 holding no report of node0',
      );
    },
  );
});

describe('a node back and an earlier report of another node (two processes)', () => {
  // A node that comes back loses the reports it holds of nodes the process reaches; named by
  // the report's current count, an earlier one (withdrawn while the node was out, a later
  // report made and withdrawn since) stayed for its lease, and a process started meanwhile
  // held the healthy node out.
  it(
    "a node that comes back loses the process's first report of another node, withdrawn while it was out, after a second report of it",
    { timeout: 40_000 },
    async () => {
      const [p0, p1] = await Promise.all(
        ['node0', 'node1'].map((node) => TcpProxy.start(fixture.serverOf(node).port)),
      );
      try {
        const direct = taggedNodes(fixture.fleet.servers, 'rj-direct');
        const proxied = taggedNodes(fixture.fleet.servers, 'rj-cut');
        proxied.node0.connection.port = p0.port;
        proxied.node1.connection.port = p1.port;
        const cut = fixture.dict<string>({ nodes: proxied, prefix: 'rj:' });
        const events = collect(cut);
        const [probe0] = keysOwnedBy(cut, 'node0', 1, { tag: 'p0-' });
        const [probe1] = keysOwnedBy(cut, 'node1', 1, { tag: 'p1-' });
        await Promise.all([cut.get(probe0), cut.get(probe1)]);
        const reports = controlKey('rj:', 'out');
        const node1 = fixture.serverOf('node1');
        const node2 = fixture.serverOf('node2');

        // node0 out: report node0 <pid>.1, on node1 and node2.
        p0.cut();
        await cut.get(probe0);
        await until(() => saw(events, 'ejected', 'node0') === 1, SETTLE, 'node0 out');
        await until(
          async () => (await redisCommand(node1.port, 'HLEN', reports)) === '1',
          SETTLE,
          'the report on node1',
        );
        // node1 out for this process: it keeps node0 <pid>.1 until its lease (3 s) ends.
        p1.cut();
        await cut.get(probe1);
        await until(() => saw(events, 'ejected', 'node1') === 1, SETTLE, 'node1 out');
        const first = (await redisCommand(node2.port, 'HKEYS', reports))
          .split('\n')
          .find((f) => f.startsWith('node0 '))!;
        expect(first).toMatch(/^node0 [0-9a-f]{12}(\.1)?$/);
        // node0 back (withdrawn on node2 only), out again (.2), back again.
        p0.heal();
        await until(() => saw(events, 'rediscovered', 'node0') === 1, SETTLE, 'node0 back');
        p0.cut();
        await cut.get(probe0);
        await until(() => saw(events, 'ejected', 'node0') === 2, SETTLE, 'node0 out again');
        p0.heal();
        await until(() => saw(events, 'rediscovered', 'node0') === 2, SETTLE, 'node0 back again');
        // node1 answers again: the process brings it back (rejoined), which should delete
        // its report of node0 that node1 still holds (withdrawn while node1 was out).
        const before = (await redisCommand(node1.port, 'HKEYS', reports)).split('\n');
        p1.heal();
        await until(() => saw(events, 'rediscovered', 'node1') === 1, SETTLE, 'node1 back');
        await new Promise((resolve) => setTimeout(resolve, 200));
        const left = (await redisCommand(node1.port, 'HKEYS', reports))
          .split('\n')
          .filter((f) => f !== '');
        // A process started now, which never heard `back node0 <pid>.1`.
        const late = fixture.dict<string>({ nodes: direct, prefix: 'rj:' });
        const lateEvents = collect(late);
        await late.get(probe0);
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        expect(before).toEqual([first]);
        expect({
          fieldsOnNode1: left,
          newcomerEjectedNode0: saw(lateEvents, 'ejected', 'node0'),
        }).toEqual({ fieldsOnNode1: [], newcomerEjectedNode0: 0 });
      } finally {
        await Promise.all([p0.close(), p1.close()]);
      }
    },
  );
});
