import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { PROPERTY_DEPS_METADATA, SELF_DECLARED_DEPS_METADATA } from '@nestjs/common/constants.js';
import { DiscoveryService } from '@nestjs/core';
import { undeclaredGroupError } from './ring-dict.providers.js';
import { undeclaredRingGroups } from './ring-group-registry.js';
import { getRingDictToken, RING_REDIS_DECLARED_GROUPS } from './ring-redis.constants.js';
import type { RingRedisModuleOptions } from './ring-redis-module-options.interface.js';
import { RING_REDIS_MODULE_OPTIONS } from './ring-redis.module-definition.js';

/**
 * Fails the boot when a request-scoped class (or a transient one inside it) injects a group
 * no module declares. Such a class is built per request, and the explaining provider with it
 * (see createUndeclaredRingDictProvider): the boot passed and every request answered 500.
 * Singletons need no check here: Nest builds them, and their explaining provider, at boot.
 */
@Injectable()
export class UndeclaredGroupsCheck implements OnModuleInit {
  constructor(
    private readonly discovery: DiscoveryService,
    @Inject(RING_REDIS_MODULE_OPTIONS) private readonly options: RingRedisModuleOptions,
    @Inject(RING_REDIS_DECLARED_GROUPS) private readonly declared: string[],
  ) {}

  onModuleInit(): void {
    const undeclared = new Map(
      undeclaredRingGroups().map((name) => [getRingDictToken(name), name]),
    );
    if (undeclared.size === 0) return;
    const wrappers = [...this.discovery.getProviders(), ...this.discovery.getControllers()];
    for (const wrapper of wrappers) {
      if (wrapper.isDependencyTreeStatic() || typeof wrapper.metatype !== 'function') continue;
      for (const token of injectedTokens(wrapper.metatype)) {
        const name = undeclared.get(token as string);
        if (name !== undefined) throw undeclaredGroupError(name, this.options, this.declared);
      }
    }
  }
}

/** The tokens `@Inject` names on `type`'s constructor parameters and properties. */
function injectedTokens(type: Function): unknown[] {
  const params = (Reflect.getMetadata(SELF_DECLARED_DEPS_METADATA, type) ?? []) as {
    param: unknown;
  }[];
  const properties = (Reflect.getMetadata(PROPERTY_DEPS_METADATA, type) ?? []) as {
    type: unknown;
  }[];
  return [...params.map((dep) => dep.param), ...properties.map((dep) => dep.type)];
}
