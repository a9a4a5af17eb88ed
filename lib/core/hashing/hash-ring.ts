import { pointIndex, reassignContinuum, uniformIndex, type Continuum } from './continuum.js';
import { RingConfigError } from '../errors.js';
import { checkCapacityTotal, rejectUnknownOptions } from '../config/option-checks.js';
import { resolveHashFunction, type HashFunction, type HashFunctionName } from './hash-functions.js';
import { buildKetamaContinuum } from './ketama-continuum.js';
import { buildSliceContinuum, nextPrime } from './slice-continuum.js';

export type RingDistribution = 'ring' | 'ketama';

export interface HashRingOptions {
  /** Hash for entries (default `'crc32'`; in ketama mode `'fnv1a_64'`, twemproxy's default). */
  hashFunction?: HashFunctionName | HashFunction;
  /**
   * Slices of the `'ring'` distribution (default: the first prime ≥ max(2000, 200 × nodes)).
   * More slices, better balance, more memory (6 bytes each). Ignored by `'ketama'`.
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
function checkBrackets(hashTag: string): void {
  const [open, close] = [...hashTag];
  if (!BRACKETS.has(open) || !BRACKETS.has(close) || BRACKET_PAIRS.get(open) === close) return;
  const meant = BRACKET_PAIRS.has(open) ? open : close;
  const pair = [...BRACKET_PAIRS].find(([o, c]) => o === meant || c === meant)!;
  throw new RingConfigError(
    `hashTag: expected an opening and its closing character such as '{}', got ${JSON.stringify(hashTag)} (did you mean '${pair.join('')}'?)`,
  );
}

/** Default slice count: see `HashRingOptions.slices`. Measured balance is in bench/README.md. */
export function defaultSlices(nodeCount: number): number {
  return nextPrime(Math.max(2000, 200 * nodeCount));
}

/** What every ring derived from one configuration shares. */
interface RingLayout {
  /** Configured node names, sorted: the order never depends on the configuration's order. */
  readonly names: readonly string[];
  readonly capacities: readonly number[];
  readonly index: ReadonlyMap<string, number>;
  readonly options: Readonly<HashRingOptions>;
  readonly distribution: RingDistribution;
  readonly slices: number;
  /** The continuum of all configured nodes. */
  readonly continuum: Continuum;
  readonly hash: HashFunction;
  readonly tagOpen?: string;
  readonly tagClose?: string;
}

function buildLayout(nodes: Record<string, number>, options: HashRingOptions): RingLayout {
  if (nodes === null || typeof nodes !== 'object') {
    throw new RingConfigError('HashRing: nodes must be an object of node name → capacity');
  }
  const names = Object.keys(nodes).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (names.length > 0xffff) throw new RingConfigError('HashRing: at most 65535 nodes');
  let total = 0;
  for (const name of names) {
    const capacity = nodes[name];
    if (typeof capacity !== 'number' || !Number.isFinite(capacity) || capacity <= 0) {
      throw new RingConfigError(
        `HashRing: node "${name}": capacity must be a finite number > 0, got ${String(capacity)}`,
      );
    }
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
  const slices = options.slices ?? defaultSlices(names.length);
  if (!Number.isInteger(slices) || slices < 2 || slices > 2 ** 24) {
    throw new RingConfigError(`slices: expected an integer from 2 to 2^24, got ${String(slices)}`);
  }
  const hashTag = options.hashTag;
  if (hashTag !== undefined && (typeof hashTag !== 'string' || [...hashTag].length !== 2)) {
    throw new RingConfigError(
      `hashTag: expected two characters such as '{}', got ${JSON.stringify(hashTag)}`,
    );
  }
  if (hashTag !== undefined) checkBrackets(hashTag);
  const capacities = names.map((name) => nodes[name]);
  const continuum =
    distribution === 'ketama'
      ? buildKetamaContinuum(names, capacities)
      : buildSliceContinuum(names, capacities, nextPrime(slices));
  const [tagOpen, tagClose] = hashTag === undefined ? [] : [...hashTag];
  return {
    names,
    capacities,
    index: new Map(names.map((name, i) => [name, i])),
    options: { ...options },
    distribution,
    slices,
    continuum,
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
 * hands the removed node's arcs to the next node clockwise, O(S), so only its keys move
 * (in ketama mode the continuum is rebuilt from the remaining nodes instead, exactly as
 * twemproxy rebuilds it when it ejects a host).
 */
export class HashRing {
  private layout!: RingLayout;
  private present!: readonly boolean[];
  private live!: Continuum;
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
    this.live = present.every(Boolean)
      ? layout.continuum
      : layout.distribution === 'ketama'
        ? this.rebuiltKetama()
        : reassignContinuum(layout.continuum, present);
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

  /** Number of points on the ring (S, the slices of the `'ring'` distribution). */
  get points(): number {
    return this.live.points.length;
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
    const { points, owners, uniform } = this.live;
    if (points.length === 0) return undefined;
    const hash = this.plainHash ? this.plainHash(entry) >>> 0 : this.hashOf(entry);
    return this.layout.names[
      owners[uniform ? uniformIndex(points, hash) : pointIndex(points, hash)]
    ];
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
    const nodes: Record<string, number> = {};
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
