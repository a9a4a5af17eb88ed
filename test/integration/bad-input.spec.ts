import { crc32 } from 'node:zlib';
import type { RedisOptions } from 'ioredis';
import { afterAll, describe, expect, it, vi } from 'vitest';
import {
  RingArgumentError,
  RingCodecError,
  RingConfigError,
  RingDict,
  RingKeyError,
  type RingDictOptions,
  type RingEvent,
} from '../../lib/index.js';
import { internals } from '../helpers/internals.js';
import { redisCommand } from '../helpers/redis-command.js';
import { ringNodes, serverOf, startRedisServers } from '../helpers/redis-fleet.js';
import { stopAllRedisServers, type RedisServer } from '../helpers/redis-servers.js';
import { collect, useRingDicts } from '../helpers/ring-dicts.js';
import { dataKeyCount } from '../helpers/data-keys.js';

/**
 * Bad input, one test each: odd keys and huge values round-trip, foreign data under our
 * prefix is reported (never silently mangled), and Redis saying "no" (OOM, unknown command)
 * reaches the caller as that reply without ejecting a healthy node. Nothing may crash the
 * process and nothing may be silently lost: a write that did not happen rejects. Options,
 * keys and values RingDict cannot take are refused with an error naming them.
 */

const fixture = useRingDicts({ prefix: 'bad:', heartbeatInterval: 100, retryRatio: 0 });

afterAll(async () => {
  // The OOM test's own server, should that test have been cut short.
  await stopAllRedisServers();
});

/** The server that owns `key` in `dict` now. */
function ownerOf(dict: RingDict, key: string, servers = fixture.fleet.servers): RedisServer {
  return serverOf(servers, dict.aliveHash.locate(dict.getEntry(key))!);
}

async function allKeys(dict: RingDict): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of dict.keys()) keys.push(key);
  return keys;
}

function expectHealthy(dict: RingDict, events: RingEvent[]): void {
  expect(events).toEqual([]);
  for (const state of dict.nodeStates()) {
    expect(state, state.name).toMatchObject({ alive: true, ejections: 0 });
  }
}

describe('keys', () => {
  it('the empty key round-trips, with and without a prefix', async () => {
    const dict = fixture.dict<string>();
    const events = collect(dict);
    await dict.set('', 'empty');
    expect(await dict.get('')).toBe('empty');
    expect(await dict.has('')).toBe(true);
    expect(await allKeys(dict as RingDict)).toEqual(['']);
    expect(await redisCommand(ownerOf(dict as RingDict, '').port, 'GET', 'bad:')).toBe('"empty"');
    expect(await dict.delete('')).toBe(true);
    expect(await dict.get('')).toBeUndefined();

    // No prefix at all: the Redis key is the empty string, which Redis accepts.
    const bare = fixture.dict<string>({ prefix: '' });
    await bare.set('', 'really empty');
    expect(await bare.get('')).toBe('really empty');
    expect(await redisCommand(ownerOf(bare as RingDict, '').port, 'GET', '')).toBe(
      '"really empty"',
    );
    expect(await bare.delete('')).toBe(true);
    expectHealthy(dict as RingDict, events);
  });

  it('a 1 MB key round-trips and is listed by keys()', async () => {
    const dict = fixture.dict<number>();
    const events = collect(dict);
    const key = 'k'.repeat(1024 * 1024 - 1) + '!';
    await dict.set(key, 1);
    expect(await dict.get(key)).toBe(1);
    expect(await dict.get(key.slice(0, -1))).toBeUndefined();
    const keys = await allKeys(dict as RingDict);
    expect(keys).toHaveLength(1);
    expect(keys[0] === key).toBe(true);
    expect(await dict.size()).toBe(1);
    expect(await dict.delete(key)).toBe(true);
    expect(await dict.size()).toBe(0);
    expectHealthy(dict as RingDict, events);
  });

  const oddKeys = [
    '{',
    '}',
    '{}',
    '}{',
    '{a}b',
    'a{b}c',
    '{{a}}',
    'with space',
    ' leading',
    'trailing ',
    'line\nbreak',
    '\r\n',
    'tab\there',
    'quote"and\'apostrophe',
    'back\\slash',
    'glob*?[x]',
    'nul\u0000char',
    'é',
    'Ünïcödé',
    '中文键',
    'ключ',
    '🙂🚀',
    'e\u0301', // e + combining acute: not the same key as 'é'
  ];

  it.each([
    ['no hash tag', {}],
    ["hashTag '{}'", { hashTag: '{}' }],
  ] as const)('odd keys round-trip, each to itself only (%s)', async (_label, options) => {
    const dict = fixture.dict<string>(options);
    const events = collect(dict);
    for (const [i, key] of oddKeys.entries()) await dict.set(key, `value ${i} of ${key}`);
    for (const [i, key] of oddKeys.entries()) {
      expect(await dict.get(key), JSON.stringify(key)).toBe(`value ${i} of ${key}`);
      expect(await dict.has(key)).toBe(true);
    }
    expect((await allKeys(dict as RingDict)).sort()).toEqual([...oddKeys].sort());
    expect(await dict.getMany(oddKeys)).toEqual(oddKeys.map((key, i) => `value ${i} of ${key}`));
    for (const key of oddKeys) expect(await dict.delete(key), JSON.stringify(key)).toBe(true);
    expect(await dict.size()).toBe(0);
    expectHealthy(dict as RingDict, events);
  });

  it('a key with a lone surrogate is refused rather than aliased to another key', async () => {
    const dict = fixture.dict<string>();
    await dict.set('\uFFFD', 'replacement character');
    await expect(dict.set('\uD800', 'lone surrogate')).rejects.toThrow(/key/i);
    expect(await dict.get('\uFFFD')).toBe('replacement character');
  });

  // The single-key methods are plain functions returning a promise (no async frame on the
  // hot path): bad input must still reject that promise, as an async method's would, and
  // never throw at the call or send anything.
  it.each([
    ['get', (dict: RingDict<string>) => dict.get('\uD800'), /key/i],
    ['getRaw', (dict: RingDict<string>) => dict.getRaw('\uD800'), /key/i],
    ['has', (dict: RingDict<string>) => dict.has('\uD800'), /key/i],
    ['delete', (dict: RingDict<string>) => dict.delete('\uD800'), /key/i],
    ['setRaw', (dict: RingDict<string>) => dict.setRaw('\uD800', 'v'), /key/i],
    ['set, a bad ttl', (dict: RingDict<string>) => dict.set('probe', 'v', { ttl: -1 }), /ttl/],
    // A mistaken options argument would store the value with no TTL at all.
    [
      'set, a number for options',
      (dict: RingDict<string>) => dict.set('probe', 'v', 60 as unknown as { ttl: number }),
      /set: options must be an object such as \{ ttl: 60 \}, got number 60/,
    ],
    [
      'setRaw, a misspelt option',
      (dict: RingDict<string>) =>
        dict.setRaw('probe', 'v', { ttL: 60 } as unknown as { ttl: number }),
      /setRaw: unknown option "ttL"/,
    ],
    [
      'setMany, a number for options',
      (dict: RingDict<string>) => dict.setMany([['a', 'v']], 5 as unknown as { ttl: number }),
      /setMany: options must be an object/,
    ],
    [
      'set, a NaN ttl',
      (dict: RingDict<string>) => dict.set('probe', 'v', { ttl: Number.NaN }),
      /set: ttl: expected a number of seconds > 0, got NaN/,
    ],
    [
      'clearPrefix, a number',
      (dict: RingDict<string>) => dict.clearPrefix(5 as unknown as string),
      /clearPrefix: the prefix must be a string, got number 5/,
    ],
    [
      'set, a value JSON cannot hold',
      (dict: RingDict<string>) => dict.set('probe', undefined as unknown as string),
      /not JSON/,
    ],
    // An object without a string form of its own would be the key "[object Object]".
    ['get, a plain object', (dict: RingDict<string>) => dict.get({ id: 1 }), RingKeyError],
    [
      'set, an object with no string form',
      (dict: RingDict<string>) => dict.set(Object.create(null), 'v'),
      /is not a key: the default key takes a string, a finite number, a bigint, a Buffer or a Uint8Array/,
    ],
    // Lists must be arrays: a string would be taken for a list of its characters.
    [
      'getMany, a string',
      (dict: RingDict<string>) => dict.getMany('abc' as unknown as string[]),
      /getMany: keys must be an array, got "abc"/,
    ],
    [
      'deleteMany, a Set',
      (dict: RingDict<string>) => dict.deleteMany(new Set(['a']) as unknown as string[]),
      /deleteMany: keys must be an array, got an object \(Set\)/,
    ],
    [
      'setMany, null',
      (dict: RingDict<string>) => dict.setMany(null as unknown as []),
      /setMany: entries must be an iterable of \[key, value\] pairs, got object null/,
    ],
    [
      'setMany, an entry that is not a pair',
      (dict: RingDict<string>) => dict.setMany([['a', 'v'], null] as unknown as [string, string][]),
      /setMany: entry #1 must be a \[key, value\] pair/,
    ],
    [
      'visitRedis, a command that is not a string',
      (dict: RingDict<string>) => dict.visitRedis(123 as unknown as string, 'k'),
      RingArgumentError,
    ],
    [
      'visitRedis, an object argument',
      (dict: RingDict<string>) => dict.visitRedis('SET', 'k', { x: 1 } as unknown as string),
      /visitRedis SET: argument 1 must be a string, a number or a Buffer, got an object \(Object\)/,
    ],
  ])('%s: bad input rejects the returned promise and sends nothing', async (_, call, why) => {
    const dict = fixture.dict<string>();
    const inside = internals(dict);
    const sends = [...inside.membership.all()].map((node) => vi.spyOn(node, 'send'));
    let returned: Promise<unknown> | undefined;
    expect(() => (returned = call(dict))).not.toThrow();
    await expect(returned).rejects.toThrow(why);
    for (const send of sends) expect(send).not.toHaveBeenCalled();
    expect(inside.router.inFlight).toBe(0);
  });

  it.each([
    ['get', (dict: RingDict<string>) => dict.get('k')],
    ['set', (dict: RingDict<string>) => dict.set('k', 'v')],
  ])('a closed dict: %s rejects the returned promise, it does not throw', async (_, call) => {
    const dict = fixture.dict<string>();
    await dict.close();
    let returned: Promise<unknown> | undefined;
    expect(() => (returned = call(dict))).not.toThrow();
    await expect(returned).rejects.toThrow(/closed/);
  });

  it.each([
    ['get', (dict: RingDict<string>) => dict.get('explode')],
    ['set', (dict: RingDict<string>) => dict.set('explode', 'v')],
    ['delete', (dict: RingDict<string>) => dict.delete('explode')],
  ])('a hash function that throws: %s rejects the returned promise', async (_, call) => {
    // The ring is built from node names, so only request keys reach the throwing branch.
    const hashFunction = (s: string): number => {
      if (s.includes('explode')) throw new Error('hash exploded');
      return crc32(s);
    };
    const dict = fixture.dict<string>({ hashFunction });
    const events = collect(dict);
    let returned: Promise<unknown> | undefined;
    expect(() => (returned = call(dict))).not.toThrow();
    await expect(returned).rejects.toThrow('hash exploded');
    expectHealthy(dict as RingDict, events);
  });
});

describe('values', () => {
  it('a 10 MB value round-trips', async () => {
    // A 10 MB transfer takes ~100–250 ms on localhost here; commandTimeout must cover it, or
    // the node is taken for hung. Users storing large values must raise commandTimeout.
    const dict = fixture.dict<{ text: string; n: number }>({ commandTimeout: 2_000 });
    const events = collect(dict);
    const text = 'é'.repeat(2 * 1024 * 1024) + 'x'.repeat(6 * 1024 * 1024) + '🙂';
    const value = { text, n: 42 };
    await dict.set('big', value);
    const back = await dict.get('big');
    expect(back?.n).toBe(42);
    expect(back?.text.length).toBe(text.length);
    expect(back?.text === text).toBe(true);
    const stored = await redisCommand(ownerOf(dict as RingDict, 'big').port, 'STRLEN', 'bad:big');
    expect(Number(stored)).toBe(Buffer.byteLength(JSON.stringify(value)));
    expect(Number(stored)).toBeGreaterThan(10 * 1024 * 1024);
    expectHealthy(dict as RingDict, events);
  });

  it('a value under our prefix that is not JSON: RingCodecError naming the entry, get and entries', async () => {
    const dict = fixture.dict<number>();
    const events = collect(dict);
    for (let i = 0; i < 20; i++) await dict.set(`ok${i}`, i);
    // Someone else's writes under our prefix: not JSON, and not even a string.
    await redisCommand(ownerOf(dict as RingDict, 'alien').port, 'SET', 'bad:alien', 'not json {');
    await redisCommand(ownerOf(dict as RingDict, 'hash').port, 'HSET', 'bad:hash', 'f', 'v');

    const error = await dict.get('alien').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RingCodecError);
    expect((error as RingCodecError).entry).toBe('bad:alien');
    expect((error as Error).message).toMatch(/Cannot decode the value stored at "bad:alien"/);

    await expect(async () => {
      for await (const entry of dict.entries()) void entry;
    }).rejects.toThrow(/"bad:alien"/);
    await expect(async () => {
      for await (const value of dict.values()) void value;
    }).rejects.toBeInstanceOf(RingCodecError);
    // A hash under our prefix: Redis itself says WRONGTYPE, unchanged.
    await expect(dict.get('hash')).rejects.toThrow(/WRONGTYPE/);

    // The rest of the dict is unharmed, and the foreign value was not touched.
    expect(await dict.get('ok7')).toBe(7);
    expect(await dict.has('alien')).toBe(true);
    expect(await dict.size()).toBe(22);
    expect(await redisCommand(ownerOf(dict as RingDict, 'alien').port, 'GET', 'bad:alien')).toBe(
      'not json {',
    );
    expectHealthy(dict as RingDict, events);
  });
});

describe('Redis saying no', () => {
  it('OOM (maxmemory 1mb, noeviction): the caller gets the OOM reply, the node stays in', async () => {
    const small = await startRedisServers(1, {
      extraArgs: ['--maxmemory', '1mb', '--maxmemory-policy', 'noeviction'],
    });
    try {
      const dict = fixture.dict<string>({
        commandTimeout: 500,
        nodes: ringNodes(small.servers),
      });
      const events = collect(dict);
      const written: string[] = [];
      let oom: unknown;
      for (let i = 0; i < 1000 && oom === undefined; i++) {
        try {
          await dict.set(`fill${i}`, 'x'.repeat(8 * 1024));
          written.push(`fill${i}`);
        } catch (error) {
          oom = error;
        }
      }
      expect(oom, 'Redis never answered OOM').toBeDefined();
      expect((oom as Error).name).toBe('ReplyError');
      expect((oom as Error).message).toMatch(/^OOM command not allowed/);

      // Still OOM: a second write fails the same way — and fails, never silently dropped.
      await expect(dict.set('again', 'x'.repeat(64 * 1024))).rejects.toThrow(/^OOM/);
      await expect(
        dict.setMany([
          ['m1', 'x'.repeat(64 * 1024)],
          ['m2', 'y'.repeat(64 * 1024)],
        ]),
      ).rejects.toThrow(/^OOM/);
      expectHealthy(dict as RingDict, events);
      expect(dict.aliveHash.size).toBe(1);

      // Every write that resolved is there; reads and deletes still work under OOM.
      for (const key of written) expect(await dict.get(key)).toBe('x'.repeat(8 * 1024));
      expect(await dict.get('again')).toBeUndefined();
      expect(await dict.delete(written[0] ?? 'none')).toBe(written.length > 0);
      await dict.clear();
      // Redis' own overhead stays above 1 MB even when empty: lift the limit, as an operator
      // would, and the same node serves writes again — it was never ejected.
      await redisCommand(small.servers[0].port, 'CONFIG', 'SET', 'maxmemory', '0');
      await dict.set('after', 'room again');
      expect(await dict.get('after')).toBe('room again');
      expectHealthy(dict as RingDict, events);
    } finally {
      await small.stop();
    }
  });

  it('visitRedis with an unknown command: the ReplyError, no ejection', async () => {
    const dict = fixture.dict<string>();
    const events = collect(dict);
    await dict.set('k', 'v');
    const error = await dict.visitRedis('NOSUCHCMD', 'k', 'arg').catch((e: unknown) => e);
    expect((error as Error).name).toBe('ReplyError');
    expect((error as Error).message).toMatch(/unknown command/i);
    await expect(dict.visitRedis('GET', 'k', 'extra')).rejects.toThrow(/wrong number of arguments/);
    await expect(dict.visitRedis('', 'k')).rejects.toThrow();
    expectHealthy(dict as RingDict, events);
    expect(await dict.get('k')).toBe('v');
    expect(await dict.visitRedis('strlen', 'k')).toBe(3);
  });

  it('a send that throws at once: rejected, settled once, nothing left waiting', async () => {
    const dict = fixture.dict<string>();
    const events = collect(dict);
    await dict.set('k', 'v');
    const inside = internals(dict);
    // ioredis throws at once, not in the promise, for some arguments it cannot write; the
    // owner's client is made to do that for EXISTS, on its own instance only.
    const owner = inside.membership.node(dict.aliveHash.locate(dict.getEntry('k'))!);
    const answered = vi.spyOn(owner, 'answered');
    const exists = owner.client.exists;
    owner.client.exists = () => {
      throw new TypeError('refused as it was made');
    };
    try {
      let returned: Promise<unknown> | undefined;
      expect(() => (returned = dict.has('k'))).not.toThrow();
      await expect(returned).rejects.toThrow('refused as it was made');
    } finally {
      owner.client.exists = exists;
    }
    // Settled twice, the dict's in-flight count would go negative (batching off for good)
    // and the node's deadline watch would forget a command still waiting on the socket.
    expect(answered).toHaveBeenCalledTimes(1);
    expect(inside.router.inFlight).toBe(0);
    expectHealthy(dict as RingDict, events);
    expect(await dict.has('k')).toBe(true);
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
    const dict = fixture.dict({ prefix: '', key: () => 42 as unknown as string });
    expect(() => dict.getEntry('x')).toThrow(RingKeyError);
    await expect(dict.get('x')).rejects.toThrow(/key function returned number for "x"/);
  });

  it('values the JSON codec cannot encode write nothing', async () => {
    const dict = fixture.dict({ prefix: 'enc:' });
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    await expect(dict.set('u', undefined)).rejects.toThrow(RingCodecError);
    await expect(dict.set('b', 10n)).rejects.toThrow(/Cannot encode the value for "enc:b".*BigInt/);
    await expect(dict.set('c', circular)).rejects.toThrow(/circular/i);
    for (const server of fixture.fleet.servers) expect(await dataKeyCount(server.port)).toBe(0);
  });

  it('a stored value the codec cannot decode: an error naming the entry', async () => {
    const dict = fixture.dict({ prefix: 'dec:' });
    const server = fixture.serverOf(dict.aliveHash.locate('dec:bad')!);
    await redisCommand(server.port, 'SET', 'dec:bad', 'not json {');
    await expect(dict.get('bad')).rejects.toThrow(RingCodecError);
    await expect(dict.get('bad')).rejects.toThrow(/Cannot decode the value stored at "dec:bad"/);
    expect(dict.nodeStates().every((s) => s.alive)).toBe(true);
  });
});
