import type { RingDict } from '../../core/index.js';
import type { CachePolicy } from './cache-policy.js';
import type { CachedCall } from './cached-call.js';
import type { CachedCallOutcome } from './cached-call-metrics.js';
import { runSafely } from './method-runs.js';
import type { RingCachedMethod } from './ring-cached.decorator.js';

/** What a call's warnings are about: a decorated method, or a `wrap` key's label. */
export type WarningsAbout = RingCachedMethod | string;

/** Logs a warning (RingCacheService rate-limits them per method or label). */
export type CallWarnings = (about: WarningsAbout, message: string) => void;

/**
 * A call of a decorated method, or of `wrap`'s function, on the resilient path. Made on every
 * call, hits included: one object, no closure for its run and its warnings, its flight key made
 * only when asked for (a hit never asks).
 */
export class FunctionCall implements CachedCall {
  outcome?: CachedCallOutcome;
  private flightKey: string | undefined;

  constructor(
    readonly dict: RingDict<unknown, unknown>,
    readonly key: string,
    readonly policy: CachePolicy,
    readonly tags: readonly string[],
    private readonly fn: (...args: unknown[]) => unknown,
    private readonly self: unknown,
    private readonly args: unknown[],
    private readonly about: WarningsAbout,
    private readonly warnings: CallWarnings,
  ) {}

  get flight(): string {
    return (this.flightKey ??= flightKeyOf(this.dict, this.key));
  }

  run(): Promise<unknown> {
    return runSafely(this.fn, this.self, this.args);
  }

  warn(message: string): void {
    this.warnings(this.about, message);
  }
}

/** The single-flight key of a call: the same key in two groups is two flights. */
export function flightKeyOf(dict: RingDict<unknown, unknown>, key: string): string {
  return `${dict.name}\u0000${key}`;
}
