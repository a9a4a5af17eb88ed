import type { HashRing } from './hashing/hash-ring.js';
import type { NodeCapacities } from './membership/node-lists.js';

/**
 * Names the RingDict method `@RingCached` reads through: `getRaw`, but failing where `getRaw`
 * would answer `onFail`'s value (see RingDict). Internal to the package: the core's index does
 * not export it.
 */
export const readThroughRaw: unique symbol = Symbol('ring-redis.readThroughRaw');

/**
 * Names the RingDict method `@RingCached`'s lock is freed with: deletes a key only while it
 * holds a given value, in one step on the key's node. Internal, like `readThroughRaw`.
 */
export const deleteIfHolds: unique symbol = Symbol('ring-redis.deleteIfHolds');

/**
 * Names the RingDict method `@RingCached`'s tags are invalidated with: `deleteMany`, but
 * rejecting where `deleteMany` would answer `onFail`'s value (a number among them, which reads
 * as keys deleted). Internal, like `readThroughRaw`.
 */
export const deleteManyOrReject: unique symbol = Symbol('ring-redis.deleteManyOrReject');

/** Names `clearPrefix` rejecting as `deleteManyOrReject` does (`@RingCached`'s evictAll). */
export const clearPrefixOrReject: unique symbol = Symbol('ring-redis.clearPrefixOrReject');

/**
 * Names the RingDict getter of what `@RingCached` sees of it besides its API (a CacheView).
 * Internal, like `readThroughRaw`.
 */
export const cacheView: unique symbol = Symbol('ring-redis.cacheView');

/** What `@RingCached` sees of a dict besides its API. */
export interface CacheView {
  /** Its near cache, if it has one. */
  readonly near: NearView | undefined;
  /** Its `migration`, if it has one (ended or not). */
  readonly migration: MigrationView | undefined;
  /** Copies of each entry (the `replicas` option). */
  readonly replicas: number;
  /** The dict's last node lists before its current one, newest first (setNodes). */
  readonly earlierNodes: readonly NodeCapacities[];
  /** A ring of the dict's options over `nodes` (12–49 ms with 3 nodes, by its slices). */
  ringOf(nodes: NodeCapacities): HashRing;
}

/**
 * A rolling change of nodes: while `on`, every process — those on the old nodes and those on
 * the new ones — reads and writes an entry where `from` places it.
 */
export interface MigrationView {
  readonly on: boolean;
  readonly from: HashRing;
}

/** What `@RingCached` sees of a dict's near cache. */
export interface NearView {
  /**
   * The near cache's `maxLag` (ms): `@RingCached` reads a tagged entry's versions as GETs,
   * which it answers from memory, and an invalidation waits that long for other processes to
   * have read it.
   */
  readonly maxLag: number;
  /**
   * The string reply a GET of `entry` (a Redis key) would answer from memory at `now`
   * (performance.now()), as held, with its note, without waiting for a poll of the sockets;
   * undefined when that GET would wait or go to Redis.
   */
  held(entry: string, now: number): NearHeld | undefined;
  /**
   * True when `held` (an answer of `held`) is still its entry's reply and would be answered
   * from memory at `now`: the same as `held(entry, now) === held`, without the lookup.
   */
  holds(held: NearHeld, now: number): boolean;
  /**
   * Keeps `note` with the reply `held` of `entry` (if the entry still holds it), counted as
   * `bytes` more against the near cache's `maxBytes`: what a reader works out from a reply
   * once, instead of on every hit. Not kept with an entry that would then take more than half
   * of `maxBytes`.
   */
  note(entry: string, held: NearHeld, note: unknown, bytes: number): void;
}

/** A string reply the near cache holds: a later reply of the same entry is another one. */
export interface NearHeld {
  readonly raw: string;
  /** Undefined until `NearView.note` keeps one. */
  readonly note: unknown;
}
