import type { RingDict } from '../../core/index.js';
import { decodeEntry, type CachedEntry } from './cache-entry.js';
import type { CachePolicy } from './cache-policy.js';
import type { CachedCallOutcome } from './cached-call-metrics.js';
import type { TagPlaces } from './tag-versions.js';

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

/** True when every version is there and the same in both. */
export function sameIds(a: readonly (string | null)[], b: readonly (string | null)[]): boolean {
  return a.length === b.length && a.every((id, i) => id !== null && id === b[i]);
}

export function seenOf(
  call: CachedCall,
  raw: string | undefined,
  places: TagPlaces | undefined,
  ids: readonly (string | null)[],
): Seen {
  const entry = raw === undefined ? undefined : decodeEntry(raw, call.policy.codec);
  return { entry, tagKeys: places?.keys, ids };
}

export function valueOf(seen: Seen): unknown {
  return (seen.entry as Extract<CachedEntry, { kind: 'value' }>).value;
}

/** The call's ttl in ms: the option, else the group's expire; undefined for none. */
export function ttlMsOrUndefined(call: CachedCall): number | undefined {
  const seconds = call.policy.ttl ?? call.dict.expire;
  return seconds === undefined ? undefined : seconds * 1000;
}

/** For refreshAhead, which boot checks has a ttl. */
export function ttlMsOf(call: CachedCall): number {
  return ttlMsOrUndefined(call) ?? Number.POSITIVE_INFINITY;
}
