import { gunzipSync } from 'node:zlib';
import { Redis } from 'ioredis';
import { Packr } from 'msgpackr';
import { afterEach, describe, expect, it } from 'vitest';
import {
  RingCodecError,
  RingConfigError,
  RingDict,
  RingRedisModule,
  RingRedisService,
  resolveCodec,
  type RingDictOptions,
} from '../../lib/index.js';
import { zstdFunctions } from '../../lib/core/codec-compression.js';
import { useRingDicts } from '../helpers/ring-dicts.js';
import { Test } from '@nestjs/testing';

/**
 * The msgpack codec and compression against real servers: what comes back, and the bytes
 * that Redis holds (read with a client of its own, not through the dict).
 */

const fixture = useRingDicts({ heartbeatInterval: 100, commandTimeout: 500, retryRatio: 0 });

const clients: Redis[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.disconnect();
});

/** The bytes Redis holds for `key` of `dict`, read on its owning node. */
async function storedBytes(dict: RingDict<unknown, unknown>, key: string): Promise<Buffer | null> {
  const entry = dict.getEntry(key);
  const server = fixture.serverOf(dict.aliveHash.locate(entry)!);
  const client = new Redis(server.port, '127.0.0.1', { lazyConnect: true });
  clients.push(client);
  return client.getBuffer(entry);
}

/** A value JSON cannot carry. */
function richValue() {
  return {
    at: new Date('2026-12-06T10:00:00.123Z'),
    counts: new Map<unknown, unknown>([
      ['a', 1],
      [2, { nested: new Date(0) }],
    ]),
    tags: new Set(['x', 'y']),
    small: 42n,
    huge: 2n ** 100n,
    negative: -(2n ** 63n),
    bytes: Buffer.from([0, 1, 2, 255]),
    typed: new Uint8Array([9, 8, 7]),
    list: [1, 'two', null, true, { deep: [new Date(1)] }],
    text: 'héllo ✓',
  };
}

describe("codec: 'msgpack'", () => {
  it('round-trips Date, Map, Set, BigInt and binary through Redis', async () => {
    const dict = fixture.dict({ codec: 'msgpack', prefix: 'mp:' });
    const value = richValue();
    await dict.set('rich', value);
    const back = (await dict.get('rich')) as ReturnType<typeof richValue>;
    expect(back).toEqual(value);
    expect(back.at).toBeInstanceOf(Date);
    expect(back.counts).toBeInstanceOf(Map);
    expect(back.counts.get(2)).toEqual({ nested: new Date(0) });
    expect(back.tags).toBeInstanceOf(Set);
    expect(typeof back.small).toBe('bigint');
    expect(back.huge).toBe(2n ** 100n);
    expect(Buffer.isBuffer(back.bytes)).toBe(true);
    expect(back.typed).toBeInstanceOf(Uint8Array);
    // Batches and iteration read the bytes too.
    await dict.setMany([['other', { when: new Date(5) }]]);
    expect(await dict.getMany(['rich', 'other', 'none'])).toEqual([
      value,
      { when: new Date(5) },
      undefined,
    ]);
    const entries = new Map<string, unknown>();
    for await (const [key, v] of dict) entries.set(key, v);
    expect(entries).toEqual(
      new Map<string, unknown>([
        ['rich', value],
        ['other', { when: new Date(5) }],
      ]),
    );
  });

  it('stores msgpack bytes that msgpackr reads: standard scalars, a timestamp for a Date', async () => {
    const dict = fixture.dict({ codec: 'msgpack' });
    await dict.set('s', 'hi');
    await dict.set('d', new Date(0));
    await dict.set('n', 1);
    expect((await storedBytes(dict, 's'))!.toString('hex')).toBe('a26869');
    expect((await storedBytes(dict, 'd'))!.toString('hex')).toBe('d6ff00000000');
    expect((await storedBytes(dict, 'n'))!.toString('hex')).toBe('01');
    await dict.set('rich', richValue());
    const reader = new Packr({ mapsAsObjects: false, moreTypes: true, useBigIntExtension: true });
    expect(reader.unpack((await storedBytes(dict, 'rich'))!)).toEqual(richValue());
  });

  it('names the entry when the stored bytes are not one msgpack value', async () => {
    const dict = fixture.dict({ codec: 'msgpack', prefix: 'bad:' });
    // Cut short, and JSON written by a dict of the json codec (no silent 123 from its "{").
    await dict.setRaw('cut', Buffer.from([0x92, 0x01]));
    await fixture.dict({ prefix: 'bad:' }).set('json', { a: 1 });
    for (const key of ['cut', 'json']) {
      await expect(dict.get(key)).rejects.toThrow(RingCodecError);
      await expect(dict.get(key)).rejects.toThrow(`"bad:${key}"`);
    }
  });

  // msgpackr writes a function as undefined: `{ a: fn }` read back `{}`, and a function alone
  // made a key that `has` finds and `get` answers undefined.
  it('refuses a function anywhere in a value, writing nothing', async () => {
    const dict = fixture.dict({ codec: 'msgpack', prefix: 'fn:' });
    const fn = () => 1;
    const values = [fn, { a: 1, run: fn }, [1, fn], new Map([['k', fn]])];
    for (const [i, value] of values.entries()) {
      await expect(dict.set(`k${i}`, value)).rejects.toThrow(RingCodecError);
      await expect(dict.set(`k${i}`, value)).rejects.toThrow('a function cannot be stored');
      expect(await storedBytes(dict, `k${i}`)).toBeNull();
    }
  });

  // msgpackr writes a lone surrogate as U+FFFD ('\uD800' and '\uDBFF' were one value) and
  // reads a key "__proto__" back as "__proto_": refused, as the json codec refuses neither.
  it('refuses what msgpackr would change, writing nothing; keeps what only looks like it', async () => {
    for (const compression of [undefined, { threshold: 16 }]) {
      const dict = fixture.dict({ codec: 'msgpack', prefix: 'alter:', compression });
      const proto = JSON.parse('{"__proto__": {"admin": true}, "id": 1}') as unknown;
      const refused: [unknown, string][] = [
        ['a\uD800b', 'a lone surrogate'],
        [{ name: 'x'.repeat(100) + '\uDC00' }, 'a lone surrogate'],
        [new Map([['\uDBFF', 1]]), 'a lone surrogate'],
        [[new Set(['ok', '\uD800'])], 'a lone surrogate'],
        [{ nested: [proto] }, 'an object key "__proto__"'],
        [{ note: '\uFFFD', error: new Error('x\uDBFF') }, 'a lone surrogate'],
        [new Error('ok', { cause: new AggregateError([new Error('\uD800')]) }), 'a lone surrogate'],
        [new RegExp('a\uD800b'), 'a lone surrogate'],
      ];
      for (const [i, [value, why]] of refused.entries()) {
        const attempt = dict.set(`k${i}`, value);
        await expect(attempt).rejects.toThrow(RingCodecError);
        await expect(attempt).rejects.toThrow(why);
        expect(await storedBytes(dict, `k${i}`)).toBeNull();
      }
      const kept = [
        'a genuine \uFFFD',
        { user_id: 1, __proto_: 2, 'ÿ\uFFFD': '€' },
        Buffer.from([0xef, 0xbf, 0xbd, 0x5f, 0x5f]),
      ];
      for (const [i, value] of kept.entries()) {
        await dict.set(`ok${i}`, value);
        expect(await dict.get(`ok${i}`)).toEqual(value);
      }
    }
  });

  it('is what resolveCodec("msgpack") answers', () => {
    const codec = resolveCodec('msgpack');
    expect(codec.binary).toBe(true);
    const bytes = codec.encode(new Map([[1, 2]]));
    expect(codec.decode(bytes as Buffer & string)).toEqual(new Map([[1, 2]]));
  });
});

describe('compression', () => {
  const big = {
    html: '<p>'.repeat(100) + 'x'.repeat(3000),
    n: Array.from({ length: 200 }, (_, i) => i),
  };

  it('leaves values under the threshold byte for byte as the json codec writes them', async () => {
    const plain = fixture.dict({ prefix: 'p:' });
    const compressed = fixture.dict({ prefix: 'c:', compression: { threshold: 1024 } });
    const small = { a: [1, 2], s: 'é' };
    await plain.set('k', small);
    await compressed.set('k', small);
    const json = Buffer.from(JSON.stringify(small));
    expect(await storedBytes(plain, 'k')).toEqual(json);
    expect(await storedBytes(compressed, 'k')).toEqual(json);
    expect(await compressed.get('k')).toEqual(small);
  });

  it('gzips values at or over the threshold: a .gz any client can read', async () => {
    const dict = fixture.dict({ compression: { threshold: 1024 } });
    await dict.set('big', big);
    const stored = (await storedBytes(dict, 'big'))!;
    const json = JSON.stringify(big);
    expect(stored.subarray(0, 2).toString('hex')).toBe('1f8b');
    expect(stored.length).toBeLessThan(json.length / 5);
    expect(gunzipSync(stored).toString('utf8')).toBe(json);
    expect(await dict.get('big')).toEqual(big);
    expect(await dict.getMany(['big'])).toEqual([big]);
  });

  it('compresses the threshold exactly, not a byte less', async () => {
    const dict = fixture.dict({ codec: 'string', compression: { threshold: 100 } });
    await dict.set('at', 'a'.repeat(100));
    await dict.set('under', 'a'.repeat(99));
    expect((await storedBytes(dict, 'at'))!.subarray(0, 2).toString('hex')).toBe('1f8b');
    expect((await storedBytes(dict, 'under'))!.toString()).toBe('a'.repeat(99));
    expect(await dict.get('at')).toBe('a'.repeat(100));
  });

  it('stores a value as it is when compressing would not make it smaller', async () => {
    const dict = fixture.dict<Buffer>({
      compression: { threshold: 0 },
      codec: { binary: true, encode: (v) => v, decode: (raw) => raw },
    });
    const noise = Buffer.from(Array.from({ length: 64 }, (_, i) => (i * 97 + 13) % 256));
    await dict.set('noise', noise);
    expect(await storedBytes(dict, 'noise')).toEqual(noise);
    expect(await dict.get('noise')).toEqual(noise);
  });

  it('works under msgpack, and reads values stored before it was turned on', async () => {
    const before = fixture.dict({ codec: 'msgpack', prefix: 'm:' });
    await before.set('old', richValue());
    const dict = fixture.dict({ codec: 'msgpack', prefix: 'm:', compression: { threshold: 64 } });
    const value = { ...richValue(), text: 'lorem ipsum '.repeat(50) };
    await dict.set('new', value);
    const stored = (await storedBytes(dict, 'new'))!;
    expect(stored.subarray(0, 2).toString('hex')).toBe('1f8b');
    expect(await dict.get('new')).toEqual(value);
    expect(await dict.get('old')).toEqual(richValue());
    // And the other way round: a dict without compression cannot read it, and says so.
    await expect(before.get('new')).rejects.toThrow(RingCodecError);
  });

  // The string codec took the gzip bytes, read as text, for the value: garbage, without a word.
  it('under the string codec too, a dict without compression cannot read it, and says so', async () => {
    const packed = fixture.dict<string>({
      codec: 'string',
      prefix: 's:',
      compression: { threshold: 100 },
    });
    const plain = fixture.dict<string>({ codec: 'string', prefix: 's:' });
    await packed.set('k', 'lorem ipsum '.repeat(400));
    await expect(plain.get('k')).rejects.toThrow(RingCodecError);
    await expect(plain.get('k')).rejects.toThrow(
      /"s:k": it is gzip-compressed: read it with the compression option/,
    );
    // Text that merely holds U+FFFD or control characters is text.
    await plain.set('text', 'a\ufffd\u001f\ufffd\b');
    expect(await plain.get('text')).toBe('a\ufffd\u001f\ufffd\b');
  });

  it.runIf(zstdFunctions() !== undefined)('zstd: stores a .zst frame', async () => {
    const dict = fixture.dict({ compression: { threshold: 1024, algorithm: 'zstd' } });
    await dict.set('big', big);
    expect((await storedBytes(dict, 'big'))!.subarray(0, 4).toString('hex')).toBe('28b52ffd');
    expect(await dict.get('big')).toEqual(big);
  });

  it('applies to a Nest group through defaults and groupOptions', async () => {
    const ref = await Test.createTestingModule({
      imports: [
        RingRedisModule.forRoot({
          groups: {
            a: { n0: fixture.fleet.servers[0].url },
            b: { n0: fixture.fleet.servers[1].url },
          },
          defaults: { codec: 'msgpack', compression: { threshold: 64 } },
          groupOptions: { b: { compression: false } },
        }),
      ],
    }).compile();
    await ref.init();
    try {
      const rings = ref.get(RingRedisService);
      const value = { at: new Date(3), text: 'z'.repeat(500) };
      for (const group of ['a', 'b']) await rings.getOrThrow(group).set('k', value);
      const raw = async (i: number) => {
        const client = new Redis(fixture.fleet.servers[i].port, '127.0.0.1');
        clients.push(client);
        return (await client.getBuffer('k'))!;
      };
      expect((await raw(0)).subarray(0, 2).toString('hex')).toBe('1f8b');
      expect((await raw(1)).length).toBeGreaterThan(500);
      expect(await rings.getOrThrow('a').get('k')).toEqual(value);
      expect(await rings.getOrThrow('b').get('k')).toEqual(value);
    } finally {
      await ref.close();
    }
  });
});

describe('codec and compression options, refused', () => {
  const nodes = { n0: 'redis://127.0.0.1:1' };
  it.each<[string, Partial<RingDictOptions>, RegExp]>([
    [
      'an unknown codec name',
      { codec: 'cbor' as never },
      /codec: expected 'json', 'string', 'msgpack' or \{ encode, decode \}, got "cbor"/,
    ],
    [
      'compression true',
      { compression: true as never },
      /compression: expected \{ threshold, algorithm\?, level\? \} or false, got true/,
    ],
    [
      'no threshold',
      { compression: {} as never },
      /compression.threshold: expected a whole number of bytes ≥ 0, got undefined/,
    ],
    [
      'a negative threshold',
      { compression: { threshold: -1 } },
      /compression.threshold: .* got -1/,
    ],
    [
      'a fractional threshold',
      { compression: { threshold: 1.5 } },
      /compression.threshold: .* got 1.5/,
    ],
    [
      'an unknown algorithm',
      { compression: { threshold: 1, algorithm: 'lz4' as never } },
      /compression.algorithm: expected 'gzip' or 'zstd', got "lz4"/,
    ],
    [
      'a gzip level out of range',
      { compression: { threshold: 1, level: 10 } },
      /compression.level: expected an integer from 1 to 9 for gzip, got 10/,
    ],
    [
      'a misspelt field',
      { compression: { treshold: 1 } as never },
      /compression: unknown option "treshold"; known options: threshold, algorithm, level/,
    ],
  ])('%s, naming the group and the field', (_what, options, message) => {
    const make = () => new RingDict({ nodes, name: 'cache', lazyConnect: true, ...options });
    expect(make).toThrow(RingConfigError);
    expect(make).toThrow(/^group "cache": /);
    expect(make).toThrow(message);
  });

  it.runIf(zstdFunctions() === undefined)('zstd on a Node without it, naming the version', () => {
    expect(
      () =>
        new RingDict({
          nodes,
          lazyConnect: true,
          compression: { threshold: 1, algorithm: 'zstd' },
        }),
    ).toThrow(/compression.algorithm: 'zstd' needs Node 22.15 or later \(this is v\d+/);
  });
});
