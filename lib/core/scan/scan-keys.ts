import type { Redis } from 'ioredis';

/** Escapes Redis glob characters so a prefix matches only itself. */
export function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&');
}

/** SCAN batches of keys matching `match` on one node; never KEYS, which blocks Redis. */
export async function* scanKeys(
  client: Redis,
  match: string,
  count: number,
): AsyncGenerator<string[]> {
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', match, 'COUNT', count);
    cursor = next;
    if (keys.length > 0) yield keys;
  } while (cursor !== '0');
}
