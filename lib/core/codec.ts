import { compressedKind } from './codec-compression.js';
import { msgpackCodec } from './codec-msgpack.js';
import { RingCodecError } from './errors.js';
import { storable } from './storable.js';

export type { RingCompressionAlgorithm, RingCompressionOptions } from './codec-compression.js';
export { msgpackCodec } from './codec-msgpack.js';

/** A codec whose `decode` receives the stored value as a UTF-8 string. */
export interface RingTextCodec<V> {
  binary?: false;
  encode(value: V): string | Buffer;
  decode(raw: string): V;
}

/** A codec whose `decode` receives the stored bytes (msgpack, protobuf, compression…). */
export interface RingBinaryCodec<V> {
  binary: true;
  encode(value: V): string | Buffer;
  decode(raw: Buffer): V;
}

export type RingCodec<V> = RingTextCodec<V> | RingBinaryCodec<V>;
/** A built-in codec's name, or a codec of your own. */
export type RingCodecOption<V> = 'json' | 'string' | 'msgpack' | RingCodec<V>;

/**
 * Plain JSON, no envelope: any other client reading the same Redis sees exactly
 * `JSON.stringify(value)`.
 */
export const jsonCodec: RingTextCodec<unknown> = {
  encode(value) {
    const text = JSON.stringify(value);
    // JSON.stringify answers undefined (not an error) for undefined, functions and symbols.
    if (text === undefined) throw new TypeError(`${typeof value} is not JSON`);
    return text;
  },
  decode: (raw) => JSON.parse(raw),
};

/** Strings stored as they are. */
export const stringCodec: RingTextCodec<unknown> = {
  encode(value) {
    if (typeof value !== 'string') throw new TypeError(`expected a string, got ${typeof value}`);
    return value;
  },
  decode(raw) {
    const kind = compressedKind(raw);
    if (kind !== undefined) {
      throw new TypeError(`it is ${kind}-compressed: read it with the compression option`);
    }
    return raw;
  },
};

export function resolveCodec<V>(option: RingCodecOption<V> | undefined): RingCodec<V> {
  if (option === undefined || option === 'json') return jsonCodec as RingTextCodec<V>;
  if (option === 'string') return stringCodec as RingTextCodec<V>;
  if (option === 'msgpack') return msgpackCodec as RingBinaryCodec<V>;
  return option;
}

/** Encodes before any I/O, so a value that cannot be encoded writes nothing. */
export function encodeValue<V>(codec: RingCodec<V>, value: V, entry: string): string | Buffer {
  try {
    return storable(codec.encode(value), 'the codec returned');
  } catch (error) {
    throw new RingCodecError(
      `Cannot encode the value for "${entry}": ${(error as Error).message}. Nothing was written.`,
      entry,
      error,
    );
  }
}

export function decodeValue<V>(codec: RingCodec<V>, raw: string | Buffer, entry: string): V {
  try {
    return codec.binary
      ? codec.decode(Buffer.isBuffer(raw) ? raw : Buffer.from(raw))
      : codec.decode(typeof raw === 'string' ? raw : raw.toString('utf8'));
  } catch (error) {
    throw new RingCodecError(
      `Cannot decode the value stored at "${entry}": ${(error as Error).message}`,
      entry,
      error,
    );
  }
}
