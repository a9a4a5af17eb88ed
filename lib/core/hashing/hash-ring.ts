import { pointIndex, sliceIndex, type Continuum } from './continuum.js';
import { RingArgumentError, RingConfigError } from '../errors.js';
import { checkCapacityTotal, rejectUnknownOptions, shown } from '../config/option-checks.js';
import { resolveHashFunction, type HashFunction, type HashFunctionName } from './hash-functions.js';
import { buildKetamaContinuum } from './ketama-continuum.js';
import { dealSlices, defaultSliceCount, MAX_SLICES } from './slice-continuum.js';
import { SliceOwners } from './slice-owners.js';

export type RingDistribution = 'ring' | 'ketama';

export interface HashRingOptions {
  /** Hash for entries (default `'crc32'`; in ketama mode `'fnv1a_64'`, twemproxy's default). */
  hashFunction?: HashFunctionName | HashFunction;
  /**
   * Slices of the `'ring'` distribution, used as given: an integer from the node count to
   * 2²⁴ (default: the smallest power of two ≥ 8192 and ≥ 200 × nodes, see
   * `defaultSlices`). 2 bytes each. Ignored by `'ketama'`.
   */
  slices?: number;
  /** `'ring'` (default): balanced equal slices. `'ketama'`: twemproxy-compatible placement. */
  distribution?: RingDistribution;
  /** Two characters, e.g. `'{}'`: only the part of an entry between them is hashed. */
  hashTag?: string;
}

const HASH_RING_OPTION_NAMES: ReadonlySet<string> = new Set<keyof HashRingOptions>([
  'hashFunction',
  'slices',
  'distribution',
  'hashTag',
]);

/** Brackets and their closing ones, for the hash tag check. */
const BRACKET_PAIRS: ReadonlyMap<string, string> = new Map([
  ['{', '}'],
  ['(', ')'],
  ['[', ']'],
  ['<', '>'],
]);
const BRACKETS = new Set([...BRACKET_PAIRS.keys(), ...BRACKET_PAIRS.values()]);

/**
 * A hash tag of two brackets must be an opening one and its closing one: `'{{'` or `'}{'`
 * is a slip for `'{}'` that would hash most keys whole, silently. Two other characters,
 * equal or not, are taken as given (twemproxy's documentation shows `"$$"`).
 */
export function checkBrackets(hashTag: string): void {
  const [open, close] = [...hashTag];
  if (!BRACKETS.has(open) || !BRACKETS.has(close) || BRACKET_PAIRS.get(open) === close) return;
  const meant = BRACKET_PAIRS.has(open) ? open : close;
  const pair = [...BRACKET_PAIRS].find(([o, c]) => o === meant || c === meant)!;
  throw new RingConfigError(
    `hashTag: expected an opening and its closing character such as '{}', got ${JSON.stringify(hashTag)} (did you mean '${pair.join('')}'?)`,
  );
}

/**
 * Default slice count for `nodeCount` nodes: the smallest power of two ≥ 8192 and
 * ≥ 200 × nodes. It changes only at powers of two, and then every slice splits in two
 * halves that keep its owner (see slice-continuum.ts), so growing the configuration never
 * re-cuts the ring. Measured balance and growth are in bench/README.md.
 */
export function defaultSlices(nodeCount: number): number {
  return defaultSliceCount(nodeCount);
}

/**
 * The slice count: `slices` as given, else the default. Fewer slices than nodes would
 * leave a node without a key, so that is refused too.
 */
function checkSlices(slices: unknown, nodeCount: number, distribution: RingDistribution): number {
  if (slices === undefined) return defaultSlices(nodeCount);
  if (
    typeof slices !== 'number' ||
    !Number.isInteger(slices) ||
    slices < 2 ||
    slices > MAX_SLICES
  ) {
    throw new RingConfigError(`slices: expected an integer from 2 to 2^24, got ${String(slices)}`);
  }
  if (distribution === 'ring' && slices < nodeCount) {
    throw new RingConfigError(
      `slices: ${slices} slices cannot give each of the ${nodeCount} nodes one; give at least ${nodeCount}`,
    );
  }
  return slices;
}

/** What every ring derived from one configuration shares. */
interface RingLayout {
  /** Configured node names, sorted: the order never depends on the configuration's order. */
  readonly names: readonly string[];
  readonly capacities: readonly number[];
  readonly index: ReadonlyMap<string, number>;
  readonly options: Readonly<HashRingOptions>;
  readonly distribution: RingDistribution;
  /** `hash >>> shift` is a hash's slice when `slices` is a power of two; else −1. */
  readonly shift: number;
  /**
   * Where the keys of all configured nodes land: owners of equal slices (`'ring'`: no
   * points are stored, a hash's slice is computed) or ketama's sorted points.
   */
  readonly placement: SliceOwners | Continuum;
  readonly hash: HashFunction;
  readonly tagOpen?: string;
  readonly tagClose?: string;
}

/**
 * Capacities the placement can compute with; only their ratios matter. Past them the dealing's
 * `slices × capacity` overflowed (1e305: shares dealt as if equal) or a ranking key did
 * (2.3e-308: a TypeError), and ketama's single-precision weights became 0 or Infinity (1e39:
 * no point at all, nothing located).
 */
const MIN_CAPACITY = 1e-30;
const MAX_CAPACITY = 1e30;

function checkCapacityRange(name: string, capacity: number): void {
  if (capacity < MIN_CAPACITY || capacity > MAX_CAPACITY) {
    throw new RingConfigError(
      `HashRing: node "${name}": capacity must be from 1e-30 to 1e30, got ${capacity} (only the capacities' ratios matter: scale them)`,
    );
  }
}

function buildLayout(nodes: Record<string, number>, options: HashRingOptions): RingLayout {
  if (nodes === null || typeof nodes !== 'object') {
    throw new RingConfigError('HashRing: nodes must be an object of node name → capacity');
  }
  const names = Object.keys(nodes).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (names.length > 0xffff) throw new RingConfigError('HashRing: at most 65535 nodes');
  let total = 0;
  for (const name of names) {
    // An assignment of this name sets an object's prototype: with() would drop the node.
    if (name === '__proto__') throw new RingConfigError('HashRing: "__proto__" cannot name a node');
    const capacity = nodes[name];
    if (typeof capacity !== 'number' || !Number.isFinite(capacity) || capacity <= 0) {
      throw new RingConfigError(
        `HashRing: node "${name}": capacity must be a finite number > 0, got ${String(capacity)}`,
      );
    }
    checkCapacityRange(name, capacity);
    total += capacity;
  }
  checkCapacityTotal(total, 'HashRing');
  if (options === null || typeof options !== 'object') {
    throw new RingConfigError('HashRing: options must be an object');
  }
  rejectUnknownOptions(options, HASH_RING_OPTION_NAMES, 'HashRing: ');
  const distribution = options.distribution ?? 'ring';
  if (distribution !== 'ring' && distribution !== 'ketama') {
    throw new RingConfigError(
      `distribution: expected 'ring' or 'ketama', got ${JSON.stringify(distribution)}`,
    );
  }
  const slices = checkSlices(options.slices, names.length, distribution);
  const hashTag = options.hashTag;
  if (hashTag !== undefined && (typeof hashTag !== 'string' || [...hashTag].length !== 2)) {
    throw new RingConfigError(
      `hashTag: expected two characters such as '{}', got ${JSON.stringify(hashTag)}`,
    );
  }
  if (hashTag !== undefined) checkBrackets(hashTag);
  const capacities = names.map((name) => nodes[name]);
  const placement =
    distribution === 'ketama'
      ? buildKetamaContinuum(names, capacities)
      : new SliceOwners(dealSlices(names, capacities, slices), names.length);
  const log2 = Math.log2(slices);
  const [tagOpen, tagClose] = hashTag === undefined ? [] : [...hashTag];
  return {
    names,
    capacities,
    index: new Map(names.map((name, i) => [name, i])),
    options: { ...options },
    distribution,
    shift: distribution === 'ring' && Number.isInteger(log2) ? 32 - log2 : -1,
    placement,
    // twemproxy's default hash is fnv1a_64: a ketama ring without a hash named matches it.
    hash: resolveHashFunction(
      options.hashFunction ?? (distribution === 'ketama' ? 'fnv1a_64' : undefined),
    ),
    tagOpen,
    tagClose,
  };
}

/**
 * Capacity-weighted consistent hashing. Immutable: `without()` and `with()` return new
 * rings. A ring is derived only from node names, capacities and options, so every process
 * computes the same placement.
 *
 * `locate` is O(1) for the default distribution (its arcs are equal slices, so the arc
 * is computed) and a binary search, O(log S), over a typed array for ketama. `without()`
 * hands the removed node's slices to the next node clockwise, so only its keys move: a
 * copy of the owners and a walk over its own slices (slice-owners.ts). In ketama mode the
 * continuum is rebuilt from the remaining nodes instead, exactly as twemproxy rebuilds it
 * when it ejects a host.
 */
export class HashRing {
  private layout!: RingLayout;
  private present!: readonly boolean[];
  /** Owner of each slice or point of this ring's nodes (the hot path reads it directly). */
  private owners!: Uint16Array;
  /** ketama's sorted points; undefined for equal slices. */
  private sorted?: Uint32Array;
  private shift!: number;
  private names!: readonly string[];
  /** The hash function when no hash tag or ketama rule applies: the hot path calls it directly. */
  private plainHash?: HashFunction;

  constructor(nodes: Record<string, number>, options: HashRingOptions = {}) {
    const layout = buildLayout(nodes, options);
    this.init(
      layout,
      layout.names.map(() => true),
    );
  }

  private static derive(layout: RingLayout, present: readonly boolean[]): HashRing {
    const ring = Object.create(HashRing.prototype) as HashRing;
    ring.init(layout, present);
    return ring;
  }

  private init(layout: RingLayout, present: readonly boolean[]): void {
    this.layout = layout;
    this.present = present;
    this.plainHash =
      layout.tagOpen === undefined && layout.distribution === 'ring' ? layout.hash : undefined;
    // Frozen: `nodes` hands this array out, and a caller's push must not change the ring.
    this.names = Object.freeze(layout.names.filter((_, i) => present[i]));
    this.shift = layout.shift;
    const { placement } = layout;
    if (placement instanceof SliceOwners) {
      this.owners = present.every(Boolean) ? placement.owners : placement.keeping(present);
      this.sorted = undefined;
    } else {
      const live = present.every(Boolean) ? placement : this.rebuiltKetama();
      this.owners = live.owners;
      this.sorted = live.points;
    }
  }

  /** twemproxy rebuilds the continuum from the live hosts: point counts follow the live weights. */
  private rebuiltKetama(): Continuum {
    const { names, capacities } = this.layout;
    const liveIndex: number[] = [];
    for (let i = 0; i < names.length; i++) if (this.present[i]) liveIndex.push(i);
    const sub = buildKetamaContinuum(
      liveIndex.map((i) => names[i]),
      liveIndex.map((i) => capacities[i]),
    );
    return { points: sub.points, owners: sub.owners.map((o) => liveIndex[o]) };
  }

  /** Node names in this ring, sorted. */
  get nodes(): readonly string[] {
    return this.names;
  }

  /** Number of nodes in this ring. */
  get size(): number {
    return this.names.length;
  }

  /** Number of points on the ring (S, the slices of the `'ring'` distribution); 0 when empty. */
  get points(): number {
    return this.owners.length;
  }

  /** The capacity this ring was given for `name`, or undefined. */
  capacityOf(name: string): number | undefined {
    const i = this.layout.index.get(name);
    return i === undefined ? undefined : this.layout.capacities[i];
  }

  /** The 32-bit hash that places `entry` (after the hash tag, if any, is applied). */
  hashOf(entry: string): number {
    const { tagOpen, tagClose } = this.layout;
    if (tagOpen !== undefined && tagClose !== undefined) {
      // twemproxy's rule: the first opening character, the first closing one after it,
      // and only when something lies between them.
      const start = entry.indexOf(tagOpen);
      if (start !== -1) {
        const end = entry.indexOf(tagClose, start + tagOpen.length);
        if (end > start + tagOpen.length) entry = entry.slice(start + tagOpen.length, end);
      }
    }
    // twemproxy does not hash an empty key: it places it at hash 0 (checked against nutcracker).
    if (entry.length === 0 && this.layout.distribution === 'ketama') return 0;
    return this.layout.hash(entry) >>> 0;
  }

  /** The node owning `entry`, or undefined when the ring is empty. O(1) (`'ring'`) or O(log S) (`'ketama'`). */
  locate(entry: string): string | undefined {
    const owners = this.owners;
    if (owners.length === 0) return undefined;
    const hash = this.plainHash ? this.plainHash(entry) >>> 0 : this.hashOf(entry);
    return this.layout.names[owners[this.indexOf(hash)]];
  }

  /**
   * The first `count` distinct nodes met walking clockwise from `entry`'s slice or point: the
   * first is `locate(entry)`, the others are where its copies live with `replicas: count`.
   * Every node of the ring when it has fewer than `count` (a node given no slice at all, with
   * a tiny capacity among many nodes, is never met). Empty for an empty ring.
   *
   * Derived from the placement alone, so every process finds the same nodes; and as
   * `without()` hands a node's slices to the next owner clockwise, a ring without some nodes
   * meets the others in the same order: losing a copy's node keeps every other copy in place.
   * The walk meets a new node every 1.5 slices on average at 3 equal nodes (a node's blocks
   * are scattered at random), so it costs about as much as `locate` — measured in
   * bench/README.md, with the table of successors it makes unnecessary.
   */
  locateAll(entry: string, count: number): string[] {
    if (!Number.isInteger(count) || count < 1) {
      throw new RingArgumentError(`locateAll: count must be an integer ≥ 1, got ${shown(count)}`);
    }
    const owners = this.owners;
    const slices = owners.length;
    if (slices === 0) return [];
    const names = this.layout.names;
    const hash = this.plainHash ? this.plainHash(entry) >>> 0 : this.hashOf(entry);
    let at = this.indexOf(hash);
    let previous = owners[at];
    const found = [names[previous]];
    const want = Math.min(count, this.names.length);
    if (want === 1) return found;
    const met = [previous];
    for (let steps = 1; steps < slices && met.length < want; steps++) {
      if (++at === slices) at = 0;
      const owner = owners[at];
      // Most steps stay within one node's run of slices: no search then.
      if (owner === previous) continue;
      previous = owner;
      if (met.includes(owner)) continue;
      met.push(owner);
      found.push(names[owner]);
    }
    return found;
  }

  /** Index into `owners` of the slice or point owning `hash`. */
  private indexOf(hash: number): number {
    if (this.shift >= 0) return hash >>> this.shift;
    const sorted = this.sorted;
    return sorted === undefined ? sliceIndex(this.owners.length, hash) : pointIndex(sorted, hash);
  }

  /** A ring without `name`: only the keys `name` owned move. Unknown names change nothing. */
  without(name: string): HashRing {
    const i = this.layout.index.get(name);
    if (i === undefined || !this.present[i]) return this;
    const present = [...this.present];
    present[i] = false;
    return HashRing.derive(this.layout, present);
  }

  /**
   * A ring with `name` at `capacity`. Adding back a node that `without()` removed, with the
   * same capacity, restores the previous placement exactly; a new node or a new capacity
   * recomputes the layout (other nodes lose only the slices the newcomer takes, give or
   * take a few).
   */
  with(name: string, capacity: number): HashRing {
    const i = this.layout.index.get(name);
    if (i !== undefined && this.layout.capacities[i] === capacity) {
      if (this.present[i]) return this;
      const present = [...this.present];
      present[i] = true;
      return HashRing.derive(this.layout, present);
    }
    // No prototype: `nodes['__proto__'] = …` set one instead of a node, and the ring came back
    // without it, where the constructor refuses the name.
    const nodes: Record<string, number> = Object.create(null) as Record<string, number>;
    this.layout.names.forEach((n, j) => (nodes[n] = this.layout.capacities[j]));
    nodes[name] = capacity;
    const layout = buildLayout(nodes, this.layout.options);
    const removed = new Set(this.layout.names.filter((_, j) => !this.present[j]));
    removed.delete(name);
    return HashRing.derive(
      layout,
      layout.names.map((n) => !removed.has(n)),
    );
  }
}

/**
 * True when `a` and `b` have the same nodes with the same capacities (the options are a dict's
 * own, the same for every ring it builds): setNodes builds a new ring for an unchanged list.
 */
export function sameNodes(a: HashRing, b: HashRing): boolean {
  return a.size === b.size && a.nodes.every((name) => a.capacityOf(name) === b.capacityOf(name));
}
