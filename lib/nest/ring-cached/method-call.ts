import type { RingDict } from '../../core/index.js';
import type { CachePolicy } from './cache-policy.js';
import type { CachedCall } from './cached-call.js';
import type { CachedCallOutcome } from './cached-call-metrics.js';
import { runSafely } from './method-runs.js';
import type { RingCachedMethod } from './ring-cached.decorator.js';

/** Logs a warning about a method (RingCacheService rate-limits them). */
export type MethodWarnings = (method: RingCachedMethod, message: string) => void;

/**
 * A call of a decorated method on the resilient path. Made on every call, hits included: one
 * object, no closure for its run and its warnings, its flight key made only when asked for (a
 * hit never asks).
 */
export class MethodCall implements CachedCall {
  readonly policy: CachePolicy;
  outcome?: CachedCallOutcome;
  private flightKey: string | undefined;

  constructor(
    readonly dict: RingDict<unknown, unknown>,
    readonly key: string,
    readonly tags: readonly string[],
    private readonly method: RingCachedMethod,
    private readonly instance: object,
    private readonly args: unknown[],
    private readonly warnings: MethodWarnings,
  ) {
    // Bound at boot (RingCachedExplorer) before any call takes the resilient path.
    this.policy = method.policy!;
  }

  get flight(): string {
    return (this.flightKey ??= flightKeyOf(this.dict, this.key));
  }

  run(): Promise<unknown> {
    return runSafely(this.method.original, this.instance, this.args);
  }

  warn(message: string): void {
    this.warnings(this.method, message);
  }
}

/** The single-flight key of a call: the same key in two groups is two flights. */
export function flightKeyOf(dict: RingDict<unknown, unknown>, key: string): string {
  return `${dict.name}\u0000${key}`;
}
