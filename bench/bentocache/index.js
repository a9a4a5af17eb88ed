export { BentoCache, bentostore } from 'bentocache';
export { redisDriver } from 'bentocache/drivers/redis';
