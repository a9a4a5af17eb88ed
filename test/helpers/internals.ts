import type { RingDict } from '../../lib/index.js';
import type { RingNode } from '../../lib/core/node/ring-node.js';

/**
 * The one place the tests reach into private state of the engine. A few tests must: to make
 * one node's client fail in a precise way, or to check that nothing was sent or left in
 * flight. This is not API: when the engine's internals move, change the views below, not the
 * suites.
 */

/** A dict's nodes (its membership), and its count of requests in flight (its router's). */
export interface RingDictInternals {
  readonly membership: { all(): Iterable<RingNode>; node(name: string): RingNode };
  readonly router: { readonly inFlight: number };
}

/** Reaches into internals (see above): a view of `dict`'s private state. */
export function internals<V, F>(dict: RingDict<V, F>): RingDictInternals {
  return dict as unknown as RingDictInternals;
}
