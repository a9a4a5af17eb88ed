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
  private readonly blockMix: Int32Array;
  private readonly equal: boolean;
  /**
   * The start of each block's ranking, `width` entries a block: a slice turned away asks
   * for its block's next node, and reading it here is O(1) where ranking every node again
   * is O(nodes). Past a few hundred nodes most blocks are split between nodes and their
   * slices are turned away again and again: dealing 1000 nodes took 5.5 s without it,
   * 0.8 s with it (5000 nodes: 6 min, 30 s). Up to 100 nodes it changes little.
   */
  private readonly width: number;
  private readonly rankedKey: Float64Array;
  private readonly rankedNode: Int32Array;
  /** Entries ranked for each block; 0 until its first query. */
  private readonly rankedCount: Uint8Array;
  /** The ranked entries of block b are the first ones after (fromKey[b], fromNode[b]). */
  private readonly fromKey: Float64Array;
  private readonly fromNode: Int32Array;

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
    this.blockMix = new Int32Array(blocks);
    for (let b = 0; b < blocks; b++) this.blockMix[b] = fmix32(Math.imul(b + 1, 0x9e3779b1));
    this.width = Math.min(RANKED, n);
    this.rankedKey = new Float64Array(blocks * this.width);
    this.rankedNode = new Int32Array(blocks * this.width);
    this.rankedCount = new Uint8Array(blocks);
    this.fromKey = new Float64Array(blocks);
    this.fromNode = new Int32Array(blocks);
  }

  /** Node `j`'s key for block `b`: smaller is preferred. */
  key(j: number, b: number): number {
    const h = fmix32(fmix32(this.blockMix[b] ^ this.seedA[j]) ^ this.seedB[j]) >>> 0;
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
    const count = this.rankedCount[b];
    const from = this.fromKey[b];
    if (count > 0 && (afterKey > from || (afterKey === from && afterNode >= this.fromNode[b]))) {
      const base = b * this.width;
      for (let i = base; i < base + count; i++) {
        const k = this.rankedKey[i];
        if (k > afterKey || (k === afterKey && this.rankedNode[i] > afterNode)) {
          return this.rankedNode[i];
        }
      }
      // Fewer entries than the width were left after `from`: none is left after these.
      if (count < this.width) return -1;
    }
    // Most blocks are asked once, for their first node: a plain scan, nothing kept.
    if (afterKey === -Infinity) return this.first(b);
    this.rank(b, afterKey, afterNode);
    return this.rankedCount[b] > 0 ? this.rankedNode[b * this.width] : -1;
  }

  /** The node block `b` ranks first: O(nodes), one loop per kind of capacities. */
  private first(b: number): number {
    const { seedA, seedB, inverseCapacity } = this;
    const mix = this.blockMix[b];
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
   * Ranks the first `width` nodes of block `b` after (afterKey, afterNode): one pass over
   * the nodes keeping the best few in order.
   */
  private rank(b: number, afterKey: number, afterNode: number): void {
    const { seedA, seedB, inverseCapacity, width } = this;
    const mix = this.blockMix[b];
    const n = seedA.length;
    const base = b * width;
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
      while (i > 0 && this.rankedKey[base + i - 1] > k) {
        this.rankedKey[base + i] = this.rankedKey[base + i - 1];
        this.rankedNode[base + i] = this.rankedNode[base + i - 1];
        i--;
      }
      this.rankedKey[base + i] = k;
      this.rankedNode[base + i] = j;
      if (count === width) worst = this.rankedKey[base + width - 1];
    }
    this.rankedCount[b] = count;
    this.fromKey[b] = afterKey;
    this.fromNode[b] = afterNode;
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

/** Entries of a block's ranking kept at once (see `SlicePreferences.width`). */
const RANKED = 16;

/** MurmurHash3's 32-bit finaliser: every input bit flips about half the output bits. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h;
}
