import 'reflect-metadata';
import type { CachePolicy, RingCacheBehaviour } from './cache-policy.js';
import {
  RING_CACHE_BINDING,
  RING_CACHED_METHOD,
  RING_CACHED_METHODS,
} from './ring-cached.constants.js';

export interface RingCachedOptions extends RingCacheBehaviour {
  /**
   * Key prefix inside the group's prefix (default `ClassName.method:`, with the class of the
   * instance called: subclasses that inherit the method get keys of their own).
   */
  prefix?: string;
  /** The ring group (default `'default'`). */
  group?: string;
  /** Builds the key from the arguments (default: a stable serialisation of them). */
  key?: (...args: never[]) => string;
  /**
   * The call's tags, from its arguments: `RingCacheService.invalidateTags` makes every cached
   * call carrying one of them miss, in every process.
   */
  tags?: (...args: never[]) => readonly string[];
}

/** Everything the cache needs to know about one decorated method. */
export interface RingCachedMethod {
  /** The class that declares the method. */
  readonly declaringClass: Function;
  readonly className: string;
  readonly methodName: string;
  /** `prefix` with its default applied for the declaring class (see RingCacheService.prefixOf). */
  readonly prefix: string;
  readonly options: Readonly<RingCachedOptions>;
  readonly original: (...args: unknown[]) => unknown;
  /**
   * What TypeScript declared it returns: `'promise'`, `'sync'` (any other type: it is
   * called through uncached) or `'unknown'` (no metadata; learnt on the first call).
   */
  returns: 'promise' | 'sync' | 'unknown';
  /** The options resolved, set when the app binds the method at boot. */
  policy?: CachePolicy;
  /** Calls take the resilient path (grace, lock, tags, …), not the plain read-through. */
  resilient?: boolean;
}

/** What the app's cache offers a decorated method's wrapper. */
export interface RingCacheBinding {
  call(instance: object, method: RingCachedMethod, args: unknown[]): unknown;
}

/**
 * Memoises the method's resolved value through the ring. The method is wrapped here, on
 * the prototype, so controllers' route handlers see the wrapper too; the wrapper finds the
 * cache of the app that created the instance (bound at bootstrap), so two apps in one
 * process never share a cache. Until an app binds the instance, calls go straight through.
 *
 * Only a method that returns a Promise can be decorated: on any other, TypeScript reports
 * the decorator as an error (a method compiled without that check is called through
 * uncached, with a warning).
 */
export function RingCached(options: RingCachedOptions = {}) {
  return <T extends (...args: never[]) => Promise<unknown>>(
    target: object,
    name: string | symbol,
    descriptor: TypedPropertyDescriptor<T>,
  ): void => {
    // No descriptor on a class field (plain JavaScript, or a cast): refused as not a method.
    const original = descriptor?.value as unknown as (...args: unknown[]) => unknown;
    checkDecorated(target, name, original);
    const className = target.constructor.name;
    const methodName = name as string;
    const declared: unknown = Reflect.getMetadata('design:returntype', target, name);
    const method: RingCachedMethod = {
      declaringClass: target.constructor,
      className,
      methodName,
      prefix: options.prefix ?? `${className}.${methodName}:`,
      options: { ...options },
      original,
      returns: declared === undefined ? 'unknown' : declared === Promise ? 'promise' : 'sync',
    };

    const wrapper = function (this: object, ...args: unknown[]): unknown {
      const binding = (this as { [RING_CACHE_BINDING]?: RingCacheBinding } | undefined)?.[
        RING_CACHE_BINDING
      ];
      return binding ? binding.call(this, method, args) : original.apply(this, args);
    };
    Object.defineProperty(wrapper, 'name', { value: original.name });
    // Decorators applied before this one wrote their metadata on the original function:
    // carry it over, so route, guard and other metadata keep working.
    for (const key of Reflect.getOwnMetadataKeys(original)) {
      Reflect.defineMetadata(key, Reflect.getOwnMetadata(key, original), wrapper);
    }
    Reflect.defineMetadata(RING_CACHED_METHOD, method, wrapper);
    Reflect.defineMetadata(RING_CACHED_METHODS, [...declaredOn(target), method], target);
    descriptor.value = wrapper as unknown as T;
  };
}

/**
 * Refuses, as the class is defined, what would be cached wrongly or not at all without a word:
 * the app finds a class's cached methods by name on its prototype, so a static method (on the
 * class) or one named by a symbol would be skipped (its options never checked, its tags never
 * invalidated), and a second `@RingCached` on one method would wait on its own miss.
 */
function checkDecorated(target: object, name: string | symbol, original: unknown): void {
  const where = `${typeof target === 'function' ? target.name : target.constructor.name}.${String(name)}`;
  if (typeof original !== 'function') {
    throw new TypeError(`@RingCached() decorates methods; ${String(name)} is not one`);
  }
  if (typeof target === 'function') {
    throw new TypeError(`@RingCached() decorates instance methods; ${where} is static`);
  }
  if (typeof name !== 'string') {
    throw new TypeError(`@RingCached() needs a method named by a string; ${where} has a symbol`);
  }
  // By the class too: a decorator between the two hides the first one's wrapper, and the
  // call waited on itself for ever.
  const twice =
    Reflect.getOwnMetadata(RING_CACHED_METHOD, original) !== undefined ||
    declaredOn(target).some((method) => method.methodName === name);
  if (twice) throw new TypeError(`@RingCached() is applied twice to ${where}; keep one`);
}

/**
 * The `@RingCached` methods declared on `prototype` itself. Kept on the prototype, not its
 * `constructor`: one inherited (ES5-style subclassing) or reassigned named another class.
 */
function declaredOn(prototype: object): readonly RingCachedMethod[] {
  return (Reflect.getOwnMetadata(RING_CACHED_METHODS, prototype) ?? []) as RingCachedMethod[];
}

/**
 * The `@RingCached` methods named `methodName` along `type`'s class chain, nearest first: an
 * override decorated too, then the method it overrides (which it may call through `super`).
 */
export function ringCachedMethodChain(type: Function, methodName: string): RingCachedMethod[] {
  const chain: RingCachedMethod[] = [];
  for (let proto: object | null = type.prototype; proto; proto = Object.getPrototypeOf(proto)) {
    const fn: unknown = Object.getOwnPropertyDescriptor(proto, methodName)?.value;
    if (typeof fn !== 'function') continue;
    // The wrapper's own, else the class's record: a decorator above @RingCached may have
    // wrapped it without its metadata (the method was then never bound, so never cached).
    const method =
      (Reflect.getOwnMetadata(RING_CACHED_METHOD, fn) as RingCachedMethod | undefined) ??
      declaredOn(proto).find((declared) => declared.methodName === methodName);
    if (method !== undefined && !chain.includes(method)) chain.push(method);
  }
  return chain;
}

/** Names of the `@RingCached` methods of a class and its ancestors. */
export function ringCachedMethodNames(type: Function): string[] {
  const names = new Set<string>();
  for (let proto: object | null = type.prototype; proto; proto = Object.getPrototypeOf(proto)) {
    for (const method of declaredOn(proto)) names.add(method.methodName);
  }
  return [...names];
}
