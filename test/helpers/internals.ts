import type { RingDict } from '../../lib/index.js';
import type { RingNode } from '../../lib/core/ring-node.js';

/**
 * The one place the tests reach into private state of the engine. A few tests must: to make
 * one node's client fail in a precise way, to check that nothing was sent or left in flight,
 * or to tell a Sentinel node of a failover without sentinels. This is not API: when the
 * engine's internals move, change the views below, not the suites.
 */

/** A dict's nodes by name, and its count of requests in flight. */
export interface RingDictInternals {
  readonly nodes: ReadonlyMap<string, RingNode>;
  readonly inFlight: number;
}

/** A Sentinel node's handling of failover announcements and of the master it reached. */
export interface SentinelNodeInternals {
  /** The sentinels announced `to` (`host:port`) as the new master. */
  masterSwitched(to: string): void;
  /** The ready check passed on the server the client is connected to. */
  reachedMaster(): void;
  /** Why the last 'ready' was refused, if it was. */
  readonly refused?: string;
}

/** Reaches into internals (see above): a view of `target`'s private state. */
export function internals<V, F>(target: RingDict<V, F>): RingDictInternals;
export function internals(target: RingNode): SentinelNodeInternals;
export function internals<V, F>(
  target: RingDict<V, F> | RingNode,
): RingDictInternals | SentinelNodeInternals {
  return target as unknown as RingDictInternals | SentinelNodeInternals;
}
