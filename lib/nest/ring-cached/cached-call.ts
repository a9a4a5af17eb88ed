import type { RingDict } from '../../core/index.js';
import type { CachedEntry } from './cache-entry.js';
import type { CachePolicy } from './cache-policy.js';
import type { CachedCallOutcome } from './cached-call-metrics.js';

/** One cached call, as `@RingCached` and `wrap` describe it. */
export interface CachedCall {
  readonly dict: RingDict<unknown, unknown>;
  /** The key inside the group's prefix. */
  readonly key: string;
  /** The in-process single-flight key (the same key in two groups is two flights). */
  readonly flight: string;
  readonly policy: CachePolicy;
  /** The call's tags, without repeats (none: empty). */
  readonly tags: readonly string[];
  /** Runs the method (or wrap's function); never throws synchronously. */
  run(): Promise<unknown>;
  /** Logs a warning about this method (rate-limited by the caller). */
  warn(message: string): void;
  /** How the call was answered, once known (set here; unset means a run of the method). */
  outcome?: CachedCallOutcome;
}

/** What one read saw: the entry, and the versions of the call's tags on its node. */
export interface Seen {
  readonly entry: CachedEntry | undefined;
  readonly tagKeys: readonly string[] | undefined;
  readonly ids: readonly (string | null)[];
}
