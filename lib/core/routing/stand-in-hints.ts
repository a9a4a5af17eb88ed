import type { RingMembership } from '../membership/ring-membership.js';
import { isConnectionError } from '../node/connection-errors.js';
import type { RingNode } from '../node/ring-node.js';
import { addTo } from '../collections.js';
import type { NodeOp } from './entry-ops.js';
import type { ReplicaPlacement } from './replica-placement.js';
import type { RequestRouter } from './request-router.js';

/** Sends nothing: the hints `tryOn` records before a write are all this request carries. */
const HINTS_ONLY: NodeOp<number, readonly string[]> = () => Promise.resolve(0);

/**
 * A copy's write failed and no node is left to take it in its node's stead (as many copies as
 * nodes alive): records the hints of `entries` for the failed nodes on the first node holding
 * a copy (ReplicaPlacement.standsInFor), as a write sent after the ejection would have. The
 * other copies' writes went out while every node was in, with no hint; without this, the
 * failed node's return would keep its older copy, and a deleted entry would come back (with
 * `replicas` 3 of 3 nodes, 600 of 600 after a `deleteMany` meeting a cut link). A node that
 * fails meanwhile is ejected and the next one carries them.
 */
export async function hintWithoutStandIn<F>(
  router: RequestRouter<F>,
  membership: RingMembership,
  placement: ReplicaPlacement,
  entries: readonly string[],
  failed: RingNode[],
): Promise<void> {
  let left = entries;
  while (left.length > 0 && !membership.closed) {
    const ring = membership.ringWithout(failed);
    const groups = new Map<string, string[]>();
    for (const entry of left) {
      const first = placement.targets(entry, ring)[0];
      if (first !== undefined) addTo(groups, first, entry);
    }
    const retry: string[] = [];
    await Promise.all(
      [...groups].map(async ([name, group]) => {
        const node = membership.node(name);
        try {
          await router.tryOn(node, group, true, HINTS_ONLY);
        } catch (error) {
          if (!isConnectionError(error)) throw error;
          membership.eject(node, error);
          failed.push(node);
          retry.push(...group);
        }
      }),
    );
    left = retry;
  }
}
