import { hash as digest } from 'node:crypto';

/**
 * What the default distribution ranks: for every preference block of the ring and every
 * node, a key; the smaller the key, the more the block wants the node. Keys depend only on
 * the node's name, its capacity and the block's number, so a node's keys are the same
 * whichever other nodes are configured: that is what keeps placements stable when a node
 * is added or removed.
 *
 * The key is weighted rendezvous hashing's: −ln(u) / capacity, u uniform in (0, 1) drawn
 * from a hash of (name, block). Without quotas the smallest key would pick each block's
 * node with probability proportional to capacity; the dealer (slice-continuum.ts) adds
 * quotas for exact balance. `Math.log` is V8's own port of fdlibm, the same on every
 * platform, so every process ranks alike. When every capacity is equal the log is not
 * even needed: the key is then 2³² − 1 − hash, which orders pairs exactly as −ln(u)
 * would (both fall as the hash grows, and distinct hashes never round to one log).
 */
export class SlicePreferences {
  private readonly seedA: Int32Array;
  private readonly seedB: Int32Array;
  private readonly inverseCapacity: Float64Array;
  private readonly equal: boolean;
  /**
   * The start of the ranking of each block asked past its first node: a slice turned
   * away asks for its block's next node, and reading it here is O(1) where ranking every
   * node again is O(nodes). Past a few hundred nodes most blocks are split between nodes
   * and their slices are turned away again and again: dealing 1000 nodes took 5.5 s
   * without it, 0.8 s with it (5000 nodes: 6 min, 30 s). Up to 100 nodes it changes
   * little, and only the blocks turned away take room.
   */
  private ranked?: RankedEntries;

  constructor(
    names: readonly string[],
    capacities: readonly number[],
    readonly blocks: number,
  ) {
    const n = names.length;
    this.seedA = new Int32Array(n);
    this.seedB = new Int32Array(n);
    this.inverseCapacity = new Float64Array(n);
    for (let j = 0; j < n; j++) {
      // MD5 as a strong mix of the name: similar names ('node1', 'node2') get unrelated keys.
      const seed = digest('md5', names[j], 'buffer');
      this.seedA[j] = seed.readInt32LE(0);
      this.seedB[j] = seed.readInt32LE(4);
      this.inverseCapacity[j] = 1 / capacities[j];
    }
    this.equal = capacities.every((c) => c === capacities[0]);
  }

  /** Node `j`'s key for block `b`: smaller is preferred. */
  key(j: number, b: number): number {
    const h = fmix32(fmix32(BLOCK_MIX[b] ^ this.seedA[j]) ^ this.seedB[j]) >>> 0;
    if (this.equal) return 4294967295 - h;
    return -Math.log((h + 0.5) / 4294967296) * this.inverseCapacity[j];
  }

  /**
   * The node block `b` wants next after (afterKey, afterNode) in its order — by key, then
   * by node index (names are sorted, so that is name order) — or the first one when
   * `afterKey` is −Infinity. −1 when there is none left. O(1) while the answer is among
   * the block's ranked entries, else O(nodes) to rank the next ones.
   */
  next(b: number, afterKey: number, afterNode: number): number {
    // Most blocks are asked once, for their first node: a plain scan, nothing kept.
    if (afterKey === -Infinity) return this.first(b);
    const ranked = (this.ranked ??= new RankedEntries(
      this.blocks,
      Math.min(RANKED, this.seedA.length),
    ));
    const slot = ranked.slotOf[b];
    if (slot !== -1) {
      const from = ranked.fromKey[slot];
      if (afterKey > from || (afterKey === from && afterNode >= ranked.fromNode[slot])) {
        const base = slot * ranked.width;
        const count = ranked.counts[slot];
        for (let i = base; i < base + count; i++) {
          const k = ranked.keys[i];
          if (k > afterKey || (k === afterKey && ranked.nodes[i] > afterNode)) {
            return ranked.nodes[i];
          }
        }
        // Fewer entries than the width were left after `from`: none is left after these.
        if (count < ranked.width) return -1;
      }
    }
    const at = this.rank(b, afterKey, afterNode);
    return ranked.counts[at] > 0 ? ranked.nodes[at * ranked.width] : -1;
  }

  /** The node block `b` ranks first: O(nodes), one loop per kind of capacities. */
  private first(b: number): number {
    const { seedA, seedB, inverseCapacity } = this;
    const mix = BLOCK_MIX[b];
    const n = seedA.length;
    let best = -1;
    let bestKey = Infinity;
    if (this.equal) {
      for (let j = 0; j < n; j++) {
        const k = 4294967295 - (fmix32(fmix32(mix ^ seedA[j]) ^ seedB[j]) >>> 0);
        if (k < bestKey) {
          bestKey = k;
          best = j;
        }
      }
    } else {
      for (let j = 0; j < n; j++) {
        const u = ((fmix32(fmix32(mix ^ seedA[j]) ^ seedB[j]) >>> 0) + 0.5) / 4294967296;
        const k = -Math.log(u) * inverseCapacity[j];
        if (k < bestKey) {
          bestKey = k;
          best = j;
        }
      }
    }
    return best;
  }

  /**
   * Ranks the first `width` nodes of block `b` after (afterKey, afterNode) into the
   * block's slot, which it answers: one pass over the nodes keeping the best few in order.
   */
  private rank(b: number, afterKey: number, afterNode: number): number {
    const { seedA, seedB, inverseCapacity } = this;
    const ranked = this.ranked!;
    const { width } = ranked;
    const slot = ranked.slot(b);
    const { keys, nodes } = ranked;
    const mix = BLOCK_MIX[b];
    const n = seedA.length;
    const base = slot * width;
    let count = 0;
    let worst = Infinity;
    for (let j = 0; j < n; j++) {
      const h = fmix32(fmix32(mix ^ seedA[j]) ^ seedB[j]) >>> 0;
      const k = this.equal
        ? 4294967295 - h
        : -Math.log((h + 0.5) / 4294967296) * inverseCapacity[j];
      // Nodes come in index order: on equal keys the one already ranked comes first.
      if (k > worst || (k === worst && count === width)) continue;
      if (k < afterKey || (k === afterKey && j <= afterNode)) continue;
      let i = count < width ? count++ : width - 1;
      while (i > 0 && keys[base + i - 1] > k) {
        keys[base + i] = keys[base + i - 1];
        nodes[base + i] = nodes[base + i - 1];
        i--;
      }
      keys[base + i] = k;
      nodes[base + i] = j;
      if (count === width) worst = keys[base + width - 1];
    }
    ranked.counts[slot] = count;
    ranked.fromKey[slot] = afterKey;
    ranked.fromNode[slot] = afterNode;
    return slot;
  }

  /**
   * How many of `slices` each node holds: its capacity share, rounded down, plus one for
   * the nodes with the largest remainders (ties by a hash of the name, never by position,
   * so the same nodes get the extra slice whoever else is configured). Sums to `slices`.
   */
  quotas(capacities: readonly number[], slices: number): Float64Array {
    const n = capacities.length;
    const total = capacities.reduce((a, c) => a + c, 0);
    const quota = new Float64Array(n);
    const remainder = new Float64Array(n);
    let dealt = 0;
    for (let j = 0; j < n; j++) {
      const exact = (slices * capacities[j]) / total;
      quota[j] = Math.min(Math.floor(exact), slices);
      remainder[j] = exact - quota[j];
      dealt += quota[j];
    }
    const order = Array.from({ length: n }, (_, j) => j).sort(
      (x, y) =>
        remainder[y] - remainder[x] || (this.seedB[x] >>> 0) - (this.seedB[y] >>> 0) || x - y,
    );
    for (let k = 0; dealt < slices; k = (k + 1) % n, dealt++) quota[order[k]]++;
    return quota;
  }
}

/** Blocks of the ring that rank nodes: the unit of preference, fixed for every S ≥ it. */
export const PREFERENCE_BLOCKS = 8192;

/** Each block's number, mixed: the same for every ring, so computed once. */
const BLOCK_MIX = new Int32Array(PREFERENCE_BLOCKS).map((_, b) =>
  fmix32(Math.imul(b + 1, 0x9e3779b1)),
);

/** Entries of a block's ranking kept at once (see `SlicePreferences.ranked`). */
const RANKED = 16;

/**
 * Room for the rankings of the blocks that need one, `width` entries each: a block gets a
 * slot when it is first asked past its first node, and the room doubles when full.
 */
class RankedEntries {
  /** Each block's slot, −1 while it has none. */
  readonly slotOf: Int32Array;
  keys = new Float64Array(0);
  nodes = new Int32Array(0);
  /** Entries ranked in each slot. */
  counts = new Uint8Array(0);
  /** The entries of a slot are the first ones after (fromKey, fromNode) of its block. */
  fromKey = new Float64Array(0);
  fromNode = new Int32Array(0);
  private used = 0;

  constructor(
    blocks: number,
    readonly width: number,
  ) {
    this.slotOf = new Int32Array(blocks).fill(-1);
  }

  /** Block b's slot, given one if it has none. */
  slot(b: number): number {
    if (this.slotOf[b] !== -1) return this.slotOf[b];
    if (this.used === this.counts.length) this.grow(Math.max(64, this.used * 2));
    this.slotOf[b] = this.used;
    return this.used++;
  }

  private grow(slots: number): void {
    const keys = new Float64Array(slots * this.width);
    keys.set(this.keys);
    const nodes = new Int32Array(slots * this.width);
    nodes.set(this.nodes);
    const counts = new Uint8Array(slots);
    counts.set(this.counts);
    const fromKey = new Float64Array(slots);
    fromKey.set(this.fromKey);
    const fromNode = new Int32Array(slots);
    fromNode.set(this.fromNode);
    Object.assign(this, { keys, nodes, counts, fromKey, fromNode });
  }
}

/** MurmurHash3's 32-bit finaliser: every input bit flips about half the output bits. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h;
}
