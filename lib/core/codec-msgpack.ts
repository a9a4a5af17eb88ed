import { Packr } from 'msgpackr';
import type { RingBinaryCodec } from './codec.js';

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

/**
 * MessagePack through msgpackr: `Date`, `Map`, `Set`, `BigInt`, `Buffer` and typed arrays
 * round-trip, and values are usually smaller and faster to encode than JSON (see the bench).
 * `undefined` is stored too (JSON refuses it at the top level).
 */
export const msgpackCodec: RingBinaryCodec<unknown> = {
  binary: true,
  encode: (value) => packr.pack(value),
  decode: (raw) => packr.unpack(raw),
};
