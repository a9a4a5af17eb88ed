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
   * `afterKey` is −Infinity. −1 when there is none left. O(nodes): the hot loop of a
   * build, so the key is computed inline.
   */
  next(b: number, afterKey: number, afterNode: number): number {
    const { seedA, seedB, inverseCapacity } = this;
    const mix = this.blockMix[b];
    const n = seedA.length;
    let best = -1;
    let bestKey = Infinity;
    // Two loops rather than a test of `equal` for every node: this is most of a build.
    if (this.equal) {
      for (let j = 0; j < n; j++) {
        const k = 4294967295 - (fmix32(fmix32(mix ^ seedA[j]) ^ seedB[j]) >>> 0);
        if (k < bestKey && (k > afterKey || (k === afterKey && j > afterNode))) {
          bestKey = k;
          best = j;
        }
      }
    } else {
      for (let j = 0; j < n; j++) {
        const u = ((fmix32(fmix32(mix ^ seedA[j]) ^ seedB[j]) >>> 0) + 0.5) / 4294967296;
        const k = -Math.log(u) * inverseCapacity[j];
        if (k < bestKey && (k > afterKey || (k === afterKey && j > afterNode))) {
          bestKey = k;
          best = j;
        }
      }
    }
    return best;
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

/** MurmurHash3's 32-bit finaliser: every input bit flips about half the output bits. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h;
}
