import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { RingConfigError, type RingDict } from '../../core/index.js';
import { DiscoveryService } from '@nestjs/core';
import { RING_REDIS_LOGGER_CONTEXT } from '../ring-redis.constants.js';
import { quotedList } from '../quoted-list.js';
import { RingRedisService } from '../ring-redis.service.js';
import { notAPromiseWarning, validateRingCachedOptions } from './ring-cached-options.js';
import { RING_CACHE_BINDING } from './ring-cached.constants.js';
import { ringCachedMethodChain, ringCachedMethodNames } from './ring-cached.decorator.js';
import { RingCacheService } from './ring-cache.service.js';

/**
 * At bootstrap, finds every provider and controller instance with `@RingCached` methods
 * (as @nestjs/schedule finds its decorated methods), checks their options and binds it to
 * this app's cache.
 */
@Injectable()
export class RingCachedExplorer implements OnModuleInit {
  private readonly logger = new Logger('RingCached');

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly cache: RingCacheService,
    private readonly rings: RingRedisService,
  ) {}

  async onModuleInit(): Promise<void> {
    const providers = this.discovery.getProviders();
    const imports = instancesOf(providers, RingRedisService);
    // Imported more than once, every import's explorer sees every provider: the first binds
    // them all, to groups of any import, or the last to run would rebind them to its own.
    if (imports.length > 1 && imports[0] !== this.rings) return;
    try {
      this.bindAll(providers, imports);
    } catch (error) {
      // A bad @RingCached option fails the boot: no ring may keep the process alive.
      await Promise.all(imports.map((rings) => rings.close()));
      throw error;
    }
  }

  private bindAll(providers: Wrapper[], imports: RingRedisService[]): void {
    const groups = imports.length > 1 ? this.shareGroups(providers, imports) : undefined;
    const groupNames = groups ? [...groups.keys()] : this.rings.names();
    const expireOf = (group: string) => (groups?.get(group) ?? this.rings).getOrThrow(group).expire;
    const wrappers = [...providers, ...this.discovery.getControllers()];
    /** Pairs of layers already warned about: each subclass would repeat the warning. */
    const warned = new Set<string>();
    for (const wrapper of wrappers) {
      if (!wrapper.isDependencyTreeStatic()) this.warnUncachedTransients(wrapper);
      const instance: unknown = wrapper.instance;
      if (instance === null || typeof instance !== 'object') continue;
      const type = instance.constructor;
      // Every cached layer of every method: an override without the decorator is not
      // cached, but the cached method it calls through `super` is.
      const names = ringCachedMethodNames(type);
      const methods = names.flatMap((name) => ringCachedMethodChain(type, name));
      if (methods.length === 0) continue;
      for (const method of methods) validateRingCachedOptions(method, groupNames, expireOf);
      if (!wrapper.isDependencyTreeStatic()) {
        this.logger.warn(
          `${type.name} is request-scoped: its @RingCached methods are called uncached`,
        );
        continue;
      }
      for (const name of names) this.warnSharedPrefix(type, name, warned);
      // A transient provider has one instance per consumer besides its own: bind them all.
      const instances = [
        instance,
        ...wrapper.getStaticTransientInstances().map((i) => i?.instance),
      ];
      for (const each of instances) {
        if (each === null || typeof each !== 'object') continue;
        if (!Object.isExtensible(each)) {
          throw new RingConfigError(
            `${type.name} is frozen (or sealed, or not extensible): @RingCached cannot bind its methods to the cache; freeze it after the app has bootstrapped, or not at all`,
          );
        }
        Object.defineProperty(each, RING_CACHE_BINDING, {
          value: this.cache,
          configurable: true,
          enumerable: false,
        });
      }
      for (const method of methods) {
        if (method.returns === 'sync') {
          this.logger.warn(notAPromiseWarning(`${type.name}.${method.methodName}`));
        }
      }
    }
  }

  /**
   * An override and the method it overrides, both cached with one explicit `prefix` in one
   * group, share keys: if the override calls the other through `super`, its miss waits on
   * itself. (Default prefixes never collide: see RingCacheService.prefixOf.)
   */
  private warnSharedPrefix(type: Function, methodName: string, warned: Set<string>): void {
    const chain = ringCachedMethodChain(type, methodName).filter(
      (method) => method.options.prefix !== undefined,
    );
    for (let i = 0; i < chain.length; i++) {
      for (let j = i + 1; j < chain.length; j++) {
        const [outer, inner] = [chain[i], chain[j]];
        const group = outer.options.group ?? 'default';
        if (outer.options.prefix !== inner.options.prefix) continue;
        if (group !== (inner.options.group ?? 'default')) continue;
        const pair = `${outer.className}.${methodName}\u0000${inner.className}`;
        if (warned.has(pair)) continue;
        warned.add(pair);
        this.logger.warn(
          `${outer.className}.${methodName} and ${inner.className}.${methodName}, which it overrides, share the prefix ${JSON.stringify(outer.options.prefix)} in group "${group}": a call through super would wait on its own miss; give them different prefixes`,
        );
      }
    }
  }

  /**
   * The app imports the module more than once: every import's cache finds each group in the
   * first import that declares it, so a cached call and its eviction meet on the same rings
   * whichever feature module asks. Each `forRoot` builds rings of its own, two sets of
   * connections and two hinted-handoff logs blind to each other's writes: said once, here.
   */
  private shareGroups(
    providers: Wrapper[],
    imports: RingRedisService[],
  ): Map<string, RingRedisService> {
    const logger = new Logger(RING_REDIS_LOGGER_CONTEXT);
    logger.warn(
      `RingRedisModule.forRoot/forRootAsync is imported ${imports.length} times in this app: each import builds its own rings and connections; import it once, in the root module (isGlobal: true)`,
    );
    const groups = new Map<string, RingRedisService>();
    const repeated = new Set<string>();
    for (const rings of imports) {
      for (const name of rings.names()) {
        if (groups.has(name)) repeated.add(name);
        else groups.set(name, rings);
      }
    }
    if (repeated.size > 0) {
      logger.warn(
        `groups ${quotedList([...repeated])} are declared by more than one of those imports: @RingCached and RingCacheService use the first import's`,
      );
    }
    const dictOf = (name: string): RingDict<unknown, unknown> => {
      const rings = groups.get(name);
      if (rings === undefined) throw new RingConfigError(`no group "${name}" in this app`);
      return rings.getOrThrow(name);
    };
    for (const cache of instancesOf(providers, RingCacheService)) cache.findGroupsWith(dictOf);
    return groups;
  }

  /**
   * A transient provider injected into a request-scoped one is created per request, after
   * boot, so it is never bound: say so rather than leave it silently uncached.
   */
  private warnUncachedTransients(consumer: Wrapper): void {
    const dependencies = [
      ...(consumer.getCtorMetadata() ?? []),
      ...(consumer.getPropertiesMetadata() ?? []).map((property) => property.wrapper),
    ];
    for (const dependency of dependencies) {
      const type = dependency?.metatype;
      if (!dependency?.isTransient || typeof type !== 'function') continue;
      if (ringCachedMethodNames(type).length === 0) continue;
      this.logger.warn(
        `${type.name} is transient and injected into request-scoped ${String(consumer.name)}: its @RingCached methods are called uncached there`,
      );
    }
  }
}

/** What DiscoveryService answers for each provider and controller. */
type Wrapper = ReturnType<DiscoveryService['getProviders']>[number];

/** The instances of `type` among `wrappers`, in the app's order. */
function instancesOf<T>(wrappers: Wrapper[], type: new (...args: never[]) => T): T[] {
  return wrappers
    .filter((wrapper) => wrapper.metatype === type && wrapper.instance)
    .map((wrapper) => wrapper.instance as T);
}
