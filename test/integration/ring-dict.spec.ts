import { describe, expect, it, vi } from 'vitest';
import type { Redis, RedisOptions } from 'ioredis';
import {
  RingClusterUnavailableError,
  RingCodecError,
  RingConfigError,
  RingDict,
  RingKeyError,
  type RingDictOptions,
  type RingEvent,
} from '../../lib/index.js';
import { runNodeScript } from '../helpers/node-script.js';
import { until } from '../helpers/wait.js';
import { redisCommand, ringNodes, type RedisServer } from '../helpers/redis-servers.js';
import { useRingFleet } from '../helpers/ring-fleet.js';
import { PIPELINE_CHUNK } from '../../lib/core/node/pipeline.js';

// Generous enough that a loaded CI machine does not eject a healthy node; the hang test
// measures against it.
const COMMAND_TIMEOUT = 500;
const HEARTBEAT = 100;

const fixture = useRingFleet(3);

function nodes(): RingDictOptions['nodes'] {
  return ringNodes(fixture.fleet.servers);
}

function makeDict<V = unknown, F = never>(
  options: Partial<RingDictOptions<V, F>> = {},
): RingDict<V, F> {
  const dict = new RingDict<V, F>({
    nodes: nodes(),
    heartbeatInterval: HEARTBEAT,
    commandTimeout: COMMAND_TIMEOUT,
    retryRatio: 0,
    ...options,
  });
  fixture.track(dict);
  return dict;
}

function serverOf(node: string): RedisServer {
  return fixture.fleet.servers[Number(node.replace('node', ''))];
}

/** A key whose owner (with every node alive) is `node`. */
function keyOwnedBy(dict: RingDict<unknown, unknown>, node: string, tag = 'k'): string {
  for (let i = 0; ; i++) {
    const key = `${tag}${i}`;
    if (dict.totalHash.locate(dict.getEntry(key)) === node) return key;
  }
}

function collect(dict: RingDict<unknown, unknown>): RingEvent[] {
  const events: RingEvent[] = [];
  dict.events$.subscribe((event) => events.push(event));
  return events;
}

describe('RingDict basics', () => {
  it('stores, reads, checks and deletes JSON values on the owning node', async () => {
    const dict = makeDict<{ a: number[] }>({ prefix: 'app:' });
    await dict.set('one', { a: [1, 2] });
    expect(await dict.get('one')).toEqual({ a: [1, 2] });
    expect(await dict.has('one')).toBe(true);
    expect(await dict.get('missing')).toBeUndefined();
    const owner = serverOf(dict.aliveHash.locate('app:one')!);
    // Plain JSON, no envelope: any other client sees exactly JSON.stringify(value).
    expect(await redisCommand(owner.port, 'GET', 'app:one')).toBe('{"a":[1,2]}');
    expect(await dict.delete('one')).toBe(true);
    expect(await dict.delete('one')).toBe(false);
    expect(await dict.has('one')).toBe(false);
  });

  it('spreads keys over every node', async () => {
    const dict = makeDict();
    for (let i = 0; i < 300; i++) await dict.set(`spread${i}`, i);
    for (const server of fixture.fleet.servers) {
      expect(Number(await redisCommand(server.port, 'DBSIZE'))).toBeGreaterThan(50);
    }
  });

  it('uses the string codec and custom binary codecs', async () => {
    const strings = makeDict<string>({ codec: 'string', prefix: 's:' });
    await strings.set('a', 'plain text');
    expect(await strings.get('a')).toBe('plain text');
    const binary = makeDict<number[]>({
      prefix: 'b:',
      codec: { binary: true, encode: (v) => Buffer.from(v), decode: (raw) => [...raw] },
    });
    await binary.set('x', [0, 255, 128]);
    expect(await binary.get('x')).toEqual([0, 255, 128]);
  });

  it('maps keys through the key function and getEntry', async () => {
    const dict = makeDict<string, never>({
      prefix: 'user:',
      key: (k) => (k as { id: number }).id.toString(),
    });
    expect(dict.getEntry({ id: 7 })).toBe('user:7');
    await dict.set({ id: 7 }, 'seven');
    expect(await dict.get({ id: 7 })).toBe('seven');
  });
});

describe('RingDict failure rules', () => {
  it('1. a SIGKILLed node: its key is answered by the next node, one ejection fires', async () => {
    const ejected: string[] = [];
    const dict = makeDict({ onNodeEjected: (_d, node) => ejected.push(node) });
    const events = collect(dict);
    const key = keyOwnedBy(dict, 'node1');
    await dict.set(key, 'v1');
    await serverOf('node1').kill();

    expect(await dict.get(key)).toBeUndefined();
    await dict.set(key, 'v2');
    expect(await dict.get(key)).toBe('v2');
    const heir = dict.aliveHash.locate(dict.getEntry(key));
    expect(heir).not.toBe('node1');
    expect(await redisCommand(serverOf(heir!).port, 'GET', key)).toBe('"v2"');
    expect(ejected).toEqual(['node1']);
    expect(events.filter((e) => e.type === 'ejected')).toEqual([
      expect.objectContaining({ type: 'ejected', node: 'node1', at: expect.any(Date) }),
    ]);
    expect(dict.nodeStates().find((s) => s.name === 'node1')).toMatchObject({
      alive: false,
      ejections: 1,
      lastError: expect.stringMatching(/ECONNREFUSED|ECONNRESET|closed/),
    });
  });

  it('2. a hung node (SIGSTOP): the request returns from the next node within commandTimeout', async () => {
    const dict = makeDict();
    const key = keyOwnedBy(dict, 'node2');
    await dict.set(key, 'before');
    serverOf('node2').hang();
    const start = performance.now();
    expect(await dict.get(key)).toBeUndefined();
    const elapsed = performance.now() - start;
    // The timeout is the behaviour; the margin covers a loaded CI machine.
    expect(elapsed).toBeGreaterThanOrEqual(COMMAND_TIMEOUT - 20);
    expect(elapsed).toBeLessThan(COMMAND_TIMEOUT + 400);
    // The reason it was dropped, not a bare "connection closed".
    expect(dict.nodeStates().find((s) => s.name === 'node2')).toMatchObject({
      alive: false,
      lastError: `connection closed (no reply within ${COMMAND_TIMEOUT} ms)`,
    });
  });

  it('3a. a restarted node is rediscovered by the heartbeat within heartbeatInterval', async () => {
    const rediscovered: string[] = [];
    const dict = makeDict({ onNodeRediscovered: (_d, node) => rediscovered.push(node) });
    const events = collect(dict);
    const server = serverOf('node0');
    await server.kill();
    await until(() => dict.aliveHash.size === 2, 2000);
    await server.restart();
    const took = await until(() => rediscovered.length > 0, HEARTBEAT + 2000);
    expect(took).toBeLessThan(HEARTBEAT + 500);
    expect(rediscovered).toEqual(['node0']);
    expect(events.map((e) => e.type)).toEqual(['ejected', 'rediscovered']);
    expect(dict.aliveHash.size).toBe(3);
    expect(dict.nodeStates()[0]).toMatchObject({ name: 'node0', alive: true, rediscoveries: 1 });
  });

  it('3b. with heartbeatInterval 0, retryRatio probes rediscover the node', async () => {
    const dict = makeDict({ heartbeatInterval: 0, retryRatio: 0.5 });
    const server = serverOf('node0');
    await server.kill();
    await until(() => dict.aliveHash.size === 2, 2000);
    await server.restart();
    // No heartbeat: nothing but requests can find it back.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(dict.aliveHash.size).toBe(2);
    for (let i = 0; i < 200 && dict.aliveHash.size < 3; i++) await dict.get(`probe${i}`);
    expect(dict.aliveHash.size).toBe(3);
  });

  it('3c. a probe request brings its owner back first: it is served by the owner, up to date', async () => {
    const dict = makeDict<string>({ heartbeatInterval: 0, retryRatio: 1 });
    const key = keyOwnedBy(dict, 'node0');
    const server = serverOf('node0');
    await server.kill();
    // Written while node0 is out: its heir takes it, and remembers it for node0.
    await dict.set(key, 'written meanwhile');
    expect(dict.aliveHash.nodes).toEqual(['node1', 'node2']);
    await server.restart();
    // One request: the probe revives node0 (hands the write back) before the request is routed.
    expect(await dict.get(key)).toBe('written meanwhile');
    expect(dict.aliveHash.nodes).toEqual(['node0', 'node1', 'node2']);
    expect(await redisCommand(server.port, 'GET', dict.getEntry(key))).toBe('"written meanwhile"');
    expect(dict.nodeStates()[0]).toMatchObject({ alive: true, rediscoveries: 1 });
  });

  it('3d. a probe of a hung owner holds the request no longer than commandTimeout', async () => {
    const dict = makeDict<string>({ heartbeatInterval: 0, retryRatio: 1 });
    const key = keyOwnedBy(dict, 'node0');
    const server = serverOf('node0');
    server.hang();
    try {
      await dict.set(key, 'v');
      expect(dict.aliveHash.nodes).toEqual(['node1', 'node2']);
      // Let the abandoned first connection finish closing before the probe opens a new one.
      await new Promise((resolve) => setTimeout(resolve, 100));
      const start = performance.now();
      // The probe waits for node0's connection in vain, then the heir answers.
      expect(await dict.get(key)).toBe('v');
      const elapsed = performance.now() - start;
      expect(elapsed).toBeGreaterThanOrEqual(COMMAND_TIMEOUT - 20);
      expect(elapsed).toBeLessThan(COMMAND_TIMEOUT + 400);
      expect(dict.nodeStates()[0]).toMatchObject({ alive: false, rediscoveries: 0 });
    } finally {
      server.resume();
    }
  });

  it('4. all nodes down: RingClusterUnavailableError, or onFail, and one unavailable event', async () => {
    const plain = makeDict();
    const fallback = makeDict<string, string>({ onFail: () => 'fallback' });
    const events = collect(plain);
    await Promise.all(fixture.fleet.servers.map((s) => s.kill()));
    await expect(plain.get('x')).rejects.toBeInstanceOf(RingClusterUnavailableError);
    await expect(plain.set('x', 1)).rejects.toThrow(/no node is alive/);
    expect(await fallback.get('x')).toBe('fallback');
    expect(await fallback.has('x')).toBe('fallback');
    expect(await fallback.visitRedis('GET', 'x')).toBe('fallback');
    expect(events.filter((e) => e.type === 'unavailable')).toHaveLength(1);
  });

  it('5. a reply error is thrown unchanged and ejects nothing', async () => {
    const dict = makeDict();
    const events = collect(dict);
    await dict.set('str', 'text');
    await expect(dict.visitRedis('LPUSH', 'str', 'x')).rejects.toThrow(/WRONGTYPE/);
    await expect(dict.visitRedis('NOSUCHCOMMAND', 'str')).rejects.toThrow(/unknown command/i);
    expect(events).toEqual([]);
    expect(dict.nodeStates().every((s) => s.alive && s.ejections === 0)).toBe(true);
    expect(await dict.visitRedis('STRLEN', 'str')).toBe(6);
  });

  it('6. keys of alive nodes never move when another node is ejected or rediscovered', async () => {
    const dict = makeDict();
    const keys = Array.from({ length: 600 }, (_, i) => `stable${i}`);
    for (const key of keys) await dict.set(key, key);
    const before = keys.map((k) => dict.aliveHash.locate(dict.getEntry(k)));
    await serverOf('node1').kill();
    await until(() => dict.aliveHash.size === 2, 2000);
    const during = keys.map((k) => dict.aliveHash.locate(dict.getEntry(k)));
    let moved = 0;
    for (let i = 0; i < keys.length; i++) {
      if (before[i] !== 'node1' && during[i] !== before[i]) moved++;
      // Their values are still where they were.
      if (before[i] !== 'node1') expect(await dict.get(keys[i])).toBe(keys[i]);
    }
    expect(moved).toBe(0);
    await serverOf('node1').restart();
    await until(() => dict.aliveHash.size === 3, 3000);
    expect(keys.map((k) => dict.aliveHash.locate(dict.getEntry(k)))).toEqual(before);
  });

  it('7. size, keys, entries and clear see only this prefix; clear refuses an empty prefix', async () => {
    for (const server of fixture.fleet.servers) {
      await redisCommand(server.port, 'SET', `foreign:${server.port}`, 'theirs');
      await redisCommand(server.port, 'SET', `app2:${server.port}`, 'theirs');
    }
    const dict = makeDict<number>({ prefix: 'app:' });
    for (let i = 0; i < 50; i++) await dict.set(`k${i}`, i);
    expect(await dict.size()).toBe(50);
    const keys: string[] = [];
    for await (const key of dict.keys()) keys.push(key);
    expect(keys.sort()).toEqual(Array.from({ length: 50 }, (_, i) => `k${i}`).sort());
    const entries = new Map<string, number>();
    for await (const [key, value] of dict) entries.set(key, value);
    expect(entries.get('k7')).toBe(7);
    expect(entries.size).toBe(50);
    const values: number[] = [];
    for await (const value of dict.values()) values.push(value);
    expect(values.reduce((a, b) => a + b, 0)).toBe((49 * 50) / 2);

    expect(await dict.clear()).toBe(50);
    expect(await dict.size()).toBe(0);
    for (const server of fixture.fleet.servers) {
      expect(await redisCommand(server.port, 'GET', `foreign:${server.port}`)).toBe('theirs');
      expect(await redisCommand(server.port, 'GET', `app2:${server.port}`)).toBe('theirs');
    }
    const unprefixed = makeDict();
    await expect(unprefixed.clear()).rejects.toThrow(/empty prefix.*force: true/);
    for (const server of fixture.fleet.servers) {
      expect(await redisCommand(server.port, 'DBSIZE')).toBe('2');
    }
  });

  it('7b. a prefix with glob characters matches only itself', async () => {
    for (const server of fixture.fleet.servers)
      await redisCommand(server.port, 'SET', 'aXb:1', 'theirs');
    const dict = makeDict({ prefix: 'a?b:' });
    await dict.set('1', 'ours');
    expect(await dict.size()).toBe(1);
    await dict.clear();
    for (const server of fixture.fleet.servers)
      expect(await redisCommand(server.port, 'GET', 'aXb:1')).toBe('theirs');
  });

  it('8. expire and ttl land as PTTL on the key', async () => {
    const dict = makeDict({ prefix: 'ttl:', expire: 60 });
    await dict.set('default', 1);
    await dict.set('override', 1, { ttl: 1.5 });
    const pttl = async (key: string) => {
      const server = serverOf(dict.aliveHash.locate(dict.getEntry(key))!);
      return Number(await redisCommand(server.port, 'PTTL', dict.getEntry(key)));
    };
    const long = await pttl('default');
    expect(long).toBeGreaterThan(59_000);
    expect(long).toBeLessThanOrEqual(60_000);
    const short = await pttl('override');
    expect(short).toBeGreaterThan(1000);
    expect(short).toBeLessThanOrEqual(1500);
    const forever = makeDict({ prefix: 'ttl:' });
    await forever.set('none', 1);
    expect(await pttl('none')).toBe(-1);
    await expect(dict.set('bad', 1, { ttl: 0 })).rejects.toBeInstanceOf(RingConfigError);
    await expect(dict.set('bad', 1, { ttl: -1 })).rejects.toThrow(/ttl/);
    await expect(dict.set('bad', 1, { ttl: 1e300 })).rejects.toThrow(/ttl: at most/);
  });

  it('9b. close() with a request waiting on a hung node: it fails as closed and reconnects nothing', async () => {
    const tag = `close-inflight-${process.pid}`;
    const tagged = Object.fromEntries(
      fixture.fleet.servers.map((s, i) => [
        `node${i}`,
        { capacity: 1, connection: { host: '127.0.0.1', port: s.port, connectionName: tag } },
      ]),
    );
    const dict = makeDict({ nodes: tagged });
    await dict.connect();
    const key = keyOwnedBy(dict, 'node0');
    serverOf('node0').hang();
    const pending = dict.get(key);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const start = performance.now();
    await dict.close();
    await expect(pending).rejects.toThrow(/RingDict "default" is closed/);
    // The request did not fail over to node1 or node2 and open a connection there again.
    await new Promise((resolve) => setTimeout(resolve, 200));
    for (const server of fixture.fleet.servers.slice(1)) {
      const clients = await redisCommand(server.port, 'CLIENT', 'LIST');
      expect(clients.split('\n').filter((line) => line.includes(`name=${tag}`))).toEqual([]);
    }
    expect(performance.now() - start).toBeLessThan(COMMAND_TIMEOUT + 400);
  });

  it('9. close() leaves no open handle: a process using a dict exits by itself', async () => {
    const script = `
      import { RingDict } from ${JSON.stringify(new URL('../../.run/lib/index.js', import.meta.url).href)};
      const dict = new RingDict({ nodes: ${JSON.stringify(nodes())}, heartbeatInterval: 50 });
      await dict.set('child', { ok: true });
      const value = await dict.get('child');
      await dict.close();
      console.log(JSON.stringify(value));
    `;
    const { code, stdout: out } = await runNodeScript(script, 5000);
    expect(code).toBe(0);
    expect(out.trim()).toBe('{"ok":true}');
  });
});

describe('lazyConnect and connect()', () => {
  it('lazyConnect opens no connection until a request or connect(); connect() ejects what it cannot reach', async () => {
    const tag = `lazy-${process.pid}`;
    const servers = fixture.fleet.servers;
    const dict = makeDict({
      lazyConnect: true,
      nodes: Object.fromEntries(
        servers.map((s, i) => [
          `node${i}`,
          { capacity: 1, connection: { host: '127.0.0.1', port: s.port, connectionName: tag } },
        ]),
      ),
    });
    const events = collect(dict);
    const ours = async (server: RedisServer) =>
      (await redisCommand(server.port, 'CLIENT', 'LIST'))
        .split('\n')
        .filter((line) => line.includes(`name=${tag}`)).length;
    const counts = () => Promise.all(servers.map(ours));

    // Long enough for an eager connect to show up.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await counts()).toEqual([0, 0, 0]);
    await dict.set(keyOwnedBy(dict, 'node1'), 1);
    expect(await counts()).toEqual([0, 1, 0]);

    await serverOf('node2').kill();
    await expect(dict.connect()).resolves.toBeUndefined();
    expect(await Promise.all(servers.slice(0, 2).map(ours))).toEqual([1, 1]);
    expect(events.map((e) => `${e.type} ${e.node}`)).toEqual(['ejected node2']);
    expect(dict.nodeStates().map((s) => s.alive)).toEqual([true, true, false]);

    await dict.close();
    await expect(dict.connect()).resolves.toBeUndefined();
    await until(
      async () => (await Promise.all(servers.slice(0, 2).map(ours))).join() === '0,0',
      2000,
    );
  });

  it('lazyConnect must be a boolean', () => {
    expect(() => makeDict({ lazyConnect: 'yes' as unknown as boolean })).toThrow(
      /lazyConnect: expected a boolean, got "yes"/,
    );
  });
});

describe('RingDict and a stalled process', () => {
  it('a stalled event loop right after construction does not eject healthy nodes', async () => {
    const dict = makeDict({ commandTimeout: 300 });
    const events = collect(dict);
    const until = Date.now() + 450;
    while (Date.now() < until) {
      // A long synchronous task: nothing else runs meanwhile.
    }
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(events).toEqual([]);
    expect(dict.nodeStates().map((s) => s.ejections)).toEqual([0, 0, 0]);
    await dict.set('after-stall', 1);
    expect(await dict.get('after-stall')).toBe(1);
  });
});

describe('RingDict bad input', () => {
  const url = 'redis://127.0.0.1:1';
  it.each([
    [{ nodes: {} }, /no nodes configured/],
    [
      { nodes: { a: { capacity: 0, connection: url } } },
      /node "a": capacity must be a finite number > 0, got 0/,
    ],
    [{ nodes: { a: { capacity: Infinity, connection: url } } }, /node "a": capacity/],
    [{ nodes: { a: { capacity: 1 } } }, /node "a": connection is missing/],
    [{ nodes: { a: { capacity: 1, connection: 'http://x' } } }, /node "a".*redis:\/\//],
    // One slash parses as a URL with no host: a node that would never connect.
    [
      { nodes: { a: { capacity: 1, connection: 'redis:/127.0.0.1:1' } } },
      /node "a".connection: expected redis:\/\/ and then the host, got redis:\/1…/,
    ],
    [{ nodes: { a: { capacity: 1, url } } }, /node "a": unknown field "url"/],
    // ioredis leaves SCAN's pattern unprefixed: keys(), size() and clear() would find nothing.
    [
      { nodes: { a: { capacity: 1, connection: { port: 1, keyPrefix: 'kp:' } } } },
      /node "a".connection.keyPrefix: not supported by the ring .*use the dict's `prefix` option/,
    ],
    [
      { nodes: { a: { capacity: 1, connection: { hots: '10.0.0.5' } as RedisOptions } } },
      /node "a".connection: names no server \(no host, port, path or sentinels; ioredis would use localhost:6379\)/,
    ],
    [
      { nodes: { a: { capacity: 1, connection: { host: '127.0.0.1', port: 99999 } } } },
      /node "a".connection.port: expected a port number from 1 to 65535, got 99999/,
    ],
    [{ nodes: { a: { capacity: 1, connection: url } }, name: 5 }, /name: expected a string, got 5/],
    [
      { nodes: { a: { capacity: 1, connection: url } }, commandTimeout: Number.NaN },
      /commandTimeout: expected .*, got NaN/,
    ],
    [
      { nodes: JSON.parse(`{"__proto__": {"capacity": 1, "connection": "${url}"}}`) },
      /node "__proto__": this name cannot be used/,
    ],
    [
      { nodes: { a: { capacity: 1, connection: url }, b: { capacity: 1, connection: url } } },
      /node "b": connection 127.0.0.1:1 is the same server as node "a"/,
    ],
    [
      {
        nodes: {
          a: { capacity: 1, connection: { host: '127.0.0.1', port: 1 } },
          b: { capacity: 1, connection: url },
        },
      },
      /duplicate address/,
    ],
    [{ nodes: { a: { capacity: 1, connection: url } }, prefx: 'x' }, /unknown option "prefx"/],
    [
      { nodes: { a: { capacity: 1, connection: url } }, expire: 0 },
      /expire: expected a number of seconds > 0/,
    ],
    [{ nodes: { a: { capacity: 1, connection: url } }, expire: 'soon' }, /expire/],
    [{ nodes: { a: { capacity: 1, connection: url } }, retryRatio: 2 }, /retryRatio/],
    [{ nodes: { a: { capacity: 1, connection: url } }, commandTimeout: 0 }, /commandTimeout/],
    [{ nodes: { a: { capacity: 1, connection: url } }, codec: 'xml' }, /codec/],
    [
      { nodes: { a: { capacity: 1, connection: url } }, name: 'sessions', expire: -5 },
      /group "sessions": expire/,
    ],
    // Checked by the hash ring, which knows no group: the dict still names it.
    [
      { nodes: { a: { capacity: 1, connection: url } }, name: 'sessions', hashTag: '{' },
      /group "sessions": hashTag: expected two characters/,
    ],
    [
      { nodes: { a: { capacity: 1, connection: url } }, name: 'sessions', slices: 1.5 },
      /group "sessions": slices/,
    ],
    [
      { nodes: { a: { capacity: 1, connection: url } }, name: 'sessions', distribution: 'mod' },
      /group "sessions": distribution/,
    ],
    [
      { nodes: { a: { capacity: 1, connection: url } }, name: 'sessions', hashFunction: 'sha7' },
      /group "sessions": hashFunction: unknown hash function "sha7"/,
    ],
  ])('config %# throws RingConfigError naming the field', (options, message) => {
    const build = () => new RingDict(options as unknown as RingDictOptions);
    expect(build).toThrow(RingConfigError);
    expect(build).toThrow(message);
  });

  it('a key function that does not return a string', async () => {
    const dict = makeDict({ key: () => 42 as unknown as string });
    expect(() => dict.getEntry('x')).toThrow(RingKeyError);
    await expect(dict.get('x')).rejects.toThrow(/key function returned number for "x"/);
  });

  it('values the JSON codec cannot encode write nothing', async () => {
    const dict = makeDict({ prefix: 'enc:' });
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    await expect(dict.set('u', undefined)).rejects.toThrow(RingCodecError);
    await expect(dict.set('b', 10n)).rejects.toThrow(/Cannot encode the value for "enc:b".*BigInt/);
    await expect(dict.set('c', circular)).rejects.toThrow(/circular/i);
    for (const server of fixture.fleet.servers)
      expect(await redisCommand(server.port, 'DBSIZE')).toBe('0');
  });

  it('a stored value the codec cannot decode: an error naming the entry', async () => {
    const dict = makeDict({ prefix: 'dec:' });
    const server = serverOf(dict.aliveHash.locate('dec:bad')!);
    await redisCommand(server.port, 'SET', 'dec:bad', 'not json {');
    await expect(dict.get('bad')).rejects.toThrow(RingCodecError);
    await expect(dict.get('bad')).rejects.toThrow(/Cannot decode the value stored at "dec:bad"/);
    expect(dict.nodeStates().every((s) => s.alive)).toBe(true);
  });
});

describe('RingDict batch operations', () => {
  it('getMany / setMany / deleteMany keep input order and spread over nodes', async () => {
    const dict = makeDict<number>({ prefix: 'batch:' });
    const keys = Array.from({ length: 100 }, (_, i) => `k${i}`);
    await dict.setMany(
      keys.map((k, i) => [k, i] as const),
      { ttl: 30 },
    );
    const values = await dict.getMany([...keys, 'missing']);
    expect(values).toEqual([...keys.map((_, i) => i), undefined]);
    for (const server of fixture.fleet.servers) {
      expect(Number(await redisCommand(server.port, 'DBSIZE'))).toBeGreaterThan(10);
    }
    const owner = serverOf(dict.aliveHash.locate('batch:k5')!);
    const pttl = Number(await redisCommand(owner.port, 'PTTL', 'batch:k5'));
    expect(pttl).toBeGreaterThan(29_000);
    expect(await dict.deleteMany([...keys.slice(0, 40), 'missing'])).toBe(40);
    expect(await dict.size()).toBe(60);
  });

  it('a node dead mid-batch: its keys move to the next nodes, no error to the caller', async () => {
    const dict = makeDict<number>({ prefix: 'dead:' });
    const events = collect(dict);
    const keys = Array.from({ length: 100 }, (_, i) => `k${i}`);
    await dict.setMany(keys.map((k, i) => [k, i] as const));
    // Killed without the dict noticing first: the batch itself meets the dead node.
    serverOf('node1').hang();
    const values = await dict.getMany(keys);
    const lost = keys.filter((k) => dict.totalHash.locate(dict.getEntry(k)) === 'node1');
    expect(lost.length).toBeGreaterThan(10);
    values.forEach((value, i) => {
      if (lost.includes(keys[i])) expect(value).toBeUndefined();
      else expect(value).toBe(i);
    });
    expect(events.filter((e) => e.type === 'ejected').map((e) => e.node)).toEqual(['node1']);
    // Writes for node1's keys now land on its heirs.
    await dict.setMany(keys.map((k, i) => [k, i * 10] as const));
    expect(await dict.getMany(lost)).toEqual(lost.map((k) => Number(k.slice(1)) * 10));
    expect(await dict.deleteMany(keys)).toBe(100);
  });

  it('deleteMany counts the rounds a node answered before it died', async () => {
    const dict = makeDict<number>({ prefix: 'delcount:' });
    await dict.connect();
    const keys = Array.from({ length: 2_000 }, (_, i) => `k${i}`);
    await dict.setMany(keys.map((k, i) => [k, i] as const));
    // node1 answers its first round of DEL (250 keys), then its server is killed: the rest
    // of its keys go to the next nodes, which hold none of them.
    const node1 = (
      dict as unknown as { membership: { node(name: string): { client: Redis } } }
    ).membership.node('node1');
    const del = node1.client.del.bind(node1.client);
    let rounds = 0;
    vi.spyOn(node1.client, 'del').mockImplementation(async (...args: unknown[]) => {
      if (++rounds === 2) await serverOf('node1').kill();
      return (del as (...a: unknown[]) => Promise<number>)(...args);
    });
    const owned = keys.filter((k) => dict.totalHash.locate(dict.getEntry(k)) === 'node1');
    expect(owned.length).toBeGreaterThan(500);
    // Every key existed: the first round on node1 removed 250 of its keys, the other nodes
    // all of theirs.
    expect(await dict.deleteMany(keys)).toBe(keys.length - owned.length + 250);
  });

  it('a batch that takes longer than commandTimeout ejects no node that keeps answering', async () => {
    const commandTimeout = 300;
    const dict = makeDict<string>({ prefix: 'long:', commandTimeout });
    const events = collect(dict);
    await dict.connect();
    const value = 'v'.repeat(200);
    const entries = Array.from({ length: 120_000 }, (_, i) => [`k${i}`, value] as const);
    const start = performance.now();
    await dict.setMany(entries);
    // Long enough that a single deadline for the whole batch would have expired.
    expect(performance.now() - start).toBeGreaterThan(commandTimeout);
    expect(events).toEqual([]);
    expect(await dict.size()).toBe(entries.length);
  });

  it('getMany and deleteMany of 130 000 keys on one node: every value, no ejection, no stack overflow', async () => {
    const commandTimeout = 300;
    const dict = makeDict<string>({
      prefix: 'long1:',
      commandTimeout,
      nodes: { node0: { capacity: 1, connection: fixture.fleet.servers[0].url } },
    });
    const events = collect(dict);
    // Connected first: building and encoding 130 000 entries stalls this process for longer
    // than commandTimeout, which a connect still under way would take for a dead node.
    await dict.connect();
    const value = 'v'.repeat(200);
    const keys = Array.from({ length: 130_000 }, (_, i) => `k${i}`);
    await dict.setMany(keys.map((key) => [key, value] as const));
    const values = await dict.getMany(keys);
    expect(values.filter((v) => v === value)).toHaveLength(keys.length);
    // One DEL of them all would spread 130 000 arguments onto the stack.
    expect(await dict.deleteMany(keys)).toBe(keys.length);
    expect(events).toEqual([]);
    expect(await dict.size()).toBe(0);
  });

  it('a batch of several pipeline chunks per node stores every entry with its ttl', async () => {
    const dict = makeDict<number>({ prefix: 'big:' });
    // About 2.7 chunks per node: the chunk boundaries fall inside each node's share.
    const count = PIPELINE_CHUNK * 8 + 7;
    const keys = Array.from({ length: count }, (_, i) => `k${i}`);
    await dict.setMany(
      keys.map((k, i) => [k, i] as const),
      { ttl: 30 },
    );
    expect(await dict.getMany(keys)).toEqual(keys.map((_, i) => i));
    for (const server of fixture.fleet.servers) {
      expect(Number(await redisCommand(server.port, 'DBSIZE'))).toBeGreaterThan(PIPELINE_CHUNK);
    }
    const last = `big:k${count - 1}`;
    const pttl = Number(
      await redisCommand(serverOf(dict.aliveHash.locate(last)!).port, 'PTTL', last),
    );
    expect(pttl).toBeGreaterThan(29_000);
    expect(await dict.deleteMany(keys)).toBe(count);
  });

  it('a value that cannot be encoded writes nothing of the batch', async () => {
    const dict = makeDict({ prefix: 'enc:' });
    await expect(
      dict.setMany([
        ['a', 1],
        ['b', undefined],
      ]),
    ).rejects.toThrow(RingCodecError);
    for (const server of fixture.fleet.servers)
      expect(await redisCommand(server.port, 'DBSIZE')).toBe('0');
  });

  it('all nodes down: getMany answers onFail', async () => {
    const dict = makeDict<number, null>({ onFail: () => null });
    await Promise.all(fixture.fleet.servers.map((s) => s.kill()));
    expect(await dict.getMany(['a', 'b'])).toBeNull();
  });
});

describe('RingDict clearPrefix', () => {
  it('deletes only the entries under the given key prefix', async () => {
    for (const server of fixture.fleet.servers)
      await redisCommand(server.port, 'SET', 'b:x:foreign', '1');
    const dict = makeDict<number>({ prefix: 'a:' });
    for (let i = 0; i < 30; i++) {
      await dict.set(`x:${i}`, i);
      await dict.set(`y:${i}`, i);
    }
    expect(await dict.clearPrefix('x:')).toBe(30);
    expect(await dict.size()).toBe(30);
    expect(await dict.get('y:3')).toBe(3);
    for (const server of fixture.fleet.servers) {
      expect(await redisCommand(server.port, 'GET', 'b:x:foreign')).toBe('1');
    }
    await expect(makeDict().clearPrefix('')).rejects.toThrow(/non-empty prefix/);
  });
});

describe('RingDict raw access', () => {
  it('getRaw / setRaw bypass the codec and keep the ttl rules', async () => {
    const dict = makeDict<number>({ prefix: 'raw:', expire: 20 });
    await dict.setRaw('a', 'not json at all');
    expect(await dict.getRaw('a')).toBe('not json at all');
    expect(await dict.getRaw('missing')).toBeUndefined();
    await expect(dict.get('a')).rejects.toBeInstanceOf(RingCodecError);
    const server = serverOf(dict.aliveHash.locate('raw:a')!);
    const pttl = Number(await redisCommand(server.port, 'PTTL', 'raw:a'));
    expect(pttl).toBeGreaterThan(19_000);
    expect(pttl).toBeLessThanOrEqual(20_000);
  });
});

describe('RingDict and a stalled process, in flight', () => {
  it('a stall with commands in flight does not eject nodes whose replies were waiting', async () => {
    const dict = makeDict({ commandTimeout: 200 });
    const events = collect(dict);
    await dict.set('warm', 1);
    const pending = Array.from({ length: 30 }, (_, i) => dict.get(`stall${i}`));
    const until = Date.now() + 350;
    while (Date.now() < until) {
      // The process is busy: replies wait in the sockets, timers expire meanwhile.
    }
    const values = await Promise.all(pending);
    expect(values.every((v) => v === undefined)).toBe(true);
    expect(events).toEqual([]);
  });
});
