import { checkOption, rejectUnknownOptions } from './option-checks.js';

/** The `nearCache` option: the bounds of the in-process tier in front of the ring. */
export interface RingNearCacheOptions {
  /** Entries held at most (default 10 000). */
  maxEntries?: number;
  /**
   * Bytes held at most, counted as the keys' and stored values' lengths plus a fixed
   * overhead per entry (default 16 MiB).
   */
  maxBytes?: number;
  /**
   * Milliseconds a hit may go without this process having read its sockets (default 1): past
   * that, the hit first waits for the event loop to poll, so an invalidation already delivered is
   * read before the entry is served. A larger value spares a busy event loop those waits, and a
   * hit may then trail another process's write by that much.
   */
  maxLag?: number;
}

/** The near cache's options with defaults applied. */
export interface ResolvedNearCacheOptions {
  maxEntries: number;
  maxBytes: number;
  maxLag: number;
}

export const DEFAULT_NEAR_MAX_ENTRIES = 10_000;
export const DEFAULT_NEAR_MAX_BYTES = 16 * 1024 * 1024;
/**
 * 1 ms, the slack the stale-read analyser grants between processes' clocks: a read that begins
 * more than that after another process's write completed must not answer the old value.
 */
export const DEFAULT_NEAR_MAX_LAG_MS = 1;

const FIELDS: ReadonlySet<string> = new Set(['maxEntries', 'maxBytes', 'maxLag']);

/** Checks the `nearCache` option; answers its bounds, or undefined when it is off. */
export function checkNearCache(
  option: unknown,
  where: string,
): ResolvedNearCacheOptions | undefined {
  if (option === undefined || option === false) return undefined;
  checkOption(
    option !== null && typeof option === 'object' && !Array.isArray(option),
    where,
    'nearCache',
    '{ maxEntries?, maxBytes?, maxLag? } or false',
    option,
  );
  const at = `${where}nearCache.`;
  rejectUnknownOptions(option as object, FIELDS, `${where}nearCache: `);
  const {
    maxEntries = DEFAULT_NEAR_MAX_ENTRIES,
    maxBytes = DEFAULT_NEAR_MAX_BYTES,
    maxLag = DEFAULT_NEAR_MAX_LAG_MS,
  } = option as RingNearCacheOptions;
  checkOption(
    Number.isSafeInteger(maxEntries) && maxEntries > 0,
    at,
    'maxEntries',
    'a whole number > 0',
    maxEntries,
  );
  checkOption(
    Number.isSafeInteger(maxBytes) && maxBytes > 0,
    at,
    'maxBytes',
    'a whole number of bytes > 0',
    maxBytes,
  );
  checkOption(
    typeof maxLag === 'number' && Number.isFinite(maxLag) && maxLag > 0,
    at,
    'maxLag',
    'a number of milliseconds > 0',
    maxLag,
  );
  return { maxEntries, maxBytes, maxLag };
}
