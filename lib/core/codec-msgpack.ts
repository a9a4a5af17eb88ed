import { Packr } from 'msgpackr';
import type { RingBinaryCodec } from './codec.js';
import type { WellFormedString } from './keys/wire.js';

/**
 * msgpackr with what JSON loses: records for plain objects and `mapsAsObjects: false`, so
 * that a `Map` comes back a `Map` and an object an object; `moreTypes` for typed arrays;
 * `useBigIntExtension` for BigInts past 64 bits (smaller ones are msgpack's int64). Dates are
 * msgpack's standard timestamp, Sets msgpackr's extension. Each value carries its record
 * definitions, so any msgpackr decoder with these options reads it: no shared structures.
 */
const packr = new Packr({
  mapsAsObjects: false,
  moreTypes: true,
  useBigIntExtension: true,
  // msgpackr writes a function as undefined: `{ a: fn }` would read back `{}`, and a function
  // stored alone would be a present key whose value reads as undefined.
  writeFunction: () => {
    throw new TypeError('a function cannot be stored');
  },
});

/** What msgpackr writes for a lone surrogate: U+FFFD's UTF-8 bytes. */
const REPLACEMENT = [...Buffer.from('\uFFFD')];
/**
 * An object key msgpackr reads back as `__proto_` (its guard against prototype pollution), as
 * it writes it: a fixstr, header 0xa9 (nine bytes), rarer in the output than `_`.
 */
const PROTO_KEY = [0xa9, ...Buffer.from('__proto__')];

/**
 * MessagePack through msgpackr: `Date`, `Map`, `Set`, `BigInt`, `Buffer` and typed arrays
 * round-trip, and values are usually smaller and faster to encode than JSON (see the bench).
 * `undefined` is stored too (JSON refuses it at the top level). A value msgpackr would change
 * is refused (see `unchanged`).
 */
export const msgpackCodec: RingBinaryCodec<unknown> = {
  binary: true,
  encode: (value) => unchanged(value, packr.pack(value)),
  decode: (raw) => packr.unpack(raw),
};

/**
 * `packed`, unless msgpackr changed `value` on the way: it writes a lone surrogate as U+FFFD
 * (`'\uD800'` and `'\uDBFF'` became one value) and reads an object key `__proto__` back as
 * `__proto_`. Both leave their bytes in the output, so only an output holding them (a genuine
 * U+FFFD, binary data that happens to) has the value walked. The search costs 70–105 ns for a
 * 100-byte object, against about 1.1 µs for msgpackr's pack (a Buffer needle each: 230 ns).
 */
function unchanged(value: unknown, packed: Buffer): Buffer {
  if (holds(packed, REPLACEMENT) || holds(packed, PROTO_KEY)) findChange(value, new Set());
  return packed;
}

/** True when `bytes` appear in `packed`: each place of the first found by memchr, then compared. */
function holds(packed: Buffer, bytes: readonly number[]): boolean {
  for (let at = packed.indexOf(bytes[0]); at !== -1; at = packed.indexOf(bytes[0], at + 1)) {
    let i = 1;
    while (i < bytes.length && packed[at + i] === bytes[i]) i++;
    if (i === bytes.length) return true;
  }
  return false;
}

/** Throws a TypeError at the first string msgpackr cannot keep, or `__proto__` key. */
function findChange(value: unknown, seen: Set<object>): void {
  if (typeof value === 'string') {
    if (!(value as WellFormedString).isWellFormed()) {
      throw new TypeError('a string with a lone surrogate, which has no UTF-8 form');
    }
    return;
  }
  if (typeof value !== 'object' || value === null || seen.has(value)) return;
  seen.add(value);
  if (ArrayBuffer.isView(value)) return;
  // Written by msgpackr's extensions: an Error as its name, message and cause (and an
  // AggregateError's errors), a RegExp as its source.
  if (value instanceof Error) {
    const { name, message, cause } = value;
    const errors = value instanceof AggregateError ? value.errors : undefined;
    for (const part of [name, message, cause, errors]) findChange(part, seen);
  }
  if (value instanceof RegExp) findChange(value.source, seen);
  if (value instanceof Map || value instanceof Set || Array.isArray(value)) {
    for (const item of value instanceof Map ? [...value].flat() : value) findChange(item, seen);
    return;
  }
  for (const [key, item] of Object.entries(value)) {
    if (key === '__proto__') {
      throw new TypeError('an object key "__proto__" (msgpackr reads it back as "__proto_")');
    }
    findChange(key, seen);
    findChange(item, seen);
  }
}
