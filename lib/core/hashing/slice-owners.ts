import { reassignOwners } from './continuum.js';

/**
 * The owner of every slice of the default distribution, and the rings without some nodes.
 *
 * Removing nodes hands each of their slices to the owner of the next slice clockwise that
 * belongs to a node still present, so only their keys move. With several nodes out, one
 * walk over all S slices does that (`reassignOwners`). With one node out (an ejection, or
 * a rediscovery while another node stays out), only its own slices are visited: the
 * owners are copied (a native copy), and its slices are taken from the last to the first,
 * each getting the owner now recorded for the slice after it — the next node's, or the heir
 * just given to its own next slice. No search and no branch per slice; the node's slices
 * are grouped once per configuration, on its first removal (4 bytes a slice, paid only by
 * rings that ever lose a node).
 */
export class SliceOwners {
  /** Slice indexes grouped by owner: node j's slices are `slices[start[j] .. start[j + 1])`, ascending. */
  private byOwner?: { slices: Int32Array; start: Int32Array };

  constructor(
    /** `owners[i]`: index of the node owning slice i. */
    readonly owners: Uint16Array,
    private readonly nodeCount: number,
  ) {}

  /**
   * The owners when only the nodes with `keep[j]` remain: the slices of the others go to
   * the next kept slice's owner clockwise (wrapping round). Empty when none remains.
   */
  keeping(keep: readonly boolean[]): Uint16Array {
    const { owners } = this;
    let out = -1;
    let outs = 0;
    for (let j = 0; j < this.nodeCount; j++) {
      if (keep[j]) continue;
      out = j;
      outs++;
    }
    if (outs === 0) return owners;
    if (outs === this.nodeCount || owners.length === 0) return new Uint16Array(0);
    if (outs > 1) return reassignOwners(owners, keep);
    return this.without(out);
  }

  /** The owners without node `out`, another node being left. */
  private without(out: number): Uint16Array {
    const { owners } = this;
    const n = owners.length;
    const reassigned = owners.slice();
    // Slices 0, 1, … of `out` at the start of the ring: their heir is the first other owner.
    let lead = 0;
    while (lead < n && owners[lead] === out) lead++;
    if (lead === n) return reassigned;
    for (let i = 0; i < lead; i++) reassigned[i] = owners[lead];
    // The rest, last first: the slice after each one already holds its final owner.
    const { slices, start } = this.grouped();
    for (let k = start[out + 1] - 1; k >= start[out] && slices[k] >= lead; k--) {
      const next = slices[k] + 1;
      reassigned[slices[k]] = reassigned[next === n ? 0 : next];
    }
    return reassigned;
  }

  /** Slices grouped by owner, by a counting sort: O(S), once. */
  private grouped(): { slices: Int32Array; start: Int32Array } {
    if (this.byOwner) return this.byOwner;
    const { owners, nodeCount } = this;
    const start = new Int32Array(nodeCount + 1);
    for (let i = 0; i < owners.length; i++) start[owners[i] + 1]++;
    for (let j = 0; j < nodeCount; j++) start[j + 1] += start[j];
    const at = start.slice(0, nodeCount);
    const slices = new Int32Array(owners.length);
    for (let i = 0; i < owners.length; i++) slices[at[owners[i]]++] = i;
    this.byOwner = { slices, start };
    return this.byOwner;
  }
}
