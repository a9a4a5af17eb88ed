/**
 * Names the RingDict method `@RingCached` reads through: `getRaw`, but failing where `getRaw`
 * would answer `onFail`'s value (see RingDict). Internal to the package: the core's index does
 * not export it.
 */
export const readThroughRaw: unique symbol = Symbol('ring-redis.readThroughRaw');

/**
 * Names the RingDict method `@RingCached`'s lock is freed with: deletes a key only while it
 * holds a given value, in one step on the key's node. Internal, like `readThroughRaw`.
 */
export const deleteIfHolds: unique symbol = Symbol('ring-redis.deleteIfHolds');

/**
 * Names the RingDict getter of its near cache as `@RingCached` sees it (a NearView),
 * undefined without one. Internal, like `readThroughRaw`.
 */
export const nearCacheView: unique symbol = Symbol('ring-redis.nearCacheView');

/** What `@RingCached` sees of a dict's near cache. */
export interface NearView {
  /**
   * The near cache's `maxLag` (ms): `@RingCached` reads a tagged entry's versions as GETs,
   * which it answers from memory, and an invalidation waits that long for other processes to
   * have read it.
   */
  readonly maxLag: number;
  /**
   * The string a GET of `entry` (a Redis key) would answer from memory now, without waiting
   * for a poll of the sockets; undefined when that GET would wait or go to Redis.
   */
  peek(entry: string): string | undefined;
}
