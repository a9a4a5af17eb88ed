import { Scope, type FactoryProvider } from '@nestjs/common';
import { RingConfigError, type RingDict } from '../core/index.js';
import { getRingDictToken, RING_REDIS_DECLARED_GROUPS } from './ring-redis.constants.js';
import type { RingRedisModuleOptions } from './ring-redis-module-options.interface.js';
import { RING_REDIS_MODULE_OPTIONS } from './ring-redis.module-definition.js';
import { RingRedisService } from './ring-redis.service.js';
import { quotedList } from './quoted-list.js';

/** The provider of a declared group: the RingDict that `RingRedisService` built for it. */
export function createRingDictProvider(name: string): FactoryProvider<RingDict<unknown, unknown>> {
  return {
    provide: getRingDictToken(name),
    useFactory: (rings: RingRedisService) => rings.getOrThrow(name),
    inject: [RingRedisService],
  };
}

/**
 * The provider of a group injected with `@InjectRingDict(name)` but declared by no module:
 * building it throws a `RingConfigError` that names the group and the declared ones.
 *
 * Transient, so Nest builds it only for a class that injects it: an app that never asks for
 * the group is not affected by some other class of the process asking for it. It reads the
 * resolved options, not `RingRedisService`, so the boot fails before any connection opens.
 */
export function createUndeclaredRingDictProvider(name: string): FactoryProvider<never> {
  return {
    provide: getRingDictToken(name),
    scope: Scope.TRANSIENT,
    useFactory: (options: RingRedisModuleOptions | undefined, declared: string[]): never => {
      throw undeclaredGroupError(name, options, declared);
    },
    inject: [RING_REDIS_MODULE_OPTIONS, RING_REDIS_DECLARED_GROUPS],
  };
}

/** Why `@InjectRingDict(name)` has no RingDict: named with the declared groups, and what to do. */
export function undeclaredGroupError(
  name: string,
  options: RingRedisModuleOptions | undefined,
  declared: readonly string[],
): RingConfigError {
  const where = `@InjectRingDict('${name}')`;
  const groups = options?.groups;
  const configured = groups !== null && typeof groups === 'object' ? Object.keys(groups) : [];
  if (configured.includes(name)) {
    return new RingConfigError(
      `${where}: group "${name}" is in the resolved configuration but not declared, so it has no provider; list it in forRootAsync({ groups: [...] }) (declared groups: ${quotedList(declared)}), or reach it with RingRedisService.get('${name}')`,
    );
  }
  return new RingConfigError(
    `${where}: no group "${name}" is declared; declared groups: ${quotedList(declared)}; configure it in forRoot({ groups }), or in the resolved options and forRootAsync({ groups: [...] })`,
  );
}
