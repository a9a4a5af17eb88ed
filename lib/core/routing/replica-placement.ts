import type { HashRing } from '../hashing/hash-ring.js';
import type { RingMembership } from '../membership/ring-membership.js';

const NONE: readonly string[] = Object.freeze([]);

/**
 * Where an entry's copies live (the `replicas` option): its home, the first `replicas`
 * distinct nodes of the total ring clockwise (`totalHash.locateAll`), and its targets, the
 * same walk over the alive ring. With the default distribution, a ring without some nodes
 * meets the others in the same order, so the targets are the home nodes still alive, then as
 * many of the next nodes as there are home nodes out: those stand in for them. With one copy
 * this is the owner and the alive owner, as everywhere else in the ring.
 *
 * Every process computes the same nodes from the same configuration, which the hinted handoff
 * relies on: a copy on a node outside an entry's home is held on behalf of the home nodes
 * that could not take it, and is dropped when they return; a copy on a home node is the
 * entry's own and is kept.
 */
export class ReplicaPlacement {
  constructor(
    private readonly membership: RingMembership,
    /** Copies of each entry, at most the node count (checked with the options). */
    readonly replicas: number,
  ) {}

  /** The nodes an entry lives on when every node is alive, owner first. */
  home(entry: string): string[] {
    return this.membership.totalHash.locateAll(entry, this.replicas);
  }

  /** The alive nodes holding `entry`'s copies now, first the one reads go to; [] with none alive. */
  targets(entry: string, ring: HashRing = this.membership.aliveHash): string[] {
    return ring.locateAll(entry, this.replicas);
  }

  /** True when `node` holds `entry` in its own right (one of its home nodes), not on behalf of one. */
  isHome(node: string, entry: string): boolean {
    return this.holds(node, entry, this.membership.totalHash);
  }

  /** True when `ring` places one of `entry`'s copies on `node` (no list made with one copy). */
  holds(node: string, entry: string, ring: HashRing): boolean {
    if (this.replicas === 1) return ring.locate(entry) === node;
    return ring.locateAll(entry, this.replicas).includes(node);
  }

  /**
   * The home nodes of `entry` that miss a write landing on `node`, and so need a hint there
   * (see HandoffRecorder): those not among the targets now, recorded on every node that stands
   * in for them; with no stand-in (fewer nodes alive than copies), on the first target. A write
   * on a node that is neither (a target that changed while it was on its way) is hinted for
   * the owner, which its return or the fleet's sweep then invalidates.
   */
  standsInFor(node: string, entry: string): readonly string[] {
    if (this.replicas === 1) {
      const owner = this.membership.totalHash.locate(entry)!;
      return owner === node ? NONE : [owner];
    }
    const home = this.home(entry);
    const targets = this.targets(entry);
    const missing = home.filter((name) => !targets.includes(name));
    if (!home.includes(node)) return missing.length > 0 ? missing : [home[0]];
    if (missing.length === 0 || node !== targets[0]) return NONE;
    // The first target carries the hints only when every target is a home node.
    return targets.every((name) => home.includes(name)) ? missing : NONE;
  }
}
