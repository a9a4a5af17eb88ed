export { BentoCache, bentostore } from 'bentocache';
export { memoryDriver } from 'bentocache/drivers/memory';
export { redisDriver } from 'bentocache/drivers/redis';
