import type { Attributes, Counter } from '@opentelemetry/api';
import { ringInstruments } from '../../core/metrics/ring-instruments.js';

/**
 * How a cached call was answered: `hit` from the ring; `miss` by running the method (or
 * waiting for the run of another caller); `stale` with a value past its ttl, in grace;
 * `bypass` by running the method because the cache could not be used (the ring unavailable
 * or failing, arguments that cannot be keyed); `error` when the call rejected.
 */
export type CachedCallOutcome = 'hit' | 'miss' | 'stale' | 'bypass' | 'error';

/** What `wrap()` calls are counted as: a key is never an attribute. */
export const WRAP_METHOD = 'RingCacheService.wrap';

/**
 * `ring_redis.cached.calls`: each call of a `@RingCached` method or of `wrap()` counted once,
 * by group, method (`Class.method`, the class called) and outcome. Made only when an SDK
 * records; the service holds none otherwise and its hit path pays one test.
 */
export class CachedCallMetrics {
  /** group → method → outcome → attributes: each set made once. */
  private readonly attributes = new Map<string, Map<string, Partial<Record<string, Attributes>>>>();
  /** Class → method name → `Class.method`. */
  private readonly labels = new WeakMap<Function, Map<string, string>>();

  private constructor(private readonly calls: Counter) {}

  /** The metrics of the registered SDK, or undefined when nothing would be recorded. */
  static create(): CachedCallMetrics | undefined {
    const instruments = ringInstruments();
    return instruments && new CachedCallMetrics(instruments.cachedCalls);
  }

  /** `Class.method` of a call of `methodName` on an instance of `type`. */
  labelOf(type: Function, methodName: string): string {
    let names = this.labels.get(type);
    if (names === undefined) this.labels.set(type, (names = new Map()));
    let label = names.get(methodName);
    if (label === undefined) names.set(methodName, (label = `${type.name}.${methodName}`));
    return label;
  }

  /** A hit of the plain read-through of `type`'s `methodName`. */
  hit(group: string, type: Function, methodName: string): void {
    this.record(group, this.labelOf(type, methodName), 'hit');
  }

  record(group: string, method: string, outcome: CachedCallOutcome): void {
    let byMethod = this.attributes.get(group);
    if (byMethod === undefined) this.attributes.set(group, (byMethod = new Map()));
    let byOutcome = byMethod.get(method);
    if (byOutcome === undefined) byMethod.set(method, (byOutcome = {}));
    const attributes = (byOutcome[outcome] ??= { group, method, outcome });
    this.calls.add(1, attributes);
  }

  /**
   * `answer`, counted once it settles: as `outcome()` says if it resolves (a miss when it
   * says nothing: the method ran), as an error if it rejects.
   */
  settle<T>(
    answer: Promise<T>,
    group: string,
    method: string,
    outcome: () => CachedCallOutcome | undefined,
  ): Promise<T> {
    return answer.then(
      (value) => {
        this.record(group, method, outcome() ?? 'miss');
        return value;
      },
      (error: unknown) => {
        this.record(group, method, 'error');
        throw error;
      },
    );
  }
}
