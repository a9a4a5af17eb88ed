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
