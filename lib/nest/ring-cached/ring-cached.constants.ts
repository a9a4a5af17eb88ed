/** Metadata on a decorated method's wrapper: its `RingCachedMethod`. */
export const RING_CACHED_METHOD = Symbol('ring-redis:cached-method');
/**
 * Metadata on a class's prototype: its `@RingCached` methods, found by name also when a
 * decorator above wrapped the method without carrying the wrapper's metadata over.
 */
export const RING_CACHED_METHODS = Symbol('ring-redis:cached-methods');
/** Property set on each instance at bootstrap: the app's cache that serves its calls. */
export const RING_CACHE_BINDING = Symbol('ring-redis:cache-binding');
