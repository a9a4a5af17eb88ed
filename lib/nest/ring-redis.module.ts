import { Module, Scope, type DynamicModule, type Provider } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { RingConfigError } from '../core/index.js';
import { requestedRingGroups } from './inject-ring-dict.decorator.js';
import { RingCacheService } from './ring-cached/ring-cache.service.js';
import { RingCachedExplorer } from './ring-cached/ring-cached.explorer.js';
import { getRingDictToken, RING_REDIS_DECLARED_GROUPS } from './ring-redis.constants.js';
import {
  RING_REDIS_ASYNC_OPTIONS_TYPE,
  RING_REDIS_OPTIONS_TYPE,
  RingRedisConfigurableModule,
} from './ring-redis.module-definition.js';
import { RingRedisService } from './ring-redis.service.js';

export type RingRedisModuleAsyncOptions = typeof RING_REDIS_ASYNC_OPTIONS_TYPE & {
  /** The group names the resolved configuration will have: one RingDict provider each. */
  groups?: string[];
};

/**
 * `RingRedisModule.forRoot({ groups, defaults, groupOptions, isGlobal })` or
 * `.forRootAsync({ imports, inject, useFactory | useClass | useExisting, groups, isGlobal })`.
 */
@Module({})
export class RingRedisModule extends RingRedisConfigurableModule {
  static override forRoot(options: typeof RING_REDIS_OPTIONS_TYPE): DynamicModule {
    return withGroups(super.forRoot(options), Object.keys(options.groups ?? {}));
  }

  static override forRootAsync(options: RingRedisModuleAsyncOptions): DynamicModule {
    const { groups, ...rest } = options;
    return withGroups(super.forRootAsync(rest), groups ?? []);
  }
}

function withGroups(module: DynamicModule, declared: string[]): DynamicModule {
  const dictProviders: Provider[] = declared.map((name) => ({
    provide: getRingDictToken(name),
    useFactory: (rings: RingRedisService) => rings.getOrThrow(name),
    inject: [RingRedisService],
  }));
  // A group injected with @InjectRingDict but never declared: say so plainly. Transient, so
  // it is only built (and only throws) where something actually injects it.
  const undeclared: Provider[] = [...requestedRingGroups]
    .filter((name) => !declared.includes(name))
    .map((name) => ({
      provide: getRingDictToken(name),
      scope: Scope.TRANSIENT,
      useFactory: () => {
        throw new RingConfigError(
          `@InjectRingDict('${name}'): no group "${name}" is declared; declared groups: ${declared.map((n) => `"${n}"`).join(', ') || 'none'} (list it in forRoot's groups or forRootAsync({ groups }))`,
        );
      },
    }));
  const tokens = [...declared, ...requestedRingGroups].map((name) => getRingDictToken(name));
  return {
    ...module,
    imports: [...(module.imports ?? []), DiscoveryModule],
    providers: [
      ...(module.providers ?? []),
      { provide: RING_REDIS_DECLARED_GROUPS, useValue: declared },
      RingRedisService,
      RingCacheService,
      RingCachedExplorer,
      ...dictProviders,
      ...undeclared,
    ],
    exports: [...(module.exports ?? []), RingRedisService, RingCacheService, ...new Set(tokens)],
  };
}
