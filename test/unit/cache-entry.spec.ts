import { describe, expect, it } from 'vitest';
import { jsonCodec, type RingBinaryCodec } from '../../lib/index.js';
import {
  decodeEntry,
  encodeEntry,
  tagsHold,
  UndecodableEntryError,
  type CacheCodec,
} from '../../lib/nest/ring-cached/cache-entry.js';

/**
 * How cached calls are stored: plain JSON without the new options (byte for byte what
 * `@RingCached` always stored), an envelope with them, and a binary codec's bytes inside the
 * envelope as base64. The binary codec here is a stand-in that keeps Dates (the core's named
 * binary codecs plug in the same way).
 */

const json: CacheCodec = { name: 'json', codec: jsonCodec };

/** JSON with Dates kept, as bytes: a binary codec the envelope must carry intact. */
const datesCodec: RingBinaryCodec<unknown> = {
  binary: true,
  encode: (value) =>
    Buffer.from(
      JSON.stringify(value, function (this: Record<string, unknown>, key) {
        const raw = this[key];
        return raw instanceof Date ? { $date: raw.toISOString() } : raw;
      }),
    ),
  decode: (raw) =>
    JSON.parse(raw.toString(), (_key, value: unknown) =>
      value !== null && typeof value === 'object' && '$date' in value
        ? new Date((value as { $date: string }).$date)
        : value,
    ) as unknown,
};
const binary: CacheCodec = { name: 'dates', codec: datesCodec };

describe('cache entries', () => {
  it('without metadata an entry is plain JSON, as it always was', () => {
    expect(encodeEntry({ a: 1 }, undefined, json)).toBe('{"a":1}');
    expect(encodeEntry(undefined, undefined, json)).toBe('');
    expect(decodeEntry('{"a":1}', json)).toEqual({
      kind: 'value',
      value: { a: 1 },
      meta: undefined,
    });
    expect(decodeEntry('', json)).toEqual({ kind: 'value', value: undefined, meta: undefined });
  });

  it('with metadata: the mark, the metadata, the mark, the JSON payload', () => {
    const raw = encodeEntry({ a: '\u0001' }, { x: 1234, t: ['user:\u00017', 'id1'] }, json);
    expect(raw).toBe('\u0001{"x":1234,"t":["user:\\u00017","id1"]}\u0001{"a":"\\u0001"}');
    expect(decodeEntry(raw, json)).toEqual({
      kind: 'value',
      value: { a: '\u0001' },
      meta: { x: 1234, t: ['user:\u00017', 'id1'] },
    });
  });

  it('a binary codec round-trips through base64 and names itself', () => {
    const when = new Date('2026-12-06T10:00:00Z');
    const raw = encodeEntry({ when }, { c: 'dates' }, binary);
    expect(raw.startsWith('\u0001{"c":"dates"}\u0001')).toBe(true);
    const entry = decodeEntry(raw, binary);
    expect(entry.kind === 'value' && (entry.value as { when: Date }).when).toEqual(when);
    expect(() => encodeEntry(1, undefined, binary)).toThrow(/needs its envelope/);
  });

  it("another codec's entry, or a plain one for a binary codec, is foreign (a miss)", () => {
    expect(decodeEntry(encodeEntry(1, { c: 'dates' }, binary), json)).toEqual({ kind: 'foreign' });
    expect(decodeEntry('1', binary)).toEqual({ kind: 'foreign' });
    expect(decodeEntry(encodeEntry(1, {}, json), binary)).toEqual({ kind: 'foreign' });
  });

  it.each([['not json {'], ['\u0001{"x":1'], ['\u0001nope\u0001{}'], ['\u0001null\u00011']])(
    '%o is undecodable',
    (raw) => {
      expect(() => decodeEntry(raw, json)).toThrow(UndecodableEntryError);
    },
  );

  it('what JSON cannot carry is refused before anything is written', () => {
    expect(() => encodeEntry(() => 1, undefined, json)).toThrow(TypeError);
  });
});

describe('tag versions recorded in an entry', () => {
  it('hold only when every tag is recorded with the id read now', () => {
    expect(tagsHold(['a', '1', 'b', '2'], ['a', 'b'], ['1', '2'])).toBe(true);
    expect(tagsHold(['a', '1', 'b', '2'], ['a', 'b'], ['1', '3'])).toBe(false);
    // A version key lost (or deleted by an invalidation) is a miss, never "not invalidated".
    expect(tagsHold(['a', '1'], ['a'], [null])).toBe(false);
    // The call's tags changed since the entry was written.
    expect(tagsHold(['a', '1'], ['a', 'b'], ['1', '2'])).toBe(false);
    expect(tagsHold(['a', '1', 'b', '2'], ['a'], ['1'])).toBe(false);
    expect(tagsHold(['a', '1', 'c', '2'], ['a', 'b'], ['1', '2'])).toBe(false);
    expect(tagsHold(undefined, ['a'], ['1'])).toBe(false);
    expect(tagsHold(undefined, [], [])).toBe(true);
  });

  it('hold whatever the order the tags function answers them in', () => {
    expect(tagsHold(['a', '1', 'b', '2'], ['b', 'a'], ['2', '1'])).toBe(true);
    expect(tagsHold(['a', '1', 'b', '2'], ['b', 'a'], ['1', '2'])).toBe(false);
  });

  it('never hold for another layout of the record', () => {
    // The layout of an object keyed by tag: a miss, never a hit it cannot check.
    expect(tagsHold({ a: '1' }, ['a'], ['1'])).toBe(false);
    expect(tagsHold('a', ['a'], ['1'])).toBe(false);
    // A tag's name recorded as an id is not taken for the tag.
    expect(tagsHold(['b', 'a'], ['a'], ['a'])).toBe(false);
    expect(tagsHold(['b', 'a', 'a', '1'], ['a', 'b'], ['1', 'a'])).toBe(true);
  });
});
