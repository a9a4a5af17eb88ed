import type { Redis } from 'ioredis';
import { isControlKey } from '../keys/control-keys.js';

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
    const [next, found] = await client.scan(cursor, 'MATCH', match, 'COUNT', count);
    cursor = next;
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
    if (keys.length > 0) deleted += await client.unlink(...keys);
  }
  return deleted;
}

/** SSCAN batches of the members of the set at `key`. */
export async function* scanSet(client: Redis, key: string): AsyncGenerator<string[]> {
  let cursor = '0';
  do {
    const [next, members] = await client.sscan(key, cursor, 'COUNT', SCAN_COUNT);
    cursor = next;
    if (members.length > 0) yield members;
  } while (cursor !== '0');
}
