import { hash as digest } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { RingConfigError } from '../errors.js';
import { anyEscaped, encodeEscaped, type WellFormedString } from '../keys/wire.js';

/** Maps a string to an unsigned 32-bit integer. Must be deterministic across processes. */
export type HashFunction = (s: string) => number;

/**
 * Hash functions known by name. Besides our own (`crc32`, `fnv1a`), twemproxy's are
 * accepted for ketama compatibility, with twemproxy's exact semantics: `md5`, `fnv1a_64`
 * (its default), `fnv1_64`, `fnv1_32`, `fnv1a_32`, `crc32a`.
 */
export type HashFunctionName =
  'crc32' | 'md5' | 'fnv1a' | 'fnv1a_64' | 'fnv1_64' | 'fnv1_32' | 'fnv1a_32' | 'crc32a';

/**
 * A scratch buffer for functions that walk the UTF-8 bytes of a string. We hash bytes and
 * never characters: once ioredis is loaded, `charCodeAt` loops run several times slower
 * in the whole process, while `TextEncoder.encodeInto` stays fast.
 */
const encoder = new TextEncoder();
let scratch = new Uint8Array(1024);

/**
 * The bytes Redis gets for `s` when they are not its plain UTF-8: the entry of a binary key
 * holds its bytes as lone surrogates (keys/wire.ts), which UTF-8 would turn into U+FFFD each, and
 * nutcracker hashes the bytes. Looked for only once this process has made such an entry (a
 * RingDict's key check or `fromWire` says so first): the check on every hash cost a
 * `HashRing.locate` 10 % (measured, 3 nodes, keys `user:<i>`, the two in turns).
 */
function escapedBytes(s: string): Buffer | undefined {
  return !anyEscaped() || (s as WellFormedString).isWellFormed() ? undefined : encodeEscaped(s);
}

/** Encodes `s` as Redis gets it (UTF-8, or a binary key's bytes) and returns the byte count. */
export function utf8Bytes(s: string): { bytes: Uint8Array; length: number } {
  const escaped = escapedBytes(s);
  if (escaped !== undefined) return { bytes: escaped, length: escaped.length };
  // UTF-8 needs at most 3 bytes per UTF-16 code unit.
  if (s.length * 3 > scratch.length) scratch = new Uint8Array(s.length * 3);
  const { written } = encoder.encodeInto(s, scratch);
  return { bytes: scratch, length: written };
}

/** CRC-32 (IEEE) of the UTF-8 bytes, computed natively by zlib: the fastest choice. */
export const crc32Hash: HashFunction = (s) => crc32(escapedBytes(s) ?? s);

/**
 * How twemproxy widens a key byte before mixing it into an FNV state: its hashes read the
 * key through a plain C `char`, which is signed on x86-64 (the Debian/Ubuntu `nutcracker`
 * builds), so a byte ≥ 0x80 becomes 0xFFFFFF80…0xFFFFFFFF and flips the high bits of the
 * state too. Checked against the real nutcracker by test/integration/nutcracker-compat.
 * (Builds for CPUs whose `char` is unsigned, e.g. ARM, hash such bytes like standard FNV;
 * only keys containing non-ASCII bytes are affected.)
 */
const widenChar = (byte: number): number => (byte << 24) >> 24;

/** twemproxy's FNV constants. Its `_64` variants keep only the low 32 bits of theirs. */
const FNV32_OFFSET = 0x811c9dc5;
const FNV32_PRIME = 0x01000193;
/** Low 32 bits of the FNV-64 offset basis 0xcbf29ce484222325 and prime 0x100000001b3. */
const FNV64_OFFSET_LOW = 0x84222325;
const FNV64_PRIME_LOW = 0x000001b3;

/**
 * FNV-1 (multiply, then xor) and FNV-1a (xor, then multiply) over raw bytes with a 32-bit
 * state, widening bytes as twemproxy does. A 64-bit FNV computed and then truncated to 32
 * bits equals this with the constants truncated: the low 32 bits of a product depend only
 * on the low 32 bits of its factors. So twemproxy's `fnv1_64` (a real 64-bit state,
 * returned truncated) and `fnv1a_64` (a 32-bit state seeded with the truncated 64-bit
 * basis) both reduce to 32-bit arithmetic.
 */
function fnv1(bytes: Uint8Array, length: number, offset: number, prime: number): number {
  let h = offset;
  for (let i = 0; i < length; i++) h = Math.imul(h, prime) ^ widenChar(bytes[i]);
  return h >>> 0;
}

function fnv1a(bytes: Uint8Array, length: number, offset: number, prime: number): number {
  let h = offset;
  for (let i = 0; i < length; i++) h = Math.imul(h ^ widenChar(bytes[i]), prime);
  return h >>> 0;
}

/** The first four digest bytes read little-endian: twemproxy's `md5` key hash. */
const md5OfBytes = (bytes: Uint8Array, length: number): number =>
  digest('md5', bytes.subarray(0, length), 'buffer').readUInt32LE(0);

/** The first four bytes of the MD5 digest, little-endian, as twemproxy's `hash: md5` reads them. */
export const md5Hash: HashFunction = (s) =>
  digest('md5', escapedBytes(s) ?? s, 'buffer').readUInt32LE(0);

/** Standard 32-bit FNV-1a over the UTF-8 bytes (bytes taken unsigned). */
export const fnv1aHash: HashFunction = (s) => {
  const { bytes, length } = utf8Bytes(s);
  let h = FNV32_OFFSET;
  for (let i = 0; i < length; i++) h = Math.imul(h ^ bytes[i], FNV32_PRIME);
  return h >>> 0;
};

/**
 * twemproxy's `hash: fnv1a_64`, its default. Despite the name it keeps a 32-bit state
 * seeded with the low half of the FNV-64 basis and multiplied by the low half of the
 * FNV-64 prime; bytes ≥ 0x80 are sign-extended (see `widenChar`).
 */
export const fnv1a64Hash: HashFunction = (s) => {
  const { bytes, length } = utf8Bytes(s);
  return fnv1a(bytes, length, FNV64_OFFSET_LOW, FNV64_PRIME_LOW);
};

/** twemproxy's `hash: fnv1_64`: 64-bit FNV-1 truncated to its low 32 bits. */
export const fnv164Hash: HashFunction = (s) => {
  const { bytes, length } = utf8Bytes(s);
  return fnv1(bytes, length, FNV64_OFFSET_LOW, FNV64_PRIME_LOW);
};

/** twemproxy's `hash: fnv1_32`: 32-bit FNV-1, bytes sign-extended. */
export const fnv132Hash: HashFunction = (s) => {
  const { bytes, length } = utf8Bytes(s);
  return fnv1(bytes, length, FNV32_OFFSET, FNV32_PRIME);
};

/**
 * twemproxy's `hash: fnv1a_32`: 32-bit FNV-1a with bytes sign-extended, so it differs from
 * `fnv1a` (standard, unsigned bytes) on keys holding bytes ≥ 0x80.
 */
export const fnv1a32Hash: HashFunction = (s) => {
  const { bytes, length } = utf8Bytes(s);
  return fnv1a(bytes, length, FNV32_OFFSET, FNV32_PRIME);
};

const byName: Record<HashFunctionName, HashFunction> = {
  crc32: crc32Hash,
  md5: md5Hash,
  fnv1a: fnv1aHash,
  fnv1a_64: fnv1a64Hash,
  fnv1_64: fnv164Hash,
  fnv1_32: fnv132Hash,
  fnv1a_32: fnv1a32Hash,
  // twemproxy's `crc32a` is the standard (zlib) CRC-32; its `crc32` is a different,
  // 15-bit hash, which is why our `crc32` is not offered under that twemproxy name.
  crc32a: crc32Hash,
};

/** The same functions over raw bytes, for keys that are not valid UTF-8. */
const bytesByName: Record<HashFunctionName, (bytes: Uint8Array, length: number) => number> = {
  crc32: (bytes, length) => crc32(bytes.subarray(0, length)),
  md5: md5OfBytes,
  fnv1a: (bytes, length) => {
    let h = FNV32_OFFSET;
    for (let i = 0; i < length; i++) h = Math.imul(h ^ bytes[i], FNV32_PRIME);
    return h >>> 0;
  },
  fnv1a_64: (bytes, length) => fnv1a(bytes, length, FNV64_OFFSET_LOW, FNV64_PRIME_LOW),
  fnv1_64: (bytes, length) => fnv1(bytes, length, FNV64_OFFSET_LOW, FNV64_PRIME_LOW),
  fnv1_32: (bytes, length) => fnv1(bytes, length, FNV32_OFFSET, FNV32_PRIME),
  fnv1a_32: (bytes, length) => fnv1a(bytes, length, FNV32_OFFSET, FNV32_PRIME),
  crc32a: (bytes, length) => crc32(bytes.subarray(0, length)),
};

/**
 * A named hash of raw bytes: what the function of that name answers for the entry of a key of
 * these bytes (a RingDict's entry of a Buffer key holds the bytes no UTF-8 sequence explains
 * as lone surrogates, and is hashed as those bytes).
 */
export function hashBytes(name: HashFunctionName, bytes: Uint8Array): number {
  const fn = Object.hasOwn(bytesByName, name) ? bytesByName[name] : undefined;
  if (!fn) throw new RingConfigError(`hashBytes: unknown hash function ${JSON.stringify(name)}`);
  return fn(bytes, bytes.length) >>> 0;
}

/** Resolves the `hashFunction` option; `where` names the option for error messages. */
export function resolveHashFunction(
  option: HashFunctionName | HashFunction | undefined,
  where = 'hashFunction',
): HashFunction {
  if (option === undefined) return crc32Hash;
  if (typeof option === 'function') return option;
  const fn = Object.hasOwn(byName, option) ? byName[option] : undefined;
  if (!fn) {
    throw new RingConfigError(
      `${where}: unknown hash function ${JSON.stringify(option)}; expected one of ${Object.keys(byName).join(', ')} or a function (s: string) => uint32`,
    );
  }
  return fn;
}
