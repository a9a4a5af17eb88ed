import { RingConfigError, resolveCodec, type RingCodecOption } from '../../core/index.js';
import {
  durationMs,
  ttlSeconds,
  type Duration,
  type DurationString,
} from '../../core/config/duration.js';
import { checkOption, shown } from '../../core/config/option-checks.js';
import { MAX_TTL_SECONDS, validateTtl } from '../../core/config/ring-dict-options.js';
import type { CacheCodec } from './cache-entry.js';

/**
 * The names of the codecs a cached call may use: the core's named codecs but `'string'`
 * (a cached call answers any value, not only strings). `'json'` is the default.
 */
export type RingCachedCodecName = Exclude<Extract<RingCodecOption<unknown>, string>, 'string'>;

/** A lock: `true` for the defaults, or its ttl. */
export interface RingCachedLockOptions {
  /** How long a holder keeps the key: milliseconds, or a duration string (default 5000). */
  ttl?: number | DurationString;
}

/** How a cached call behaves: the options `@RingCached` and `RingCacheService.wrap` share. */
export interface RingCacheBehaviour {
  /** Time to live: SECONDS, or a duration string (default: the group's `expire`). */
  ttl?: Duration;
  /** Cache `null` and `undefined` results too (default false). */
  cacheNullish?: boolean;
  /**
   * How long an entry is kept past its `ttl` to be answered when the method fails: seconds,
   * or a duration string (default none).
   */
  grace?: Duration;
  /** With `grace`: how long a failing method is left alone, per key and process (default 10 s). */
  graceBackoff?: Duration;
  /**
   * With `grace`: a run slower than this answers the stale value and finishes in the
   * background. MILLISECONDS, or a duration string.
   */
  softTimeout?: number | DurationString;
  /** 0 < r < 1: a hit with less than r × ttl left starts one background refresh. */
  refreshAhead?: number;
  /** Single flight across processes on a cold key. */
  lock?: boolean | RingCachedLockOptions;
  /** `'json'` (default) or another of the core's named codecs, e.g. `'msgpack'`. */
  codec?: RingCachedCodecName;
}

/** A cached call's behaviour with its defaults applied and its units made milliseconds. */
export interface CachePolicy {
  /** The `ttl` option in seconds; undefined: the group's `expire`. */
  readonly ttl: number | undefined;
  readonly cacheNullish: boolean;
  /** 0: no grace. */
  readonly graceMs: number;
  readonly graceBackoffMs: number;
  readonly softTimeoutMs: number | undefined;
  readonly refreshAhead: number | undefined;
  /** The lock's ttl; undefined: no lock. */
  readonly lockMs: number | undefined;
  readonly codec: CacheCodec;
  /** Entries carry their logical expiry (for grace and refreshAhead). */
  readonly expiring: boolean;
  /** More than a plain JSON memo: calls take the resilient path. */
  readonly resilient: boolean;
}

export const DEFAULT_GRACE_BACKOFF_MS = 10_000;
export const DEFAULT_LOCK_MS = 5_000;

/** The option names of RingCacheBehaviour, for unknown-option checks. */
export const BEHAVIOUR_OPTIONS = [
  'ttl',
  'cacheNullish',
  'grace',
  'graceBackoff',
  'softTimeout',
  'refreshAhead',
  'lock',
  'codec',
] as const satisfies readonly (keyof RingCacheBehaviour)[];

const JSON_CODEC: CacheCodec = { name: 'json', codec: resolveCodec('json') };

/**
 * Checks the behaviour options and resolves them; `where` starts every message (e.g.
 * `@RingCached Weather.forecast: `), `groupExpire` is the group's default ttl in seconds.
 */
export function resolvePolicy(
  options: RingCacheBehaviour,
  where: string,
  groupExpire: number | undefined,
): CachePolicy {
  const ttl =
    options.ttl === undefined
      ? undefined
      : validateTtl(ttlSeconds(options.ttl, `${where}ttl`), `${where}ttl`);
  const { cacheNullish, refreshAhead } = options;
  checkOption(
    cacheNullish === undefined || typeof cacheNullish === 'boolean',
    where,
    'cacheNullish',
    'a boolean',
    cacheNullish,
  );
  checkOption(
    refreshAhead === undefined ||
      (typeof refreshAhead === 'number' && refreshAhead > 0 && refreshAhead < 1),
    where,
    'refreshAhead',
    'a number between 0 and 1 (exclusive)',
    refreshAhead,
  );
  const grace = graceOf(options, where);
  const expiring = grace.graceMs > 0 || refreshAhead !== undefined;
  if (expiring && (ttl ?? groupExpire) === undefined) {
    const option = grace.graceMs > 0 ? 'grace' : 'refreshAhead';
    throw new RingConfigError(
      `${where}${option} needs a ttl: give the option ttl, or the group an expire`,
    );
  }
  keptWithin(ttl ?? groupExpire, grace.graceMs, where);
  const lockMs = lockOf(options.lock, where);
  const codec = codecOf(options.codec, where);
  return {
    ttl,
    cacheNullish: cacheNullish ?? false,
    ...grace,
    refreshAhead,
    lockMs,
    codec,
    expiring,
    resilient: expiring || lockMs !== undefined || codec !== JSON_CODEC,
  };
}

/** grace, graceBackoff and softTimeout, in milliseconds: the last two need the first. */
function graceOf(
  options: RingCacheBehaviour,
  where: string,
): Pick<CachePolicy, 'graceMs' | 'graceBackoffMs' | 'softTimeoutMs'> {
  const graceMs = options.grace === undefined ? 0 : durationMs(options.grace, `${where}grace`);
  const graceBackoffMs =
    options.graceBackoff === undefined
      ? DEFAULT_GRACE_BACKOFF_MS
      : durationMs(options.graceBackoff, `${where}graceBackoff`, { allowZero: true });
  const softTimeoutMs =
    options.softTimeout === undefined
      ? undefined
      : durationMs(options.softTimeout, `${where}softTimeout`, { numberUnit: 'ms' });
  needs(softTimeoutMs === undefined || graceMs > 0, where, 'softTimeout', 'grace');
  needs(options.graceBackoff === undefined || graceMs > 0, where, 'graceBackoff', 'grace');
  return { graceMs, graceBackoffMs, softTimeoutMs };
}

/**
 * An entry in grace is kept ttl + grace in Redis: past the TTLs' ceiling every write would be
 * refused, and the method would run on every call.
 */
function keptWithin(ttlSeconds: number | undefined, graceMs: number, where: string): void {
  if (graceMs === 0 || ttlSeconds === undefined) return;
  const keptSeconds = ttlSeconds + graceMs / 1000;
  if (keptSeconds > MAX_TTL_SECONDS) {
    throw new RingConfigError(
      `${where}grace: ttl + grace is at most 1e12 seconds (an entry in grace is ` +
        `kept that long in Redis), got ${ttlSeconds} + ${graceMs / 1000}`,
    );
  }
}

function needs(ok: boolean, where: string, option: string, needed: string): void {
  if (!ok) {
    throw new RingConfigError(`${where}${option} needs ${needed} (it answers the stale value)`);
  }
}

function lockOf(lock: RingCacheBehaviour['lock'], where: string): number | undefined {
  if (lock === undefined || lock === false) return undefined;
  if (lock === true) return DEFAULT_LOCK_MS;
  checkOption(
    typeof lock === 'object' && lock !== null && !Array.isArray(lock),
    where,
    'lock',
    'a boolean or { ttl }',
    lock,
  );
  for (const field of Object.keys(lock)) {
    if (field !== 'ttl') {
      throw new RingConfigError(`${where}lock: unknown option "${field}"; the option is ttl`);
    }
  }
  return lock.ttl === undefined
    ? DEFAULT_LOCK_MS
    : durationMs(lock.ttl, `${where}lock.ttl`, { numberUnit: 'ms' });
}

function codecOf(name: unknown, where: string): CacheCodec {
  if (name === undefined || name === 'json') return JSON_CODEC;
  // The core's named codecs; 'string' would refuse every value but strings.
  const codec: unknown =
    typeof name === 'string' && name !== 'string'
      ? resolveCodec(name as RingCodecOption<unknown>)
      : undefined;
  if (
    typeof codec !== 'object' ||
    codec === null ||
    typeof (codec as { encode?: unknown }).encode !== 'function'
  ) {
    throw new RingConfigError(
      `${where}codec: expected 'json' or a named codec of the core such as 'msgpack', got ${shown(name)}`,
    );
  }
  return { name: name as string, codec: codec as CacheCodec['codec'] };
}
