export { RingRedisHealthIndicator, type RingRedisHealthOptions } from './ring-redis.health.js';
