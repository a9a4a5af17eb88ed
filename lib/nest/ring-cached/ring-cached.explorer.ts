import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { RING_CACHE_BINDING } from './ring-cached.constants.js';
import { ringCachedMethod, ringCachedMethodNames } from './ring-cached.decorator.js';
import { RingCacheService } from './ring-cache.service.js';

/**
 * At bootstrap, finds every provider and controller instance with `@RingCached` methods
 * (as @nestjs/schedule finds its decorated methods) and binds it to this app's cache.
 */
@Injectable()
export class RingCachedExplorer implements OnModuleInit {
  private readonly logger = new Logger('RingCached');

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly cache: RingCacheService,
  ) {}

  onModuleInit(): void {
    const wrappers = [...this.discovery.getProviders(), ...this.discovery.getControllers()];
    for (const wrapper of wrappers) {
      const instance: unknown = wrapper.instance;
      if (instance === null || typeof instance !== 'object') continue;
      const type = instance.constructor;
      const names = ringCachedMethodNames(type);
      if (names.length === 0) continue;
      if (!wrapper.isDependencyTreeStatic()) {
        this.logger.warn(
          `${type.name} is request-scoped: its @RingCached methods are called uncached`,
        );
        continue;
      }
      Object.defineProperty(instance, RING_CACHE_BINDING, {
        value: this.cache,
        configurable: true,
        enumerable: false,
      });
      for (const name of names) {
        if (ringCachedMethod(type, name)?.returns === 'sync') {
          this.logger.warn(
            `${type.name}.${name} does not return a Promise: @RingCached calls it through uncached`,
          );
        }
      }
    }
  }
}
