import type { Redis } from 'ioredis';
import { isControlKey } from '../keys/control-keys.js';
import { allToWire, fromWire } from '../keys/wire.js';

/** SCAN batch size: large enough to keep round trips few, small enough not to stall Redis. */
export const SCAN_COUNT = 1000;

/** Escapes Redis glob characters so a prefix matches only itself. */
export function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&');
}

/**
 * SCAN batches of keys matching `match` on one node, the ring's own keys left out; never
 * KEYS, which blocks Redis.
 */
export async function* scanKeys(
  client: Redis,
  match: string,
  count = SCAN_COUNT,
): AsyncGenerator<string[]> {
  let cursor = '0';
  do {
    // As bytes: a binary key read as UTF-8 text would lose its bytes (see wire.ts).
    const [next, raw] = await client.scanBuffer(cursor, 'MATCH', match, 'COUNT', count);
    cursor = String(next);
    const found = raw.map(fromWire);
    const keys = found.some(isControlKey) ? found.filter((key) => !isControlKey(key)) : found;
    if (keys.length > 0) yield keys;
  } while (cursor !== '0');
}

/**
 * Deletes every key of the server that starts with `keyPrefix` (SCAN + UNLINK), or only those
 * `which` accepts; answers how many.
 */
export async function unlinkPrefix(
  client: Redis,
  keyPrefix: string,
  which?: (entry: string) => boolean,
): Promise<number> {
  let deleted = 0;
  for await (const found of scanKeys(client, `${globEscape(keyPrefix)}*`)) {
    const keys = which ? found.filter(which) : found;
    if (keys.length > 0) deleted += await client.unlink(...allToWire(keys));
  }
  return deleted;
}

/** HSCAN batches of the fields of the hash at `key`, each with its value. */
export async function* scanHash(
  client: Redis,
  key: string,
): AsyncGenerator<[field: string, value: string][]> {
  let cursor = '0';
  do {
    const [next, flat] = await client.hscanBuffer(key, cursor, 'COUNT', SCAN_COUNT);
    cursor = String(next);
    const pairs: [string, string][] = [];
    for (let i = 0; i < flat.length; i += 2) pairs.push([fromWire(flat[i]), String(flat[i + 1])]);
    if (pairs.length > 0) yield pairs;
  } while (cursor !== '0');
}
