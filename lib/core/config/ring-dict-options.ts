import { resolveCodec, type RingCodecOption } from '../codec.js';
import { checkCompression, type RingCompressionOptions } from './compression-options.js';
import { withCompression } from '../codec-compression.js';
import { RingConfigError } from '../errors.js';
import { ttlSeconds, type Duration } from './duration.js';
import {
  checkMilliseconds,
  checkOption,
  given,
  rejectUnknownOptions,
  shown,
} from './option-checks.js';
import { checkMigration, type ResolvedMigration, type RingMigration } from './migration-option.js';
import {
  checkNearCache,
  type ResolvedNearCacheOptions,
  type RingNearCacheOptions,
} from './near-cache-options.js';
import type { HashFunction, HashFunctionName } from '../hashing/hash-functions.js';
import type { RingDistribution } from '../hashing/hash-ring.js';
import type { HandoffMode, HandoffOverflowPolicy } from '../handoff/handoff-report.js';
import {
  resolveNodes,
  withCaFiles,
  type ResolvedRingNodeConfig,
  type RingNodesConfig,
} from './ring-config.js';
import type { RingDict } from '../ring-dict.js';

/** Options of a `RingDict`; all but `nodes` are optional. Units are in the names' docs. */
export interface RingDictOptions<V = unknown, F = never> {
  /** The Redis servers (required). */
  nodes: RingNodesConfig;
  /** A label for messages and events, e.g. the NestJS group name. */
  name?: string;
  /** Prepended to every key to form the Redis key (default `''`). */
  prefix?: string;
  /** Turns a key into a string (default `String`). Must return a string. */
  key?(key: unknown): string;
  /**
   * Default time to live of `set()`: a number of SECONDS (fractions allowed) or a duration
   * string (`'250ms'`, `'30s'`, `'5m'`, `'1h'`); default none.
   */
  expire?: Duration;
  /** `'json'` (default), `'string'`, `'msgpack'` or your own `{ encode, decode }`. */
  codec?: RingCodecOption<V>;
  /** Answers instead of throwing `RingClusterUnavailableError` when no node is alive. */
  onFail?: (dict: RingDict<V, F>) => F;
  /** Called once when a node leaves the alive ring. */
  onNodeEjected?: (dict: RingDict<V, F>, node: string, error: Error) => void;
  /** Called once when an ejected node answers again and rejoins the alive ring. */
  onNodeRediscovered?: (dict: RingDict<V, F>, node: string) => void;
  /** Fraction in [0, 1] of requests routed by the total ring to find returning nodes (default 0.01). */
  retryRatio?: number;
  /** `'crc32'` (default; `'fnv1a_64'` with `distribution: 'ketama'`), `'md5'`, `'fnv1a'`, twemproxy's names, or `(s) => uint32`. */
  hashFunction?: HashFunctionName | HashFunction;
  /** `'ring'` (default) or `'ketama'` (twemproxy-compatible). */
  distribution?: RingDistribution;
  /** Slices of the `'ring'` distribution (default: the smallest power of two ≥ 8192 and ≥ 200 × nodes). */
  slices?: number;
  /** Two characters, e.g. `'{}'`: only the part of the key between them is hashed. */
  hashTag?: string;
  /** Milliseconds between PINGs of ejected nodes (default 1000); 0 disables the heartbeat. */
  heartbeatInterval?: number;
  /** Milliseconds a node may take to answer before it is ejected (default 500). */
  commandTimeout?: number;
  /**
   * Milliseconds a node may take to accept a connection opened by `connect()` (at
   * construction, at Nest's bootstrap) or to reconnect after it lost one, before it is
   * ejected (default: the larger of 2000 and `commandTimeout`). A request never waits longer
   * than `commandTimeout` for a connection.
   */
  connectTimeout?: number;
  /**
   * Entries remembered per ejected node for hinted handoff (default 100 000): writes and
   * deletes made on its behalf elsewhere, handed back before it rejoins. 0 disables it.
   */
  handoffLimit?: number;
  /**
   * What a returning node does with the entries written on its behalf while it was out:
   * `'invalidate'` (default) deletes them there and where they were written — safe whatever
   * number of processes write; `'copy'` copies the newer values back, keeping the hits, and
   * is only safe when a single process writes the dict's entries.
   */
  handoff?: HandoffMode;
  /**
   * When more than `handoffLimit` entries were written meanwhile: `'clear'` (default)
   * deletes this dict's entries on the returning node (SCAN of the prefix), `'ttl'` trusts
   * their TTLs. With an empty prefix, `'ttl'` always.
   */
  handoffOverflow?: HandoffOverflowPolicy;
  /**
   * Open no connection in the constructor (default false): each node connects on its first
   * request, or all of them with `connect()`.
   */
  lazyConnect?: boolean;
  /**
   * Compress encoded values of `threshold` bytes or more (default: never), with `'gzip'`
   * (default) or `'zstd'` (Node ≥ 22.15); smaller values are stored as the codec writes them.
   */
  compression?: RingCompressionOptions | false;
  /**
   * Record OpenTelemetry metrics when an SDK is registered (default true); `false` records
   * nothing for this dict, whatever the SDK.
   */
  metrics?: boolean;
  /**
   * Copies of each entry (default 1), on its owner and the next distinct nodes clockwise
   * (`HashRing.locateAll`): at most the node count. With fewer nodes alive, as many copies as
   * there are alive nodes. See docs/replication.md.
   */
  replicas?: number;
  /**
   * Milliseconds after a `setNodes()` change during which a key whose owner changed is still
   * found on its former owner and copied over (default 60 000; 0 turns the warm-up off).
   */
  warmUpWindow?: number;
  /**
   * A rolling change across processes: until `until` (epoch ms) the dict reads where the
   * processes still on `from` write, and writes there too; afterwards `nodes` alone.
   */
  migration?: RingMigration;
  /**
   * Serve `get`, `getMany` and `@RingCached` hits from process memory, kept coherent by
   * Redis' server-assisted client-side caching (one more connection per node); default
   * false. See docs/near-cache.md.
   */
  nearCache?: RingNearCacheOptions | false;
}

/** The options with defaults applied. */
export interface ResolvedRingDictOptions<V, F> extends RingDictOptions<V, F> {
  /** Every node as `{ capacity, connection }` (URL strings wrapped, capacities filled in). */
  nodes: Record<string, ResolvedRingNodeConfig>;
  /** In seconds. */
  expire?: number;
  name: string;
  prefix: string;
  key(key: unknown): string;
  retryRatio: number;
  heartbeatInterval: number;
  commandTimeout: number;
  connectTimeout: number;
  handoffLimit: number;
  handoff: HandoffMode;
  handoffOverflow: HandoffOverflowPolicy;
  replicas: number;
  warmUpWindow: number;
  /** Checked, and only while it lasts: undefined once `until` has passed. */
  migration?: ResolvedMigration;
  /** The near cache's bounds, or undefined when it is off. */
  near?: ResolvedNearCacheOptions;
}

const KNOWN = new Set<string>([
  'nodes',
  'name',
  'prefix',
  'key',
  'expire',
  'codec',
  'onFail',
  'onNodeEjected',
  'onNodeRediscovered',
  'retryRatio',
  'hashFunction',
  'distribution',
  'slices',
  'hashTag',
  'heartbeatInterval',
  'commandTimeout',
  'connectTimeout',
  'handoffLimit',
  'handoff',
  'handoffOverflow',
  'lazyConnect',
  'compression',
  'metrics',
  'replicas',
  'warmUpWindow',
  'migration',
  'nearCache',
]);

/** The RingDict options' names, for layers that pass them through (e.g. the Nest module). */
export const RING_DICT_OPTION_NAMES: ReadonlySet<string> = KNOWN;

/** The longest TTL accepted, in seconds. */
export const MAX_TTL_SECONDS = 1e12;

/** Checks a TTL in seconds; `field` names the option in the message. */
export function validateTtl(ttl: unknown, field: string): number {
  if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl <= 0) {
    throw new RingConfigError(`${field}: expected a number of seconds > 0, got ${shown(ttl)}`);
  }
  // PX takes whole milliseconds; anything under 1 ms would mean "already expired".
  if (ttl < 0.001) throw new RingConfigError(`${field}: at least 0.001 seconds (1 ms), got ${ttl}`);
  // Redis refuses an expiry past its 64-bit millisecond clock; far below that, 1e12 s
  // (some 31 700 years) is a safe ceiling that is still an exact integer of milliseconds.
  if (ttl > MAX_TTL_SECONDS) {
    throw new RingConfigError(`${field}: at most ${MAX_TTL_SECONDS} seconds, got ${ttl}`);
  }
  return ttl;
}

/** How a message names the group: `group "x": `, or nothing for a dict without a name. */
function groupLabel(name: string | undefined): string {
  return name === undefined ? '' : `group "${name}": `;
}

/**
 * `build()`, with the group named in any configuration error it throws: errors of the parts
 * that know no group (the hash ring, the hash function) still say which group is wrong.
 */
export function inGroup<T>(name: string | undefined, build: () => T): T {
  try {
    return build();
  } catch (error) {
    if (name === undefined || !(error instanceof RingConfigError)) throw error;
    throw new RingConfigError(`${groupLabel(name)}${error.message}`, { cause: error });
  }
}

export function resolveRingDictOptions<V, F>(
  options: RingDictOptions<V, F>,
): ResolvedRingDictOptions<V, F> {
  if (options === null || typeof options !== 'object') {
    throw new RingConfigError('RingDict: expected an options object with at least `nodes`');
  }
  checkOption(
    options.name === undefined || typeof options.name === 'string',
    '',
    'name',
    'a string',
    options.name,
  );
  const where = groupLabel(options.name);
  rejectUnknownOptions(options, KNOWN, where);
  const o = options;
  checkOption(
    o.prefix === undefined || typeof o.prefix === 'string',
    where,
    'prefix',
    'a string',
    o.prefix,
  );
  checkOption(
    o.key === undefined || typeof o.key === 'function',
    where,
    'key',
    'a function',
    o.key,
  );
  const expire =
    o.expire === undefined
      ? undefined
      : validateTtl(ttlSeconds(o.expire, `${where}expire`), `${where}expire`);
  checkOption(
    o.codec === undefined ||
      o.codec === 'json' ||
      o.codec === 'string' ||
      o.codec === 'msgpack' ||
      (typeof o.codec === 'object' &&
        o.codec !== null &&
        typeof o.codec.encode === 'function' &&
        typeof o.codec.decode === 'function'),
    where,
    'codec',
    "'json', 'string', 'msgpack' or { encode, decode }",
    o.codec,
  );
  for (const fn of ['onFail', 'onNodeEjected', 'onNodeRediscovered'] as const) {
    checkOption(o[fn] === undefined || typeof o[fn] === 'function', where, fn, 'a function', o[fn]);
  }
  const retryRatio = given(o.retryRatio, 0.01);
  checkOption(
    typeof retryRatio === 'number' && retryRatio >= 0 && retryRatio <= 1,
    where,
    'retryRatio',
    'a number in [0, 1]',
    retryRatio,
  );
  const heartbeatInterval = checkMilliseconds(
    given(o.heartbeatInterval, 1000),
    where,
    'heartbeatInterval',
    true,
  );
  const commandTimeout = checkMilliseconds(
    given(o.commandTimeout, 500),
    where,
    'commandTimeout',
    false,
  );
  const connectTimeout = checkMilliseconds(
    given(o.connectTimeout, Math.max(2000, commandTimeout)),
    where,
    'connectTimeout',
    false,
  );
  const handoffLimit = given(o.handoffLimit, 100_000);
  checkOption(
    Number.isInteger(handoffLimit) && handoffLimit >= 0,
    where,
    'handoffLimit',
    'an integer ≥ 0',
    handoffLimit,
  );
  const handoff = given(o.handoff, 'invalidate');
  checkOption(
    handoff === 'invalidate' || handoff === 'copy',
    where,
    'handoff',
    "'invalidate' or 'copy'",
    handoff,
  );
  const handoffOverflow = given(o.handoffOverflow, 'clear');
  checkOption(
    handoffOverflow === 'clear' || handoffOverflow === 'ttl',
    where,
    'handoffOverflow',
    "'clear' or 'ttl'",
    handoffOverflow,
  );
  checkOption(
    o.lazyConnect === undefined || typeof o.lazyConnect === 'boolean',
    where,
    'lazyConnect',
    'a boolean',
    o.lazyConnect,
  );
  checkOption(
    o.metrics === undefined || typeof o.metrics === 'boolean',
    where,
    'metrics',
    'a boolean',
    o.metrics,
  );
  const warmUpWindow = checkMilliseconds(
    given(o.warmUpWindow, 60_000),
    where,
    'warmUpWindow',
    true,
  );
  const migration = checkMigration(o.migration, o.name, where);
  const compression = checkCompression(o.compression, where);
  const nodes = withCaFiles(resolveNodes(o.nodes), o.name);
  const replicas = given(o.replicas, 1);
  const nodeCount = Object.keys(nodes).length;
  checkOption(
    Number.isInteger(replicas) && replicas >= 1 && replicas <= Math.max(1, nodeCount),
    where,
    'replicas',
    `an integer from 1 to the node count (${nodeCount})`,
    replicas,
  );
  // A migration reads and writes both placements of one copy each; copies on top of that
  // would need both placements' copies kept in step, which nothing does yet.
  checkOption(
    replicas === 1 || o.migration === undefined,
    where,
    'replicas',
    '1 while a migration is given (the two do not combine)',
    replicas,
  );
  const near = checkNearCache(o.nearCache, where);
  return {
    ...o,
    nodes,
    replicas,
    expire,
    handoffLimit,
    handoff,
    handoffOverflow,
    name: o.name ?? 'default',
    prefix: o.prefix ?? '',
    key: o.key ?? String,
    retryRatio,
    heartbeatInterval,
    commandTimeout,
    connectTimeout,
    warmUpWindow,
    migration,
    near,
    ...(compression && { codec: withCompression(resolveCodec(o.codec), compression) }),
  };
}
