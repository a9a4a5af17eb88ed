import { hash as digest } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { RingConfigError } from './errors.js';

/** Maps a string to an unsigned 32-bit integer. Must be deterministic across processes. */
export type HashFunction = (s: string) => number;

/** Hash functions known by name; twemproxy's names are accepted for ketama compatibility. */
export type HashFunctionName = 'crc32' | 'md5' | 'fnv1a' | 'fnv1a_64';

/**
 * A scratch buffer for functions that walk the UTF-8 bytes of a string. We hash bytes and
 * never characters: once ioredis is loaded, `charCodeAt` loops run several times slower
 * in the whole process, while `TextEncoder.encodeInto` stays fast.
 */
const encoder = new TextEncoder();
let scratch = new Uint8Array(1024);

/** Encodes `s` as UTF-8 into the shared scratch buffer and returns the byte count. */
export function utf8Bytes(s: string): { bytes: Uint8Array; length: number } {
  // UTF-8 needs at most 3 bytes per UTF-16 code unit.
  if (s.length * 3 > scratch.length) scratch = new Uint8Array(s.length * 3);
  const { written } = encoder.encodeInto(s, scratch);
  return { bytes: scratch, length: written };
}

/** CRC-32 (IEEE) of the UTF-8 bytes, computed natively by zlib: the fastest choice. */
export const crc32Hash: HashFunction = (s) => crc32(s);

/** The first four bytes of the MD5 digest, little-endian, as twemproxy's `hash_md5` reads them. */
export const md5Hash: HashFunction = (s) => digest('md5', s, 'buffer').readUInt32LE(0);

/** 32-bit FNV-1a over the UTF-8 bytes. */
export const fnv1aHash: HashFunction = (s) => {
  const { bytes, length } = utf8Bytes(s);
  let h = 0x811c9dc5;
  for (let i = 0; i < length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return h >>> 0;
};

/**
 * twemproxy's `hash_fnv1a_64`, which despite its name keeps a 32-bit state: the FNV-64
 * offset basis and prime are truncated to their low 32 bits. Each byte is widened as a C
 * `char`, i.e. sign-extended on x86, so bytes ≥ 0x80 flip the high bits too. This is
 * twemproxy's default hash; matching it exactly keeps a migrated cache warm.
 */
export const fnv1a64Hash: HashFunction = (s) => {
  const { bytes, length } = utf8Bytes(s);
  let h = 0x84222325;
  for (let i = 0; i < length; i++) h = Math.imul(h ^ ((bytes[i] << 24) >> 24), 0x1b3);
  return h >>> 0;
};

const byName: Record<HashFunctionName, HashFunction> = {
  crc32: crc32Hash,
  md5: md5Hash,
  fnv1a: fnv1aHash,
  fnv1a_64: fnv1a64Hash,
};

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
