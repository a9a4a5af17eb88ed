/**
 * Names the RingDict method `@RingCached` reads through: `getRaw`, but failing where `getRaw`
 * would answer `onFail`'s value (see RingDict). Internal to the package: the core's index does
 * not export it.
 */
export const readThroughRaw: unique symbol = Symbol('ring-redis.readThroughRaw');
