export { InjectRingDict } from './inject-ring-dict.decorator.js';
export * from './ring-cached/index.js';
export { getRingDictToken, RING_REDIS_LOGGER_CONTEXT } from './ring-redis.constants.js';
export type {
  RingGroupOptions,
  RingRedisModuleOptions,
  RingRedisOptionsFactory,
} from './ring-redis-module-options.interface.js';
export { RING_REDIS_MODULE_OPTIONS } from './ring-redis.module-definition.js';
export { RingRedisModule, type RingRedisModuleAsyncOptions } from './ring-redis.module.js';
export { RingRedisService, type RingGroupEvent } from './ring-redis.service.js';
export { RingUnavailableFilter, type RingUnavailableBody } from './ring-unavailable.filter.js';
