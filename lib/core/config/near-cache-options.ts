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
}

/** The near cache's bounds with defaults applied. */
export interface ResolvedNearCacheOptions {
  maxEntries: number;
  maxBytes: number;
}

export const DEFAULT_NEAR_MAX_ENTRIES = 10_000;
export const DEFAULT_NEAR_MAX_BYTES = 16 * 1024 * 1024;

const FIELDS: ReadonlySet<string> = new Set(['maxEntries', 'maxBytes']);

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
    '{ maxEntries?, maxBytes? } or false',
    option,
  );
  const at = `${where}nearCache.`;
  rejectUnknownOptions(option as object, FIELDS, `${where}nearCache: `);
  const { maxEntries = DEFAULT_NEAR_MAX_ENTRIES, maxBytes = DEFAULT_NEAR_MAX_BYTES } =
    option as RingNearCacheOptions;
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
  return { maxEntries, maxBytes };
}
