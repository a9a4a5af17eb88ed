/**
 * Keys the ring keeps on the nodes for its own bookkeeping, apart from the dict's entries:
 * what vouches for a node's data, and (across processes) which nodes are out and which
 * entries were written on their behalf. They all start with `CONTROL_PREFIX`, scans skip
 * them, and a dict refuses a key that would fall among them.
 */
export const CONTROL_PREFIX = '__ring-redis__:';

/** True for the ring's own keys, which no scan lists, counts or clears. */
export function isControlKey(key: string): boolean {
  return key.startsWith(CONTROL_PREFIX);
}

/**
 * The control key `name` of the dict with `prefix`. The prefix's length comes first, so no
 * prefix can end where another's name begins.
 */
export function controlKey(prefix: string, name: string): string {
  return `${CONTROL_PREFIX}${prefix.length}:${prefix}:${name}`;
}
