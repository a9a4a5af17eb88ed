export { MAX_KEY_BYTES, serializeArgs, UnserializableArgumentError } from './cache-key.js';
export type { Duration, DurationString } from '../../core/config/duration.js';
export type {
  RingCacheBehaviour,
  RingCachedCodecName,
  RingCachedLockOptions,
} from './cache-policy.js';
export { RingCacheService } from './ring-cache.service.js';
export { RingCached, type RingCachedOptions } from './ring-cached.decorator.js';
export { RingCachedExplorer } from './ring-cached.explorer.js';
export type { RingWrapOptions } from './wrap-options.js';
