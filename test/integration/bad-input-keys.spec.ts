import { crc32 } from 'node:zlib';
import { describe, expect, it, vi } from 'vitest';
import { RingArgumentError, RingDict, RingKeyError } from '../../lib/index.js';
import { allKeys, expectHealthy, useBadInputDicts } from '../helpers/bad-input.js';
import { internals } from '../helpers/internals.js';
import { redisCommand } from '../helpers/redis-command.js';
import { collect } from '../helpers/ring-dicts.js';

/**
 * Bad input, keys: the empty key, a 1 MB key and odd ones (braces, whitespace, NUL, Unicode)
 * round-trip, each to itself only, and a key that cannot be encoded is refused rather than
 * aliased to another. A bad key, option, list or visitRedis argument rejects the promise the
 * method returned (it never throws at the call) and sends nothing; so do a closed dict and a
 * hash function that throws. Nothing may crash the process or eject a healthy node. Values,
 * Redis refusing a command and options RingDict cannot take are in bad-input.spec.ts.
 */

const fixture = useBadInputDicts();

describe('keys', () => {
  it('the empty key round-trips, with and without a prefix', async () => {
    const dict = fixture.dict<string>();
    const events = collect(dict);
    await dict.set('', 'empty');
    expect(await dict.get('')).toBe('empty');
    expect(await dict.has('')).toBe(true);
    expect(await allKeys(dict as RingDict)).toEqual(['']);
    expect(await redisCommand(fixture.ownerOf(dict as RingDict, '').port, 'GET', 'bad:')).toBe(
      '"empty"',
    );
    expect(await dict.delete('')).toBe(true);
    expect(await dict.get('')).toBeUndefined();

    // No prefix at all: the Redis key is the empty string, which Redis accepts.
    const bare = fixture.dict<string>({ prefix: '' });
    await bare.set('', 'really empty');
    expect(await bare.get('')).toBe('really empty');
    expect(await redisCommand(fixture.ownerOf(bare as RingDict, '').port, 'GET', '')).toBe(
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
    // Escaped bytes (a binary key's entry) that spell a character would be that character.
    await dict.set('é', 'precomposed');
    await expect(dict.set('\udcc3\udca9', 'its bytes')).rejects.toBeInstanceOf(RingKeyError);
    await expect(dict.get('\udcc3\udca9')).rejects.toBeInstanceOf(RingKeyError);
    expect(await dict.get('é')).toBe('precomposed');
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
      'set, a Date for options',
      (dict: RingDict<string>) => dict.set('probe', 'v', new Date() as unknown as { ttl: number }),
      /set: options must be an object such as \{ ttl: 60 \}, got an object \(Date\)/,
    ],
    [
      'set, a ttl not awaited',
      (dict: RingDict<string>) =>
        dict.set('probe', 'v', Promise.resolve({ ttl: 60 }) as unknown as { ttl: number }),
      /set: options must be an object such as \{ ttl: 60 \}, got an object \(Promise\)/,
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
    // Sent as U+FFFD, the SCAN would delete the keys that begin with that character instead.
    [
      'clearPrefix, a lone surrogate',
      (dict: RingDict<string>) => dict.clearPrefix('\uD800'),
      /clearPrefix: the prefix "\\ud800" holds a lone surrogate/,
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
    // A pair without its value, or with a third element, is no pair: nothing is written.
    [
      'setMany, a one-element pair',
      (dict: RingDict<string>) =>
        dict.setMany([['a', 'v'], ['b']] as unknown as [string, string][]),
      /setMany: entry #1 must be a \[key, value\] pair, got an object \(Array\)/,
    ],
    [
      'setMany, a three-element pair',
      (dict: RingDict<string>) => dict.setMany([['a', 'v', 'w']] as unknown as [string, string][]),
      /setMany: entry #0 must be a \[key, value\] pair/,
    ],
    // A misspelt option would be ignored: `clear({ froce: true })` cleared the dict.
    [
      'clear, a misspelt option',
      (dict: RingDict<string>) => dict.clear({ froce: true } as unknown as { force: boolean }),
      /clear: unknown option "froce"; the option is force/,
    ],
    [
      'clear, force not a boolean',
      (dict: RingDict<string>) => dict.clear({ force: 'yes' } as unknown as { force: boolean }),
      /clear: force must be true or false, got "yes"/,
    ],
    [
      'ping, a number for options',
      (dict: RingDict<string>) => dict.ping(5 as unknown as { timeout: number }),
      /ping: options must be an object such as \{ timeout: 500 \}, got number 5/,
    ],
    [
      'ping, a misspelt option',
      (dict: RingDict<string>) => dict.ping({ tiemout: 5 } as unknown as { timeout: number }),
      /ping: unknown option "tiemout"; the option is timeout/,
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
      /visitRedis SET: argument 1 must be a well-formed string, a finite number or a Buffer, got an object \(Object\)/,
    ],
    // BLPOP 0 held each node past commandTimeout in turn: every node was ejected.
    [
      'visitRedis, a blocking command',
      (dict: RingDict<string>) => dict.visitRedis('blpop', 'queue', 0),
      /visitRedis: blpop is refused: it blocks the node's shared connection or changes it/,
    ],
    [
      'visitRedis, a command that changes the connection',
      (dict: RingDict<string>) => dict.visitRedis('SUBSCRIBE', 'news'),
      /visitRedis: SUBSCRIBE is refused/,
    ],
    [
      'visitRedis, NaN',
      (dict: RingDict<string>) => dict.visitRedis('SET', 'k', Number.NaN),
      /visitRedis SET: argument 1 must be a well-formed string, a finite number or a Buffer, got number NaN/,
    ],
    [
      'visitRedis, a lone surrogate',
      (dict: RingDict<string>) => dict.visitRedis('SET', 'k', 'a\uDC00'),
      /visitRedis SET: argument 1 must be a well-formed string/,
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
