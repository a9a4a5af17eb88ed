import * as zlib from 'node:zlib';
import type { RingBinaryCodec, RingCodec } from './codec.js';
import { storable } from './storable.js';

/** How big values are compressed: `'gzip'` (any Node) or `'zstd'` (Node ≥ 22.15). */
export type RingCompressionAlgorithm = 'gzip' | 'zstd';

/** The `compression` option of a RingDict or a group. */
export interface RingCompressionOptions {
  /**
   * Encoded values of at least this many bytes are compressed; smaller ones are stored
   * exactly as the codec encodes them.
   */
  threshold: number;
  /** `'gzip'` (default) or `'zstd'` (Node ≥ 22.15). */
  algorithm?: RingCompressionAlgorithm;
  /** The algorithm's level: gzip 1–9 (default 1), zstd 1–19 (default 3). */
  level?: number;
}

/** zstd, where this Node has it (node:zlib since 22.15 and 23.8). */
interface ZstdFunctions {
  zstdCompressSync(data: Buffer, options?: { params?: Record<number, number> }): Buffer;
  zstdDecompressSync(data: Buffer): Buffer;
}

/** This Node's zstd functions, or undefined before 22.15. */
export function zstdFunctions(): ZstdFunctions | undefined {
  const z = zlib as unknown as Partial<ZstdFunctions>;
  return typeof z.zstdCompressSync === 'function' && typeof z.zstdDecompressSync === 'function'
    ? (z as ZstdFunctions)
    : undefined;
}

/** The level of each algorithm when the option leaves it out, and the levels accepted. */
export const COMPRESSION_LEVELS: Readonly<
  Record<RingCompressionAlgorithm, { default: number; min: number; max: number }>
> = {
  // Level 1 compresses a 60 KB JSON document in 0.3× the CPU time of zlib's default 6, to
  // 27 % of its size instead of 22 % (bench/README.md, section 7): a cache writes often.
  gzip: { default: 1, min: 1, max: 9 },
  zstd: { default: 3, min: 1, max: 19 },
};

/**
 * The formats are told apart by their own magic bytes, never by a header of ours, so that a
 * compressed value is a plain .gz or .zst file for any other client: gzip starts 1f 8b and
 * zstd 28 b5 2f fd. Neither can start UTF-8 text (8b and b5 are continuation bytes, which
 * cannot follow an ASCII byte) nor a msgpack value of more than one byte (1f and 28 are
 * one-byte integers, complete in themselves), so the json, string and msgpack codecs'
 * output is never mistaken for a compressed value.
 */
function isGzip(raw: Buffer): boolean {
  return raw.length >= 3 && raw[0] === 0x1f && raw[1] === 0x8b;
}

function isZstd(raw: Buffer): boolean {
  return (
    raw.length >= 4 && raw[0] === 0x28 && raw[1] === 0xb5 && raw[2] === 0x2f && raw[3] === 0xfd
  );
}

/**
 * The format of a compressed value read as text (each byte UTF-8 cannot start a character
 * becomes U+FFFD): gzip's 1f 8b 08 reads "\u001f\ufffd\b", zstd's magic "(\ufffd/\ufffd". The
 * string codec would answer it as a string of garbage; a text value that begins with those very
 * characters (U+001F, U+FFFD, …) is taken for one too, which no text written by a person does.
 */
export function compressedKind(text: string): RingCompressionAlgorithm | undefined {
  if (text.startsWith('\u001f\ufffd\b')) return 'gzip';
  if (text.startsWith('(\ufffd/\ufffd')) return 'zstd';
  return undefined;
}

/**
 * `codec`, with encoded values of `threshold` bytes or more compressed (when that makes them
 * smaller). Every value is decompressed by its own format, whatever `algorithm` is now, so
 * changing it leaves the values already stored readable. Values under the threshold are
 * stored byte for byte as `codec` writes them.
 */
export function withCompression<V>(
  codec: RingCodec<V>,
  { threshold, algorithm = 'gzip', level }: RingCompressionOptions,
): RingBinaryCodec<V> {
  const compress = compressor(algorithm, level ?? COMPRESSION_LEVELS[algorithm].default);
  return {
    binary: true,
    encode(value) {
      // Checked before its UTF-8 form is taken: a lone surrogate would be compressed as U+FFFD.
      const encoded = storable(codec.encode(value), 'the codec returned');
      const bytes = typeof encoded === 'string' ? Buffer.from(encoded, 'utf8') : encoded;
      if (bytes.length < threshold) return encoded;
      const packed = compress(bytes);
      return packed.length < bytes.length ? packed : encoded;
    },
    decode(raw) {
      const plain = isGzip(raw) ? zlib.gunzipSync(raw) : isZstd(raw) ? unzstd(raw) : raw;
      return codec.binary ? codec.decode(plain) : codec.decode(plain.toString('utf8'));
    },
  };
}

function compressor(algorithm: RingCompressionAlgorithm, level: number): (raw: Buffer) => Buffer {
  if (algorithm === 'gzip') return (raw) => zlib.gzipSync(raw, { level });
  const zstd = zstdFunctions();
  if (!zstd) throw new Error(`zstd needs Node 22.15 or later (this is ${process.version})`);
  // Not in the typings of Node 20, where this line is never reached.
  const levelParam = (zlib.constants as unknown as Record<string, number>).ZSTD_c_compressionLevel;
  const params = { [levelParam]: level };
  return (raw) => zstd.zstdCompressSync(raw, { params });
}

function unzstd(raw: Buffer): Buffer {
  const zstd = zstdFunctions();
  if (!zstd) {
    throw new Error(
      `the value is zstd-compressed; reading it needs Node 22.15 or later (this is ${process.version})`,
    );
  }
  return zstd.zstdDecompressSync(raw);
}
