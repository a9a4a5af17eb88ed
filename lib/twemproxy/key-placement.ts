import { RingConfigError } from '../core/errors.js';
import type { HashFunctionName } from '../core/hashing/hash-functions.js';
import { checkBrackets } from '../core/hashing/hash-ring.js';
import type { PoolOptions } from './pool-options.js';
import { TwemproxyConfigError } from './twemproxy-config-error.js';

/*
 * The pool options that decide which server a key goes to: `distribution`, `hash` and
 * `hash_tag`. What cannot be placed as nutcracker places it is refused, or warned about when
 * the placement is lost anyway.
 */

/** twemproxy's hash names that have an exact counterpart here (same name, same function). */
const SUPPORTED_HASHES: readonly HashFunctionName[] = [
  'fnv1a_64',
  'md5',
  'fnv1_64',
  'fnv1_32',
  'fnv1a_32',
  'crc32a',
];
/** The rest of twemproxy's hash names, refused with a reason rather than as "unknown". */
const OTHER_TWEMPROXY_HASHES = [
  'one_at_a_time',
  'crc16',
  'crc32',
  'hsieh',
  'murmur',
  'jenkins',
] as const;

/** twemproxy's default when a pool names no hash. */
const DEFAULT_HASH: HashFunctionName = 'fnv1a_64';

/** The placement options of a pool, in RingDict's terms. */
export interface KeyPlacement {
  /** twemproxy's distribution as written (`ketama` unless the pool says otherwise). */
  distribution: string;
  hashFunction: HashFunctionName;
  hashTag?: string;
}

export function readKeyPlacement(options: PoolOptions): KeyPlacement {
  const distribution = readDistribution(options);
  const placement: KeyPlacement = {
    distribution,
    hashFunction: readHash(options, distribution),
  };
  const hashTag = readHashTag(options);
  if (hashTag !== undefined) placement.hashTag = hashTag;
  return placement;
}

function readDistribution(options: PoolOptions): string {
  const distribution = options.has('distribution') ? options.string('distribution') : 'ketama';
  if (!['ketama', 'modula', 'random'].includes(distribution)) {
    throw new TwemproxyConfigError(
      `${options.at('distribution')}: unknown distribution ${JSON.stringify(distribution)} (twemproxy knows ketama, modula, random)`,
    );
  }
  if (distribution !== 'ketama') {
    options.warn(
      'distribution',
      `${distribution} has no equivalent: imported as ketama, so keys will NOT be found where nutcracker put them (a cold cache)`,
    );
  }
  return distribution;
}

function readHash(options: PoolOptions, distribution: string): HashFunctionName {
  if (!options.has('hash')) return DEFAULT_HASH;
  const hash = options.string('hash');
  if ((SUPPORTED_HASHES as readonly string[]).includes(hash)) return hash as HashFunctionName;
  const known = (OTHER_TWEMPROXY_HASHES as readonly string[]).includes(hash);
  const why = known
    ? `twemproxy's ${hash} is not implemented here`
    : `${JSON.stringify(hash)} is not a twemproxy hash`;
  const supported = `supported: ${SUPPORTED_HASHES.join(', ')}`;
  if (distribution === 'ketama' || !known) {
    throw new TwemproxyConfigError(`${options.at('hash')}: ${why}; ${supported}`);
  }
  // The placement is lost anyway (see distribution); keep going with the default.
  options.warn('hash', `${why}; using ${DEFAULT_HASH} (${supported})`);
  return DEFAULT_HASH;
}

function readHashTag(options: PoolOptions): string | undefined {
  if (!options.has('hash_tag')) return undefined;
  const tag = options.string('hash_tag');
  // twemproxy takes two BYTES; we take two characters. They agree on ASCII.
  if ([...tag].length !== 2 || Buffer.byteLength(tag) !== 2) {
    throw new TwemproxyConfigError(
      `${options.at('hash_tag')}: expected two ASCII characters such as "{}" (quote it in YAML), got ${JSON.stringify(tag)}`,
    );
  }
  // nutcracker takes any two bytes, but the ring refuses mismatched brackets such as "{{"
  // (a slip that hashes most keys whole): refuse them here, not when the group is used.
  try {
    checkBrackets(tag);
  } catch (error) {
    if (!(error instanceof RingConfigError)) throw error;
    throw new TwemproxyConfigError(
      `${options.at('hash_tag')}: the ring refuses it: ${error.message}`,
    );
  }
  return tag;
}
