import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { RingRedisModuleOptions } from './ring-redis-module-options.interface.js';

export const {
  ConfigurableModuleClass: RingRedisConfigurableModule,
  MODULE_OPTIONS_TOKEN: RING_REDIS_MODULE_OPTIONS,
  OPTIONS_TYPE: RING_REDIS_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: RING_REDIS_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<RingRedisModuleOptions>({ moduleName: 'RingRedis' })
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createRingRedisOptions')
  .setExtras({ isGlobal: false }, (definition, extras) => ({
    ...definition,
    global: extras.isGlobal,
  }))
  .build();
