import { Injectable, Logger, type Type } from '@nestjs/common';
import { RingArgumentError, RingKeyError, type RingDict } from '../../core/index.js';
import { shown } from '../../core/config/option-checks.js';
import {
  clearPrefixOrReject,
  deleteManyOrReject,
  readThroughRaw,
} from '../../core/read-through.js';
import { RingRedisService } from '../ring-redis.service.js';
import { checkWrapKey, customKey, KeyAnswerError, ownKey, serializeArgs } from './cache-key.js';
import { CachedCallMetrics, WRAP_METHOD, type CachedCallOutcome } from './cached-call-metrics.js';
import { decodeEntry, isEnvelope } from './cache-entry.js';
import { isStringArray, runSafely, tagsOf } from './method-runs.js';
import { flightKeyOf, FunctionCall, type CallWarnings } from './function-call.js';
import { notAPromiseWarning } from './ring-cached-options.js';
import { messageOf, ResilientCache } from './resilient-cache.js';
import { MethodPrefixes } from './method-prefixes.js';
import { FlightTable } from './flight-table.js';
import { WrapPlans, type RingWrapOptions } from './wrap-options.js';
import {
  ringCachedMethodChain,
  type RingCacheBinding,
  type RingCachedMethod,
} from './ring-cached.decorator.js';

/** Warnings about one method are logged at most once per this many ms, whatever the cause. */
const WARN_INTERVAL_MS = 10_000;
/** `wrap` keys whose last warning time is remembered; beyond, the table starts over. */
const MAX_WARNED_KEYS = 1_000;

/** A call's place in the ring: the group's dict and the key inside its prefix. */
interface CacheSlot {
  dict: RingDict<unknown, unknown>;
  key: string;
}

/**
 * Serves `@RingCached` calls and `wrap` for one application, evicts cached calls and
 * invalidates tags. One instance per app: its single-flight table and warnings are its own.
 *
 * Cached values are stored as JSON (whatever the group's codec), so any method result that
 * JSON can carry round-trips; `undefined` is stored as an empty string, which JSON never is.
 * Calls with the resilient options (grace, lock, tags, …) go through ResilientCache, which
 * stores plain JSON too unless an option needs more (see cache-entry.ts).
 */
@Injectable()
export class RingCacheService implements RingCacheBinding {
  private readonly logger = new Logger('RingCached');
  private readonly flights = new FlightTable();
  private readonly resilient = new ResilientCache(this.flights);
  private readonly wrapPlans = new WrapPlans();
  /** Undefined unless an OpenTelemetry SDK records (see CachedCallMetrics). */
  private readonly metrics = CachedCallMetrics.create();
  /** Per method (or per `wrap` key): when its last warning was logged. */
  private readonly warnedAt = new Map<RingCachedMethod | string, number>();
  private readonly prefixes = new MethodPrefixes();

  /** Finds a group's dict: in this import's rings, unless the app has more than one. */
  private dictOfGroup = (name: string): RingDict<unknown, unknown> => this.rings.getOrThrow(name);
  private readonly warnings: CallWarnings = (about, message) => this.warn(about, message);

  constructor(private readonly rings: RingRedisService) {}

  /**
   * Set at boot when the app imports RingRedisModule more than once: each group is found in
   * the import that declares it (see RingCachedExplorer).
   */
  findGroupsWith(dictOf: (name: string) => RingDict<unknown, unknown>): void {
    this.dictOfGroup = dictOf;
  }

  /**
   * The key (inside the group's prefix) under which a call is cached:
   * `dict.getEntry(cache.keyFor(WeatherService, 'forecast', 'Paris'))` is its Redis key.
   */
  keyFor<T, K extends keyof T & string>(
    type: Type<T>,
    methodName: K,
    ...args: T[K] extends (...a: infer A) => unknown ? A : never
  ): string {
    return this.callerKey(this.methodsOf(type, methodName)[0], args, type);
  }

  /** Evicts the cached result of one call: `evict(WeatherService, 'forecast', 'Paris')`. */
  async evict<T, K extends keyof T & string>(
    type: Type<T>,
    methodName: K,
    ...args: T[K] extends (...a: infer A) => unknown ? A : never
  ): Promise<boolean> {
    let removed = false;
    // An override's own call, and the calls it made through `super` to the cached method it
    // overrides: evicting one and not the other would serve the old value again.
    for (const method of this.methodsOf(type, methodName)) {
      // Not delete(): onFail's answer would be taken for the entry removed (or not).
      const key = this.callerKey(method, args, type);
      if ((await this.dictOf(method)[deleteManyOrReject]([key])) > 0) removed = true;
    }
    return removed;
  }

  /** Evicts every cached call of one method (SCAN of its prefix); answers how many. */
  async evictAll<T>(type: Type<T>, methodName: keyof T & string): Promise<number> {
    let removed = 0;
    for (const method of this.methodsOf(type, methodName)) {
      // Not clearPrefix(): onFail's answer, a number, was added to the count.
      removed += await this.dictOf(method)[clearPrefixOrReject](this.prefixes.of(method, type));
    }
    return removed;
  }

  /** The decorated method's wrapper calls this for every call on a bound instance. */
  call(instance: object, method: RingCachedMethod, args: unknown[]): unknown {
    if (method.returns === 'sync') return method.original.apply(instance, args);
    const slot = this.slotOf(method, args, instance.constructor);
    if (method.returns === 'unknown') return this.learn(method, slot, instance, args);
    if (slot === undefined) return this.bypass(method, instance, args);
    if (method.resilient) return this.resilientCall(slot, method, instance, args);
    return this.readThrough(slot, method, instance, args);
  }

  /**
   * Caches `fn`'s result under `key` (inside the group's prefix), as cache-manager's `wrap`
   * does, with the options of `@RingCached`: `ttl`, `group`, `grace`, `graceBackoff`,
   * `softTimeout`, `refreshAhead`, `lock`, `tags`, `cacheNullish`, `codec`. Bad options
   * reject with a RingConfigError naming the option.
   */
  wrap<T>(key: string, fn: () => Promise<T>, options?: RingWrapOptions): Promise<T> {
    try {
      checkWrapKey(key);
      if (typeof fn !== 'function') {
        throw new RingArgumentError(`wrap("${key}"): expected a function to cache`);
      }
      const plan = this.wrapPlans.of(options, (group) => this.dictOfGroup(group));
      const { dict, policy, tags } = plan;
      const about = `wrap("${key}")`;
      const call = new FunctionCall(
        dict,
        key,
        policy,
        tags,
        fn,
        undefined,
        NO_ARGS,
        about,
        this.warnings,
      );
      const answer = this.resilient.get(call) as Promise<T>;
      if (this.metrics === undefined) return answer;
      return this.metrics.settle(answer, dict.name, WRAP_METHOD, () => call.outcome);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Every cached call (and `wrap`) of `group` carrying one of `tags` misses from now on, in
   * every process: the tags' version keys are deleted (one DEL per node, whatever the
   * number of entries); entries are left to expire. Rejects when no node is alive.
   */
  async invalidateTags(tags: readonly string[], group = 'default'): Promise<void> {
    if (!isStringArray(tags)) {
      throw new RingArgumentError(
        `invalidateTags: expected an array of strings, got ${shown(tags)}`,
      );
    }
    if (tags.length === 0) return;
    await this.resilient.invalidateTags(this.dictOfGroup(group), [...new Set(tags)]);
  }

  /** A call of a method with the resilient options: its tags, then the resilient path. */
  private resilientCall(
    slot: CacheSlot,
    method: RingCachedMethod,
    instance: object,
    args: unknown[],
  ): Promise<unknown> {
    let tags: readonly string[] = NO_TAGS;
    if (method.options.tags !== undefined) {
      try {
        tags = tagsOf(method.options.tags as (...a: unknown[]) => unknown, args);
      } catch (error) {
        this.warn(method, `the tags function failed (${messageOf(error)}); called uncached`);
        return this.counted(runSafely(method.original, instance, args), slot, method, instance);
      }
    }
    // The policy is resolved at boot (RingCachedExplorer), before any call takes this path.
    const { dict, key } = slot;
    const policy = method.policy!;
    const call = new FunctionCall(
      dict,
      key,
      policy,
      tags,
      method.original,
      instance,
      args,
      method,
      this.warnings,
    );
    const answer = this.resilient.get(call);
    // Checked here too: the outcome's closure would be made on every hit for nothing.
    if (this.metrics === undefined) return answer;
    return this.counted(answer, slot, method, instance, () => call.outcome);
  }

  /** A call whose arguments cannot be keyed: the method's own answer, counted as a bypass. */
  private bypass(method: RingCachedMethod, instance: object, args: unknown[]): unknown {
    const answer = method.original.apply(instance, args);
    if (this.metrics === undefined) return answer;
    const slot = { dict: this.dictOf(method), key: '' };
    return this.counted(Promise.resolve(answer), slot, method, instance, BYPASS);
  }

  /** `answer`, counted when it settles (see CachedCallMetrics.settle); as it is without an SDK. */
  private counted<T>(
    answer: Promise<T>,
    slot: CacheSlot,
    method: RingCachedMethod,
    instance: object,
    outcome: () => CachedCallOutcome | undefined = BYPASS,
  ): Promise<T> {
    if (this.metrics === undefined) return answer;
    const label = this.metrics.labelOf(instance.constructor, method.methodName);
    return this.metrics.settle(answer, slot.dict.name, label, outcome);
  }

  /**
   * Where a call on an instance of `type` is cached, or undefined (with a warning) when it
   * cannot be: an argument with no stable serialisation, or a `key` function that throws.
   */
  private slotOf(method: RingCachedMethod, args: unknown[], type: Function): CacheSlot | undefined {
    let key: string;
    try {
      key = this.keyOf(method, args, type);
    } catch (error) {
      this.warn(method, `${unkeyable(method, error)}; called uncached`);
      return undefined;
    }
    // The group exists: the explorer checked it at boot, before binding the instance.
    return { dict: this.dictOf(method), key };
  }

  /**
   * A hit costs one GET and a JSON.parse, and nothing else: no closure and no async
   * function of its own (every call pays for this path, so it is kept to one `then`).
   */
  private readThrough(
    slot: CacheSlot,
    method: RingCachedMethod,
    instance: object,
    args: unknown[],
  ): Promise<unknown> {
    // Not getRaw: with the ring unavailable it would answer the group's onFail value as a hit.
    return slot.dict[readThroughRaw](slot.key).then(
      (raw) => {
        if (typeof raw !== 'string') return this.countedMiss(slot, method, instance, args);
        if (raw === '') {
          this.metrics?.hit(slot.dict.name, instance.constructor, method.methodName);
          return undefined;
        }
        try {
          if (isEnvelope(raw)) return this.unwrap(raw, slot, method, instance, args);
          const value = JSON.parse(raw) as unknown;
          this.metrics?.hit(slot.dict.name, instance.constructor, method.methodName);
          return value;
        } catch (error) {
          return this.readFailed(error, slot, method, instance, args);
        }
      },
      (error: unknown) => this.readFailed(error, slot, method, instance, args),
    );
  }

  /**
   * An entry written with options this method no longer has (a deploy changed them): its
   * value while it is fresh and carries no tags (this method cannot check them), else a miss.
   */
  private unwrap(
    raw: string,
    slot: CacheSlot,
    method: RingCachedMethod,
    instance: object,
    args: unknown[],
  ): unknown {
    const entry = decodeEntry(raw, method.policy!.codec);
    const fresh =
      entry.kind === 'value' &&
      entry.meta?.t === undefined &&
      (entry.meta?.x === undefined || Date.now() < entry.meta.x);
    if (!fresh) return this.countedMiss(slot, method, instance, args);
    this.metrics?.hit(slot.dict.name, instance.constructor, method.methodName);
    return entry.value;
  }

  /** Unavailable ring, node error or an undecodable value: the service still answers. */
  private readFailed(
    error: unknown,
    slot: CacheSlot,
    method: RingCachedMethod,
    instance: object,
    args: unknown[],
  ): Promise<unknown> {
    this.warn(method, `cache read failed (${messageOf(error)}); calling the method`);
    return this.counted(this.miss(slot, method, instance, args), slot, method, instance);
  }

  private countedMiss(
    slot: CacheSlot,
    method: RingCachedMethod,
    instance: object,
    args: unknown[],
  ): Promise<unknown> {
    return this.counted(this.miss(slot, method, instance, args), slot, method, instance, MISS);
  }

  /**
   * A miss: concurrent callers of the same key share one run of the method (single
   * flight): the first starts it, the others join.
   */
  private miss(
    slot: CacheSlot,
    method: RingCachedMethod,
    instance: object,
    args: unknown[],
  ): Promise<unknown> {
    const key = flightKeyOf(slot.dict, slot.key);
    const pending = this.flights.get(key);
    if (pending === undefined) {
      return this.fly(key, slot, method, runSafely(method.original, instance, args));
    }
    if (this.flights.joinableUntagged(pending)) return pending;
    // A tagged run of the key (`wrap`, say) may predate an invalidation: waited for, not joined.
    const again = () => this.miss(slot, method, instance, args);
    return pending.then(again, again);
  }

  /** Makes `running`, a run of the method, the flight that callers of `key` join until it is stored. */
  private fly(
    key: string,
    slot: CacheSlot,
    method: RingCachedMethod,
    running: unknown,
  ): Promise<unknown> {
    return this.flights.fly(
      key,
      Promise.resolve(running).then((value) => this.store(slot, method, value)),
    );
  }

  /** Stores a method's result (unless nullish and not wanted); answers the result. */
  private async store(slot: CacheSlot, method: RingCachedMethod, value: unknown): Promise<unknown> {
    if ((value === null || value === undefined) && !method.policy?.cacheNullish) return value;
    try {
      const payload = value === undefined ? '' : JSON.stringify(value);
      await slot.dict.setRaw(slot.key, payload, { ttl: method.policy?.ttl ?? slot.dict.expire });
    } catch (error) {
      this.warn(method, `cache write failed (${messageOf(error)})`);
    }
    return value;
  }

  /**
   * No return type metadata (plain JS, or a compiler that emits none): the first call tells
   * whether the method returns a Promise. If it does, its result is cached like any miss.
   */
  private learn(
    method: RingCachedMethod,
    slot: CacheSlot | undefined,
    instance: object,
    args: unknown[],
  ): unknown {
    const value = method.original.apply(instance, args);
    if (value instanceof Promise || typeof (value as PromiseLike<unknown>)?.then === 'function') {
      method.returns = 'promise';
      if (!slot) return value;
      // Calls made meanwhile now take the Promise path: they join this run on a miss.
      const key = flightKeyOf(slot.dict, slot.key);
      const pending = this.flights.get(key);
      if (pending === undefined) return this.fly(key, slot, method, value);
      // A tagged run of the key is not joined (see miss): this run's own value, not stored.
      if (!this.flights.joinableUntagged(pending)) return value;
      // This run's answer is dropped for the one joined: its rejection would go unhandled.
      Promise.resolve(value).catch(() => undefined);
      return pending;
    }
    method.returns = 'sync';
    this.logger.warn(notAPromiseWarning(`${method.className}.${method.methodName}`));
    return value;
  }

  /** A call's key for keyFor and evict: arguments that cannot be keyed are the caller's error. */
  private callerKey(method: RingCachedMethod, args: unknown[], type: Function): string {
    try {
      return this.keyOf(method, args, type);
    } catch (error) {
      const where = `${method.className}.${method.methodName}`;
      throw new RingKeyError(`${where}: ${unkeyable(method, error)}`, { cause: error });
    }
  }

  private keyOf(method: RingCachedMethod, args: unknown[], type: Function): string {
    const custom = method.options.key as ((...a: unknown[]) => unknown) | undefined;
    const key = custom ? customKey(custom, args) : serializeArgs(args);
    return ownKey(this.prefixes.of(method, type) + key);
  }

  private dictOf(method: RingCachedMethod): RingDict<unknown, unknown> {
    return this.dictOfGroup(method.options.group ?? 'default');
  }

  /** The cached methods a call of `type.methodName` goes through, nearest first. */
  private methodsOf(type: Type<unknown>, methodName: string): RingCachedMethod[] {
    const methods = ringCachedMethodChain(type, methodName);
    if (methods.length === 0) {
      throw new TypeError(`${type.name}.${methodName} is not a @RingCached method`);
    }
    return methods;
  }

  /** Logs a warning about a method, or a `wrap` key, at most once per interval. */
  private warn(about: RingCachedMethod | string, message: string): void {
    // Monotonic: a wall clock set back would silence every method until it caught up.
    const now = performance.now();
    if (now - (this.warnedAt.get(about) ?? -Infinity) < WARN_INTERVAL_MS) return;
    if (typeof about === 'string' && this.warnedAt.size >= MAX_WARNED_KEYS) {
      for (const [key] of this.warnedAt) if (typeof key === 'string') this.warnedAt.delete(key);
    }
    this.warnedAt.set(about, now);
    const name = typeof about === 'string' ? about : `${about.className}.${about.methodName}`;
    this.logger.warn(`${name}: ${message}`);
  }
}

/** Why a call's arguments could not be keyed. */
function unkeyable(method: RingCachedMethod, error: unknown): string {
  if (method.options.key === undefined) {
    return `an argument cannot be serialised (${messageOf(error)})`;
  }
  return error instanceof KeyAnswerError
    ? error.message
    : `the key function threw (${messageOf(error)})`;
}

const NO_TAGS: readonly string[] = [];
/** wrap's function takes no arguments (runSafely never changes the list). */
const NO_ARGS: unknown[] = [];
const BYPASS = (): CachedCallOutcome => 'bypass';
const MISS = (): CachedCallOutcome => 'miss';
