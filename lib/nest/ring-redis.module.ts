import { Module, type DynamicModule, type Provider } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { RingConfigError } from '../core/index.js';
import { shown } from '../core/config/option-checks.js';
import { RingCacheService } from './ring-cached/ring-cache.service.js';
import { RingCachedExplorer } from './ring-cached/ring-cached.explorer.js';
import { createRingDictProvider, createUndeclaredRingDictProvider } from './ring-dict.providers.js';
import { recordDeclaredRingGroups, undeclaredRingGroups } from './ring-group-registry.js';
import { getRingDictToken, RING_REDIS_DECLARED_GROUPS } from './ring-redis.constants.js';
import {
  RING_REDIS_ASYNC_OPTIONS_TYPE,
  RING_REDIS_OPTIONS_TYPE,
  RingRedisConfigurableModule,
} from './ring-redis.module-definition.js';
import { RingRedisService } from './ring-redis.service.js';
import { UndeclaredGroupsCheck } from './undeclared-groups.check.js';

export type RingRedisModuleAsyncOptions = typeof RING_REDIS_ASYNC_OPTIONS_TYPE & {
  /**
   * The group names the resolved configuration will have, known synchronously: one RingDict
   * provider each (default `['default']`, the group `@InjectRingDict()` injects). A listed
   * group missing from the resolved configuration fails the boot; `[]` declares none.
   */
  groups?: string[];
};

/**
 * `RingRedisModule.forRoot({ groups, defaults, groupOptions, isGlobal })` or
 * `.forRootAsync({ imports, inject, useFactory | useClass | useExisting, groups, isGlobal })`.
 *
 * Provides and exports `RingRedisService` and one RingDict per declared group (token
 * `getRingDictToken(name)`, injected with `@InjectRingDict(name)`).
 */
@Module({})
export class RingRedisModule extends RingRedisConfigurableModule {
  static override forRoot(options: typeof RING_REDIS_OPTIONS_TYPE): DynamicModule {
    const groups = options?.groups;
    const declared = groups !== null && typeof groups === 'object' ? Object.keys(groups) : [];
    // A malformed `groups` is reported by RingRedisService at boot, with the others.
    return withGroups(super.forRoot(options), declared);
  }

  static override forRootAsync(options: RingRedisModuleAsyncOptions): DynamicModule {
    const { groups, ...rest } = options;
    if (!rest.useFactory && !rest.useClass && !rest.useExisting) {
      throw new RingConfigError(
        'RingRedisModule.forRootAsync: give one of useFactory, useClass or useExisting',
      );
    }
    // Else Nest's own TypeError at boot ("targetMetatype.metatype is not a function").
    for (const field of ['useFactory', 'useClass'] as const) {
      if (rest[field] != null && typeof rest[field] !== 'function') {
        throw new RingConfigError(
          `RingRedisModule.forRootAsync: ${field} must be a function, got ${shown(rest[field])}`,
        );
      }
    }
    return withGroups(super.forRootAsync(rest), checkDeclaredGroups(groups));
  }
}

/** The groups `forRootAsync` declares when `groups` is left out. */
const DEFAULT_GROUPS: readonly string[] = ['default'];

function checkDeclaredGroups(groups: unknown): string[] {
  if (groups === undefined) return [...DEFAULT_GROUPS];
  if (
    !Array.isArray(groups) ||
    groups.some((name: unknown) => typeof name !== 'string' || name === '')
  ) {
    throw new RingConfigError(
      `RingRedisModule.forRootAsync: groups must be an array of group names, got ${JSON.stringify(groups)}`,
    );
  }
  return [...new Set(groups as string[])];
}

/**
 * Adds the providers of the declared groups, plus an explaining provider for every group
 * injected somewhere with `@InjectRingDict` that no module declares.
 *
 * `providers` and `exports` are getters: Nest reads them when it compiles the module (at
 * `NestFactory.create()` / `Test.createTestingModule().compile()`), after every class of the
 * app is defined, whereas `forRoot()` runs when the importing module's decorator does —
 * possibly before a class that injects an undeclared group has been defined.
 */
function withGroups(module: DynamicModule, declared: string[]): DynamicModule {
  recordDeclaredRingGroups(declared);
  const base = module.providers ?? [];
  const baseExports = module.exports ?? [];
  const fixed: Provider[] = [
    { provide: RING_REDIS_DECLARED_GROUPS, useValue: declared },
    RingRedisService,
    RingCacheService,
    RingCachedExplorer,
    UndeclaredGroupsCheck,
    ...declared.map(createRingDictProvider),
  ];
  return {
    ...module,
    imports: [...(module.imports ?? []), DiscoveryModule],
    get providers(): Provider[] {
      return [...base, ...fixed, ...undeclaredRingGroups().map(createUndeclaredRingDictProvider)];
    },
    get exports(): NonNullable<DynamicModule['exports']> {
      return [
        ...baseExports,
        RingRedisService,
        RingCacheService,
        ...[...declared, ...undeclaredRingGroups()].map((name) => getRingDictToken(name)),
      ];
    },
  };
}
