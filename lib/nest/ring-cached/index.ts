export { MAX_KEY_BYTES, serializeArgs, UnserializableArgumentError } from './cache-key.js';
export { RingCacheService } from './ring-cache.service.js';
export { RingCached, type RingCachedOptions } from './ring-cached.decorator.js';
export { RingCachedExplorer } from './ring-cached.explorer.js';
