import { PREFERENCE_BLOCKS, SlicePreferences } from './slice-preferences.js';

/**
 * Our own distribution. The 32-bit hash space is cut into S equal slices (slice i ends at
 * floor((i + 1) · 2³² / S) − 1; S is a power of two by default, and a hash's slice is then
 * its top log₂ S bits). Which node owns which slice is a stable matching between slices
 * and nodes:
 *
 * - every node has a quota, its capacity share of S (rounded to whole slices, summing to
 *   S), so shares are exact to one slice;
 * - the ring is cut into PREFERENCE_BLOCKS (8192) equal blocks of S / 8192 consecutive
 *   slices (with fewer slices than that, each slice is its own block), and for every block
 *   and node a key from a hash of (node name, block) ranks them (slice-preferences.ts): a
 *   slice ranks the nodes as its block does, and a node ranks slices by the same keys;
 * - the placement is the unique stable matching of those rankings: no slice and node both
 *   prefer each other to what they got. It is found by deferred acceptance (Gale–Shapley):
 *   slices propose to nodes in their order, a node over its quota turns away the slices
 *   it ranks lowest, and those propose to their next node.
 *
 * Why this shape, with default options and equal capacities (figures in bench/README.md):
 *
 * - **Growth is consistent at every size.** A node's keys never depend on the other
 *   nodes, and the stable matching is a function of the rankings alone (not of an order
 *   of arrival), so adding a node changes only what the newcomer wins and the ripples of
 *   every quota shrinking. Growing n → n + 1 moves the ideal 1/(n + 1) plus at most 1.1
 *   percentage points for every n in 1..100 (0.8 pp on average). The excess is chance:
 *   the newcomer wins blocks from each old node at random while every old quota shrinks
 *   by the same amount, so some slices move between old nodes to even out. It falls as
 *   1/√blocks: measured worst 2.2 pp with 2048 blocks, 1.6 with 4096, 1.1 with 8192, 0.7
 *   with 16384; 8192 keeps the ring at 16 KiB up to 40 nodes. No placement that depends
 *   only on the set of nodes and is balanced to a slice can move exactly 1/(n + 1) every
 *   time; plain rendezvous hashing does, but its shares then wander by ±√(n / blocks)
 *   (one σ: 3.5 % of a share at 10 nodes).
 *   The previous distribution (Maglev-style permutations over a prime S that grew with
 *   n) moved 92 % of keys from 10 to 11 nodes.
 * - **The slice count never re-cuts the ring.** S is a power of two, at least 8192 and at
 *   least 200 × nodes (`defaultSliceCount`); the blocks are the same 8192 arcs whatever S
 *   is, so when S doubles every slice splits in two halves that keep their block's keys,
 *   and the placement is refined rather than redrawn (40 → 41 nodes moves 3.3 %, ideal
 *   2.4 %).
 * - **Balance.** Each node holds its quota to one slice; the worst key share over 1 M
 *   `user:<i>` keys is off by 0.5 % for 2–10 nodes and 2.9 % for 11–100, mostly the keys'
 *   own sampling spread (σ = 1 % of a share at 100 nodes).
 * - **Scattered slices.** A node's blocks are spread over the ring at random, so when it is
 *   ejected its keys fall to many different neighbours.
 * - **Cost.** Dealing computes each block's key for every node: O(8192 × nodes), about
 *   1.5 ms at 3 nodes, 2.5 ms at 10 and 15 ms at 100 (the previous distribution: 0.25,
 *   0.45 and 12–20 ms), at construction and when a new node is added — never on a
 *   lookup, an ejection or a rediscovery.
 *
 * The result depends only on node names, capacities and S (never on the order of the
 * configuration), so every process computes the same placement.
 */

/** Largest slice count (owners of 2²⁴ slices take 32 MiB). */
export const MAX_SLICES = 2 ** 24;

/**
 * Default slice count for `nodeCount` nodes: the smallest power of two ≥ 8192 and
 * ≥ 200 × nodes (8192 up to 40 nodes, 16384 up to 81, 32768 up to 163, …).
 */
export function defaultSliceCount(nodeCount: number): number {
  let slices = PREFERENCE_BLOCKS;
  while (slices < 200 * nodeCount && slices < MAX_SLICES) slices *= 2;
  return slices;
}

/** First slice of block `b` when `slices` slices form `blocks` blocks. */
function blockStart(b: number, slices: number, blocks: number): number {
  return Math.ceil((b * slices) / blocks);
}

/**
 * The owner (an index into `names`) of each of `slices` slices. `names` are sorted;
 * every capacity is finite and > 0.
 */
export function dealSlices(
  names: readonly string[],
  capacities: readonly number[],
  slices: number,
): Uint16Array {
  if (names.length === 0) return new Uint16Array(0);
  return new SliceDealer(names, capacities, slices).deal();
}

/**
 * Deferred acceptance with whole blocks of slices as proposers: `count` slices of a block
 * propose together, and a node over its quota may turn away part of a block. Entries are
 * (block, node, key, count) in parallel typed arrays; each node keeps a max-heap of its
 * entries by (key, block), so the slices it ranks lowest are found first. The matching
 * does not depend on the order proposals are made in.
 */
class SliceDealer {
  private readonly preferences: SlicePreferences;
  private readonly blocks: number;
  private readonly quota: Float64Array;
  private readonly held: Float64Array;
  private readonly heaps: number[][];
  private keys: Float64Array;
  private blockOf: Int32Array;
  private nodeOf: Uint16Array;
  private counts: Int32Array;
  private entries = 0;
  /** Proposals still to make: slices of a block, to the node they want after (key, node). */
  private readonly pending = {
    blocks: [] as number[],
    counts: [] as number[],
    keys: [] as number[],
    nodes: [] as number[],
  };

  constructor(
    names: readonly string[],
    capacities: readonly number[],
    private readonly slices: number,
  ) {
    this.blocks = Math.min(PREFERENCE_BLOCKS, slices);
    this.preferences = new SlicePreferences(names, capacities, this.blocks);
    this.quota = this.preferences.quotas(capacities, slices);
    this.held = new Float64Array(names.length);
    this.heaps = Array.from({ length: names.length }, () => []);
    const size = this.blocks + (this.blocks >> 2);
    this.keys = new Float64Array(size);
    this.blockOf = new Int32Array(size);
    this.nodeOf = new Uint16Array(size);
    this.counts = new Int32Array(size);
  }

  /**
   * The matching, then the layout. Each long loop is a method that ends with it: V8
   * optimises a hot loop while it runs, and that code was thrown away on reaching parts
   * of the method that had not run yet, again and again when full garbage collections
   * came between builds (33 deoptimisations in about 200 builds; 4 now).
   */
  deal(): Uint16Array {
    this.proposeFirst();
    this.heapify();
    for (let node = 0; node < this.heaps.length; node++) this.trim(node);
    this.settle();
    return this.layout();
  }

  /** Every block proposes to its first node. */
  private proposeFirst(): void {
    const { heaps, preferences } = this;
    for (let b = 0; b < this.blocks; b++) {
      const node = preferences.next(b, -Infinity, -1);
      heaps[node].push(this.add(node, b, this.blockSize(b)));
    }
  }

  /** Each node's entries made a heap at once, in O(entries). */
  private heapify(): void {
    for (const heap of this.heaps) {
      for (let i = (heap.length >> 1) - 1; i >= 0; i--) this.siftDown(heap, i);
    }
  }

  /** Nodes over their quota turn slices away until every slice is held within quotas. */
  private settle(): void {
    const { pending, heaps, preferences } = this;
    while (pending.blocks.length > 0) {
      const block = pending.blocks.pop()!;
      const count = pending.counts.pop()!;
      const node = preferences.next(block, pending.keys.pop()!, pending.nodes.pop()!);
      if (node === -1) throw new Error('dealSlices: a slice found no node (quotas do not add up)');
      const heap = heaps[node];
      heap.push(this.add(node, block, count));
      this.siftUp(heap, heap.length - 1);
      this.trim(node);
    }
  }

  private blockSize(b: number): number {
    return blockStart(b + 1, this.slices, this.blocks) - blockStart(b, this.slices, this.blocks);
  }

  /** A new entry: `count` slices of `block` held by `node`. */
  private add(node: number, block: number, count: number): number {
    if (this.entries === this.keys.length) this.grow();
    const e = this.entries++;
    this.keys[e] = this.preferences.key(node, block);
    this.blockOf[e] = block;
    this.nodeOf[e] = node;
    this.counts[e] = count;
    this.held[node] += count;
    return e;
  }

  /** Turns away `node`'s lowest-ranked slices until it holds no more than its quota. */
  private trim(node: number): void {
    const heap = this.heaps[node];
    while (this.held[node] > this.quota[node]) {
      const e = heap[0];
      const given = Math.min(this.held[node] - this.quota[node], this.counts[e]);
      this.counts[e] -= given;
      this.held[node] -= given;
      if (this.counts[e] === 0) {
        const last = heap.pop()!;
        if (heap.length > 0) {
          heap[0] = last;
          this.siftDown(heap, 0);
        }
      }
      const { pending } = this;
      pending.blocks.push(this.blockOf[e]);
      pending.counts.push(given);
      pending.keys.push(this.keys[e]);
      pending.nodes.push(node);
    }
  }

  /**
   * The owner of every slice. Within a block, the nodes holding its slices take them in
   * the block's order (the most wanted node first), so when S doubles each half-slice
   * keeps the node its slice had, give or take the rounding of quotas.
   */
  private layout(): Uint16Array {
    const { slices, blocks, counts, nodeOf } = this;
    const owners = new Uint16Array(slices);
    const first = new Int32Array(blocks).fill(-1);
    const next = new Int32Array(this.entries);
    for (let e = 0; e < this.entries; e++) {
      if (counts[e] === 0) continue;
      next[e] = first[this.blockOf[e]];
      first[this.blockOf[e]] = e;
    }
    for (let b = 0; b < blocks; b++) {
      let e = first[b];
      const at = blockStart(b, slices, blocks);
      if (e !== -1 && next[e] === -1) {
        // One node holds the whole block: the common case.
        for (let i = at, end = at + counts[e]; i < end; i++) owners[i] = nodeOf[e];
        continue;
      }
      const holders: number[] = [];
      for (; e !== -1; e = next[e]) holders.push(e);
      holders.sort((x, y) => this.keys[x] - this.keys[y] || nodeOf[x] - nodeOf[y]);
      let i = at;
      for (const h of holders) for (let end = i + counts[h]; i < end; i++) owners[i] = nodeOf[h];
    }
    return owners;
  }

  /** Entry a is ranked below entry b by their node: a larger key, then a larger block. */
  private below(a: number, b: number): boolean {
    const ka = this.keys[a];
    const kb = this.keys[b];
    return ka > kb || (ka === kb && this.blockOf[a] > this.blockOf[b]);
  }

  private siftUp(heap: number[], i: number): void {
    const e = heap[i];
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.below(e, heap[parent])) break;
      heap[i] = heap[parent];
      i = parent;
    }
    heap[i] = e;
  }

  private siftDown(heap: number[], i: number): void {
    const e = heap[i];
    const size = heap.length;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= size) break;
      if (child + 1 < size && this.below(heap[child + 1], heap[child])) child++;
      if (!this.below(heap[child], e)) break;
      heap[i] = heap[child];
      i = child;
    }
    heap[i] = e;
  }

  private grow(): void {
    const size = this.keys.length * 2;
    const keys = new Float64Array(size);
    keys.set(this.keys);
    const blockOf = new Int32Array(size);
    blockOf.set(this.blockOf);
    const nodeOf = new Uint16Array(size);
    nodeOf.set(this.nodeOf);
    const counts = new Int32Array(size);
    counts.set(this.counts);
    [this.keys, this.blockOf, this.nodeOf, this.counts] = [keys, blockOf, nodeOf, counts];
  }
}
