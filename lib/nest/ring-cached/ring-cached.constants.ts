/** Metadata on a decorated method's wrapper: its `RingCachedMethod`. */
export const RING_CACHED_METHOD = Symbol('ring-redis:cached-method');
/** Metadata on a class: the names of its `@RingCached` methods. */
export const RING_CACHED_METHODS = Symbol('ring-redis:cached-methods');
/** Property set on each instance at bootstrap: the app's cache that serves its calls. */
export const RING_CACHE_BINDING = Symbol('ring-redis:cache-binding');
