import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { RingArgumentError, RingKeyError, type RingDict } from '../../lib/index.js';
import { useRingDicts } from '../helpers/ring-dicts.js';
import { until } from '../helpers/wait.js';

/**
 * The default key: a string as it is; a finite number or a bigint by its decimal string (as
 * the original's `str`: 1 and '1' are one key by design); a Buffer or Uint8Array by its bytes,
 * exactly, in Redis too. Anything else is refused: no two distinct keys share an entry.
 */
const fixture = useRingDicts({ prefix: 'key:', commandTimeout: 300, heartbeatInterval: 50 });

/** The raw key names every server holds, as bytes (hex), the ring's own keys left out. */
async function rawKeys(): Promise<string[]> {
  const hex: string[] = [];
  for (const server of fixture.fleet.servers) {
    const client = new Redis({ port: server.port, host: '127.0.0.1', lazyConnect: true });
    try {
      await client.connect();
      for (const key of await client.keysBuffer('key:*')) hex.push(key.toString('hex'));
    } finally {
      client.disconnect();
    }
  }
  return hex.sort();
}

async function allKeys(dict: RingDict<string>): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of dict.keys()) keys.push(key);
  return keys.sort();
}

describe('the default key', () => {
  it('binary keys are their bytes: [0xff] and [0xfe] are two entries, in Redis too', async () => {
    const dict = fixture.dict<string>();
    const ff = Buffer.of(0xff);
    const fe = Buffer.of(0xfe);
    const cesu = Uint8Array.of(0xed, 0xa0, 0x80);
    await dict.set(ff, 'ff');
    await dict.set(fe, 'fe');
    await dict.set(cesu, 'cesu');
    expect(await dict.get(ff)).toBe('ff');
    expect(await dict.get(fe)).toBe('fe');
    expect(await dict.get(Buffer.of(0xed, 0xa0, 0x80))).toBe('cesu');
    expect(await dict.get('\ufffd')).toBeUndefined(); // what a lossy decoding made of them all
    const prefix = Buffer.from('key:').toString('hex');
    expect(await rawKeys()).toEqual([`${prefix}eda080`, `${prefix}fe`, `${prefix}ff`]);
    // Listed, deleted, counted like any key.
    expect(await dict.size()).toBe(3);
    const listed = await allKeys(dict);
    expect(listed).toHaveLength(3);
    for (const key of listed) expect(await dict.get(key)).toBeDefined();
    expect(await dict.getMany([ff, fe, Buffer.of(0xfd)])).toEqual(['ff', 'fe', undefined]);
    expect(await dict.delete(fe)).toBe(true);
    expect(await dict.get(fe)).toBeUndefined();
    expect(await dict.get(ff)).toBe('ff');
  });

  it('a binary key that is valid UTF-8 is the string it spells; a Uint8Array is not its list', async () => {
    const dict = fixture.dict<string>();
    await dict.set(Buffer.from('héllo'), 'bytes');
    expect(await dict.get('héllo')).toBe('bytes');
    await dict.set(Uint8Array.of(1, 2), 'two bytes');
    await dict.set('1,2', 'a string');
    expect(await dict.get(Uint8Array.of(1, 2))).toBe('two bytes');
    expect(await dict.get('1,2')).toBe('a string');
  });

  it('numbers and bigints by their decimal string: 1 and "1" are one key by design; -0 is 0', async () => {
    const dict = fixture.dict<string>();
    await dict.set(1, 'one');
    expect(await dict.get('1')).toBe('one');
    await dict.set(-0, 'zero');
    expect(await dict.get(0)).toBe('zero');
    await dict.set(10n, 'ten');
    expect(await dict.get(10)).toBe('ten');
    expect(dict.getEntry(2.5)).toBe('key:2.5');
  });

  it.each([
    ['an array', ['a', 'b']],
    ['undefined', undefined],
    ['null', null],
    ['a symbol', Symbol('x')],
    ['a Date', new Date(0)],
    ['an invalid Date', new Date(NaN)],
    ['a plain object', { id: 1 }],
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['a boolean', true],
    ['a boxed string', new String('ab')],
  ])('%s is refused with a RingArgumentError, nothing sent', async (_, key) => {
    const dict = fixture.dict<string>();
    await expect(dict.set(key, 'v')).rejects.toBeInstanceOf(RingArgumentError);
    await expect(dict.get(key)).rejects.toBeInstanceOf(RingKeyError);
    expect(() => dict.getEntry(key)).toThrow(RingKeyError);
  });

  it('a binary key written while its node is out is invalidated when it returns, bytes and all', async () => {
    const dict = fixture.dict<string>();
    const events: string[] = [];
    dict.events$.subscribe((e) => events.push(`${e.type} ${e.node}`));
    // A binary key that node0 owns.
    let key = Buffer.of(0xff, 0);
    for (let i = 0; dict.totalHash.locate(dict.getEntry(key)) !== 'node0'; i++) {
      key = Buffer.of(0xff, i & 0xff, i >> 8);
    }
    await dict.set(key, 'old');
    fixture.serverOf('node0').hang();
    await dict.set(key, 'new'); // times out on node0, lands on its heir with a hint
    expect(dict.aliveHash.nodes).not.toContain('node0');
    fixture.serverOf('node0').resume();
    await until(() => events.includes('rediscovered node0'));
    // Neither node0's 'old' nor a copy left anywhere: the hint named the exact bytes.
    expect(await dict.get(key)).toBeUndefined();
    expect(await rawKeys()).toEqual([]);
  });
});
