import type { RedisOptions } from 'ioredis';
import { describe, expect, it, vi } from 'vitest';
import {
  RingArgumentError,
  RingCodecError,
  RingConfigError,
  RingDict,
  RingKeyError,
  type RingDictOptions,
} from '../../lib/index.js';
import { expectHealthy, useBadInputDicts } from '../helpers/bad-input.js';
import { internals } from '../helpers/internals.js';
import { redisCommand } from '../helpers/redis-command.js';
import { ringNodes, startRedisServers } from '../helpers/redis-fleet.js';
import { collect } from '../helpers/ring-dicts.js';
import { dataKeyCount } from '../helpers/data-keys.js';

/**
 * Bad input, one test each: huge values round-trip, foreign data under our prefix is
 * reported (never silently mangled), and Redis saying "no" (OOM, unknown command) reaches the
 * caller as that reply without ejecting a healthy node. Nothing may crash the process and
 * nothing may be silently lost: a write that did not happen rejects. Options, key functions
 * and values RingDict cannot take are refused with an error naming them. Bad keys and bad
 * arguments to each method are in bad-input-keys.spec.ts.
 */

const fixture = useBadInputDicts();

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
    const stored = await redisCommand(
      fixture.ownerOf(dict as RingDict, 'big').port,
      'STRLEN',
      'bad:big',
    );
    expect(Number(stored)).toBe(Buffer.byteLength(JSON.stringify(value)));
    expect(Number(stored)).toBeGreaterThan(10 * 1024 * 1024);
    expectHealthy(dict as RingDict, events);
  });

  it('a value under our prefix that is not JSON: RingCodecError naming the entry, get and entries', async () => {
    const dict = fixture.dict<number>();
    const events = collect(dict);
    for (let i = 0; i < 20; i++) await dict.set(`ok${i}`, i);
    // Someone else's writes under our prefix: not JSON, and not even a string.
    await redisCommand(
      fixture.ownerOf(dict as RingDict, 'alien').port,
      'SET',
      'bad:alien',
      'not json {',
    );
    await redisCommand(
      fixture.ownerOf(dict as RingDict, 'hash').port,
      'HSET',
      'bad:hash',
      'f',
      'v',
    );

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
    expect(
      await redisCommand(fixture.ownerOf(dict as RingDict, 'alien').port, 'GET', 'bad:alien'),
    ).toBe('not json {');
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

  // Redis answers a longer value with a protocol error and closes the connection: the reads in
  // flight on it failed over (misses) and the node was ejected; a setMany lost the writes queued
  // behind it, some of them, without a word.
  it('a value longer than a server accepts (proto-max-bulk-len): refused before it is sent', async () => {
    const strict = await startRedisServers(2, { extraArgs: ['--proto-max-bulk-len', '1mb'] });
    try {
      const dict = fixture.dict<string>({
        commandTimeout: 2_000,
        nodes: ringNodes(strict.servers),
      });
      const events = collect(dict);
      await dict.connect();
      const huge = 'x'.repeat(2 * 1024 * 1024);
      const owner = dict.aliveHash.locate(dict.getEntry('huge'));
      const beside = Array.from({ length: 200 }, (_, i) => `k${i}`)
        .filter((key) => dict.aliveHash.locate(dict.getEntry(key)) === owner)
        .slice(0, 20);
      for (const key of beside) await dict.set(key, key);
      const [set, ...reads] = await Promise.allSettled([
        dict.set('huge', huge),
        ...beside.map((key) => dict.get(key)),
      ]);
      const refused =
        /: the value for ".*huge" takes 2097154 bytes, more than the 1048576 a node's server accepts \(its proto-max-bulk-len\)\. Nothing was written\.$/;
      expect(set.status === 'rejected' && set.reason).toBeInstanceOf(RingArgumentError);
      expect(set.status === 'rejected' && (set.reason as Error).message).toMatch(refused);
      expect(reads.map((read) => read.status === 'fulfilled' && read.value)).toEqual(beside);
      // A batch with one such value writes nothing at all.
      const batch = dict.setMany([
        ['a', '1'],
        ['huge', huge],
        ['b', '2'],
      ]);
      await expect(batch).rejects.toBeInstanceOf(RingArgumentError);
      await expect(batch).rejects.toThrow(/^setMany: the value for ".*huge" takes 2097154 bytes/);
      expect(await dict.getMany(['a', 'huge', 'b'])).toEqual([undefined, undefined, undefined]);
      // Counted in UTF-8 bytes: 'é' takes two.
      await dict.set('fits', 'é'.repeat(400_000));
      expect(await dict.get('fits')).toBe('é'.repeat(400_000));
      await expect(dict.set('over', 'é'.repeat(600_000))).rejects.toThrow(/takes 1200002 bytes/);
      expectHealthy(dict as RingDict, events);
    } finally {
      await strict.stop();
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
    // ioredis threw a URIError naming nothing as the node was made.
    [
      { nodes: { a: { capacity: 1, connection: 'redis://user:pw%zz@127.0.0.1:1' } } },
      /node "a".connection: the URL's password is not valid percent-encoding \(write a % as %25\)$/,
    ],
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

  // `null` is not "left out": `heartbeatInterval: null` meant as "off" must not become 1000 ms.
  it.each([
    'retryRatio',
    'heartbeatInterval',
    'commandTimeout',
    'connectTimeout',
    'handoffLimit',
    'handoff',
    'handoffOverflow',
    'warmUpWindow',
    'replicas',
  ])('%s: null is refused, not taken for the default', (field) => {
    const options = { nodes: { a: { capacity: 1, connection: url } }, [field]: null };
    const build = () => new RingDict(options as unknown as RingDictOptions);
    expect(build).toThrow(RingConfigError);
    expect(build).toThrow(new RegExp(`${field}: expected .*, got null`));
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

  it('values Redis cannot store as they are write nothing: not a string or Buffer, a lone surrogate', async () => {
    const raw = fixture.dict({ prefix: 'raw:' });
    for (const value of [5, null, undefined, {}]) {
      await expect(raw.setRaw('k', value as unknown as string)).rejects.toThrow(
        /^setRaw: the value for "raw:k": got \w+, expected a string or a Buffer\. Nothing was written\.$/,
      );
    }
    // Without a UTF-8 form, Redis would store U+FFFD: another value, without a word.
    await expect(raw.setRaw('k', 'a\ud800b')).rejects.toThrow(RingArgumentError);
    const text = fixture.dict<string>({ prefix: 'str:', codec: 'string' });
    await expect(text.set('k', 'a\ud800b')).rejects.toThrow(/lone surrogate.*Nothing was written/);
    // Compressed, it was stored as U+FFFD all the same: its UTF-8 form was taken first.
    const packed = fixture.dict<string>({
      prefix: 'gz:',
      codec: 'string',
      compression: { threshold: 100 },
    });
    const long = `${'a'.repeat(2000)}\ud800${'b'.repeat(2000)}`;
    await expect(packed.set('k', long)).rejects.toThrow(/lone surrogate.*Nothing was written/);
    for (const server of fixture.fleet.servers) expect(await dataKeyCount(server.port)).toBe(0);
    // The JSON codec escapes it, so the value comes back whole.
    const json = fixture.dict<string>({ prefix: 'json:' });
    await json.set('k', 'a\ud800b');
    expect(await json.get('k')).toBe('a\ud800b');
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
