import { reassignOwners } from './continuum.js';

/**
 * The owner of every slice of the default distribution, and the rings without some nodes.
 *
 * Removing nodes hands each of their slices to the owner of the next slice clockwise that
 * belongs to a node still present, so only their keys move. Rather than walk all S slices
 * for that, the slices are grouped by owner once (on the first removal, so only rings
 * that ever lose a node pay its 4 bytes a slice), and a removal copies the owners (a
 * native copy) and visits only the removed nodes' slices, each finding its heir a slice
 * or two further on. Measured side by side with the walk: about the same at 3 nodes
 * (a third of the slices change hands), 2× faster at 10 nodes and 5× at 100 (S = 32768).
 * When more than half the slices change hands, runs of removed slices grow long and the
 * walk (`reassignOwners`) is cheaper: it is used instead.
 */
export class SliceOwners {
  /** Slice indexes grouped by owner: node j's slices are `bySlice[start[j] .. start[j + 1])`. */
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
    if (!keep.some(Boolean) || owners.length === 0) return new Uint16Array(0);
    const { slices, start } = this.grouped();
    let removed = 0;
    for (let j = 0; j < this.nodeCount; j++) if (!keep[j]) removed += start[j + 1] - start[j];
    if (removed * 2 > owners.length) return reassignOwners(owners, keep);
    const reassigned = owners.slice();
    const kept = Uint8Array.from(keep, Number);
    const n = owners.length;
    for (let j = 0; j < this.nodeCount; j++) {
      if (kept[j] === 1) continue;
      for (let k = start[j]; k < start[j + 1]; k++) {
        let i = slices[k] + 1;
        if (i === n) i = 0;
        while (kept[owners[i]] === 0) if (++i === n) i = 0;
        reassigned[slices[k]] = owners[i];
      }
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
