import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { fromWire, isEntryString, noteEscaped, toWire } from '../../lib/core/keys/wire.js';

/** The bytes `toWire` sends for an entry. */
function bytesOf(entry: string): Buffer {
  const wire = toWire(entry);
  return typeof wire === 'string' ? Buffer.from(wire, 'utf8') : wire;
}

describe('entries and the bytes of Redis keys', () => {
  it('a well-formed string is sent as it is, as its UTF-8 bytes', () => {
    for (const s of ['', 'plain', 'héllo', '日本語', '😀 ok', '\u{10ffff}', '\ufffd']) {
      expect(toWire(s)).toBe(s);
      expect(fromWire(Buffer.from(s, 'utf8'))).toBe(s);
    }
  });

  // A decoder drops a leading byte-order mark unless told not to: these were 'k' and 'xk\uDCFF'.
  it('a leading byte-order mark is kept', () => {
    expect(fromWire(Buffer.from('\ufeffk', 'utf8'))).toBe('\ufeffk');
    expect(fromWire(Buffer.of(0xef, 0xbb, 0xbf, 0x6b))).not.toBe(fromWire(Buffer.from('k')));
    const escaped = Buffer.of(0xff, 0xef, 0xbb, 0xbf, 0x6b);
    expect(bytesOf(fromWire(escaped)).equals(escaped)).toBe(true);
  });

  it('any byte sequence survives the trip, and two distinct ones are two entries', () => {
    const seen = new Map<string, string>();
    const cases = [
      Buffer.of(0xff),
      Buffer.of(0xfe),
      Buffer.of(0xc3), // a lead byte without its continuation
      Buffer.of(0xed, 0xa0, 0x80), // a UTF-16 surrogate in UTF-8 (CESU): not valid UTF-8
      Buffer.of(0xf0, 0x9f, 0x98), // a truncated 4-byte sequence
      Buffer.of(0xc0, 0x80), // an overlong NUL
      Buffer.of(0xf0, 0x9f, 0x98, 0x80, 0x80), // an emoji, then a stray continuation byte
      ...Array.from({ length: 300 }, (_, i) => randomBytes(1 + (i % 17))),
    ];
    for (const bytes of cases) {
      const entry = fromWire(bytes);
      expect(bytesOf(entry).equals(bytes), bytes.toString('hex')).toBe(true);
      expect(isEntryString(entry)).toBe(true);
      const other = seen.get(entry);
      if (other !== undefined) expect(other).toBe(bytes.toString('hex'));
      seen.set(entry, bytes.toString('hex'));
    }
  });

  it('no well-formed string is the entry of invalid UTF-8', () => {
    expect(fromWire(Buffer.of(0xff))).toBe('\udcff');
    expect(isEntryString('\udcff')).toBe(true);
    expect(('\udcff' as string & { isWellFormed(): boolean }).isWellFormed()).toBe(false);
    // U+FFFD (what a lossy decoder makes of any invalid byte) is its own key.
    expect(fromWire(Buffer.of(0xef, 0xbf, 0xbd))).toBe('\ufffd');
    expect(fromWire(Buffer.of(0xfe))).not.toBe(fromWire(Buffer.of(0xff)));
  });

  it('escaped bytes that spell a character are not an entry: they would be that character', () => {
    // C3 A9 is 'é', E2 82 AC '€': sent as bytes, each would be the key of the character.
    for (const s of ['\udcc3\udca9', 'x\udce2\udc82\udcacy', '\udcf0\udc9f\udc98\udc80']) {
      expect(isEntryString(s), JSON.stringify(s)).toBe(false);
    }
    // Bytes no UTF-8 sequence explains, beside characters, are: the trip gives them back.
    noteEscaped();
    for (const s of ['\udcc3A', 'é\udca9', '\udce2\udc82', '\udcc3\udcc3']) {
      expect(isEntryString(s), JSON.stringify(s)).toBe(true);
      expect(fromWire(toWire(s) as Buffer)).toBe(s);
    }
  });

  it('lone surrogates that are no escaped byte have no bytes at all', () => {
    for (const s of ['\ud800', 'a\udbffb', '\udc00', '\udc7f', '\ude00x']) {
      expect(isEntryString(s), JSON.stringify(s)).toBe(false);
    }
  });
});
