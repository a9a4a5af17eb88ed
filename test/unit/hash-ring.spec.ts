import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { HashRing, RingConfigError, defaultSlices, type HashRingOptions } from '../../lib/index.js';

const KEYS = 100_000;
const keys = Array.from({ length: KEYS }, (_, i) => `user:${i}`);

function equalNodes(n: number): Record<string, number> {
  return Object.fromEntries(Array.from({ length: n }, (_, i) => [`node${i}`, 1]));
}

/** Keys the balance is measured over, as in the benchmark: `user:0` … `user:999999`. */
const BALANCE_KEYS = 1_000_000;

/** Worst relative deviation of any node's key share from its capacity share. */
function worstDeviation(ring: HashRing, capacities: Record<string, number>): number {
  const index = new Map(ring.nodes.map((name, i) => [name, i]));
  const counts = new Float64Array(ring.size);
  for (let i = 0; i < BALANCE_KEYS; i++) counts[index.get(ring.locate(`user:${i}`)!)!]++;
  const total = Object.values(capacities).reduce((a, b) => a + b, 0);
  let worst = 0;
  for (const [name, capacity] of Object.entries(capacities)) {
    const expected = (BALANCE_KEYS * capacity) / total;
    worst = Math.max(worst, Math.abs(counts[index.get(name)!] - expected) / expected);
  }
  return worst;
}

describe('HashRing balance', () => {
  // The promise over 1 M keys: ≤ 3 % for 2–10 nodes, ≤ 5 % for 11–100 (measured: 0.5 % and
  // 2.9 % at worst; past 10 nodes most of it is the keys' own sampling spread).
  for (const [n, goal] of [
    [2, 0.03],
    [3, 0.03],
    [10, 0.03],
    [11, 0.05],
    [100, 0.05],
  ]) {
    it(`spreads 1 M keys over ${n} equal nodes within ±${goal * 100} % of equal shares`, () => {
      const nodes = equalNodes(n);
      expect(worstDeviation(new HashRing(nodes), nodes)).toBeLessThan(goal);
    });
  }

  it('follows capacities 1:2:3 within ±3 % of each share, over 3 and 9 nodes', () => {
    expect(
      worstDeviation(new HashRing({ small: 1, medium: 2, large: 3 }), {
        small: 1,
        medium: 2,
        large: 3,
      }),
    ).toBeLessThan(0.03);
    const nine = Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`node${i}`, (i % 3) + 1]));
    expect(worstDeviation(new HashRing(nine), nine)).toBeLessThan(0.03);
  });

  it('uses a power of two ≥ 8192 and ≥ 200 × nodes slices by default', () => {
    expect(new HashRing(equalNodes(3)).points).toBe(8192);
    expect(new HashRing(equalNodes(40)).points).toBe(8192);
    expect(new HashRing(equalNodes(41)).points).toBe(16_384);
    expect(defaultSlices(100)).toBe(32_768);
    expect(defaultSlices(65_535)).toBe(2 ** 24);
    for (let n = 1; n <= 1000; n++) {
      expect(defaultSlices(n)).toBeGreaterThanOrEqual(Math.max(2000, 200 * n));
      expect(Number.isInteger(Math.log2(defaultSlices(n)))).toBe(true);
    }
  });
});

describe('HashRing stability', () => {
  const nodes = equalNodes(5);
  const ring = new HashRing(nodes);

  it('moves exactly the keys of a removed node, and no other', () => {
    const without = ring.without('node2');
    let moved = 0;
    let wronglyMoved = 0;
    let stayedOnRemoved = 0;
    for (const key of keys) {
      const before = ring.locate(key);
      const after = without.locate(key);
      if (before === 'node2') {
        moved++;
        if (after === 'node2') stayedOnRemoved++;
      } else if (after !== before) {
        wronglyMoved++;
      }
    }
    expect({ wronglyMoved, stayedOnRemoved }).toEqual({ wronglyMoved: 0, stayedOnRemoved: 0 });
    expect(moved).toBeGreaterThan(KEYS / 10);
    expect(without.nodes).toEqual(['node0', 'node1', 'node3', 'node4']);
    expect(without.size).toBe(4);
  });

  it("spreads a removed node's keys over the other nodes, not onto one neighbour", () => {
    const without = ring.without('node2');
    const heirs = new Set<string>();
    for (const key of keys) if (ring.locate(key) === 'node2') heirs.add(without.locate(key)!);
    expect(heirs.size).toBe(4);
  });

  it('restores the previous placement exactly when the node is added back', () => {
    const back = ring.without('node2').without('node4').with('node2', 1).with('node4', 1);
    const differ = keys.filter((key) => back.locate(key) !== ring.locate(key));
    expect(differ).toEqual([]);
  });

  it('does not depend on the order of the configuration', () => {
    const reversed = new HashRing(Object.fromEntries(Object.entries(nodes).reverse()));
    for (let i = 0; i < 10_000; i++) expect(reversed.locate(keys[i])).toBe(ring.locate(keys[i]));
  });

  it('with() refuses "__proto__" as the constructor does', () => {
    // The name set the prototype of with()'s node list: the ring came back without the node.
    expect(() => ring.with('__proto__', 1)).toThrow(RingConfigError);
    expect(() => ring.with('__proto__', 1)).toThrow('HashRing: "__proto__" cannot name a node');
  });

  it('adding a new node takes roughly its share from the others', () => {
    const bigger = ring.with('node5', 1);
    let moved = 0;
    for (const key of keys) {
      const after = bigger.locate(key);
      if (after !== ring.locate(key)) {
        moved++;
      }
    }
    // Ideal is 1/6 ≈ 16.7 %; the slice dealing moves a little more.
    expect(moved / KEYS).toBeLessThan(0.25);
    expect(moved / KEYS).toBeGreaterThan(0.12);
  });

  it('an empty ring locates nothing', () => {
    expect(
      ring
        .without('node0')
        .without('node1')
        .without('node2')
        .without('node3')
        .without('node4')
        .locate('x'),
    ).toBeUndefined();
  });

  it('computes identical placements in two separate processes', () => {
    // Weighted (keys through Math.log) and equal (integer keys) rings, S = 8192 and 16384.
    const configs = [{ a: 1, b: 2, c: 3, d: 1 }, equalNodes(41)];
    const script = `
      const { HashRing } = await import(${JSON.stringify(new URL('../../.run/lib/core/hashing/hash-ring.js', import.meta.url).href)});
      const out = [];
      for (const nodes of ${JSON.stringify(configs)}) {
        const ring = new HashRing(nodes);
        for (let i = 0; i < 5000; i++) out.push(ring.locate('user:' + i));
      }
      process.stdout.write(out.join(','));
    `;
    const first = execFileSync(process.execPath, ['--input-type=module', '-e', script]).toString();
    const second = execFileSync(process.execPath, ['--input-type=module', '-e', script]).toString();
    expect(first).toBe(second);
    const here = configs.flatMap((nodes) => {
      const ring = new HashRing(Object.fromEntries(Object.entries(nodes).reverse()));
      return Array.from({ length: 5000 }, (_, i) => ring.locate(`user:${i}`));
    });
    expect(first.split(',')).toEqual(here);
  });

  it('keeps the placement it had: a change of placement is a change for every user', () => {
    // The owners of user:0 … user:19. If this fails, placement changed: keys would move
    // for every deployment that upgrades, which the changelog must say.
    const owners = (ring: HashRing) =>
      Array.from({ length: 20 }, (_, i) => ring.nodes.indexOf(ring.locate(`user:${i}`)!)).join('');
    expect(owners(new HashRing(equalNodes(5)))).toBe('24421310343304110443');
    expect(owners(new HashRing({ a: 1, b: 2, c: 3, d: 1 }))).toBe('12122220222212222211');
  });
});

describe('HashRing hash tags', () => {
  it('hashes only the part between the tag characters', () => {
    const ring = new HashRing(equalNodes(5), { hashTag: '{}' });
    for (let i = 0; i < 200; i++) {
      expect(ring.locate(`{user${i}}:profile`)).toBe(ring.locate(`{user${i}}:cart`));
      expect(ring.hashOf(`x{user${i}}y`)).toBe(ring.hashOf(`user${i}`));
    }
    // An empty tag or an unclosed one: the whole entry is hashed.
    expect(ring.hashOf('a{}b')).toBe(new HashRing(equalNodes(5)).hashOf('a{}b'));
    expect(ring.hashOf('a{b')).toBe(new HashRing(equalNodes(5)).hashOf('a{b'));
  });
});

describe('HashRing configuration errors', () => {
  it.each([
    [{ a: 0 }, /node "a": capacity must be a finite number > 0, got 0/],
    [{ a: -1 }, /node "a": capacity/],
    [{ a: Number.NaN }, /node "a": capacity/],
    [{ a: Infinity }, /node "a": capacity/],
  ])('rejects %o', (nodes, message) => {
    expect(() => new HashRing(nodes)).toThrow(RingConfigError);
    expect(() => new HashRing(nodes)).toThrow(message);
  });

  it('rejects an unknown option, naming it', () => {
    expect(() => new HashRing({ a: 1 }, { slice: 10 } as unknown as HashRingOptions)).toThrow(
      /HashRing: unknown option "slice"; known options: hashFunction, slices, distribution, hashTag/,
    );
  });

  it('a node taken out and added back at a new capacity is in the ring again', () => {
    const ring = new HashRing(equalNodes(3));
    const name = ring.nodes[0];
    const back = ring.without(name).with(name, 2);
    expect(back.nodes).toContain(name);
    expect(back.capacityOf(name)).toBe(2);
    // At twice the capacity it owns more than its equal share of the keys.
    let owned = 0;
    for (let i = 0; i < 10_000; i++) if (back.locate(`user:${i}`) === name) owned++;
    expect(owned / 10_000).toBeGreaterThan(0.4);
  });

  it('hands out its node list read-only: a caller cannot change the ring', () => {
    const ring = new HashRing(equalNodes(3));
    expect(() => (ring.nodes as string[]).push('intruder')).toThrow(TypeError);
    const out = ring.without(ring.nodes[0]);
    expect(() => (out.nodes as string[]).pop()).toThrow(TypeError);
    expect([ring.size, out.size]).toEqual([3, 2]);
  });

  it('rejects unknown hash functions, distributions and bad hash tags by name', () => {
    // @ts-expect-error an unknown name on purpose
    expect(() => new HashRing({ a: 1 }, { hashFunction: 'sha7' })).toThrow(
      /hashFunction: unknown hash function "sha7"/,
    );
    // @ts-expect-error an unknown distribution on purpose
    expect(() => new HashRing({ a: 1 }, { distribution: 'modula' })).toThrow(/distribution/);
    expect(() => new HashRing({ a: 1 }, { hashTag: '{' })).toThrow(/hashTag/);
    expect(() => new HashRing({ a: 1 }, { slices: 1.5 })).toThrow(/slices/);
  });
});

describe('continuum lookups', () => {
  it('sliceIndex finds the same slice as a binary search over the slice ends, at every boundary', async () => {
    const { pointIndex, sliceIndex } = await import('../../lib/core/hashing/continuum.js');
    for (const slices of [2, 3, 2003, 8192, 65_537, 2 ** 24 - 3, 2 ** 24]) {
      const points = new Uint32Array(slices);
      for (let i = 0; i < slices; i++) points[i] = Math.floor(((i + 1) * 2 ** 32) / slices) - 1;
      const probes = [0, 1, 2 ** 32 - 1, 2 ** 31];
      for (let i = 0; i < Math.min(slices, 5000); i++) {
        const at = Math.floor((i * slices) / Math.min(slices, 5000));
        probes.push(points[at], points[at] + 1, Math.max(0, points[at] - 1));
      }
      for (let i = 0; i < 20_000; i++) probes.push(Math.floor(Math.random() * 2 ** 32));
      const wrong = probes.filter(
        (h) => h < 2 ** 32 && sliceIndex(slices, h) !== pointIndex(points, h),
      );
      expect(wrong).toEqual([]);
      // A power of two: the ring takes the slice as the hash's top bits, the same answer.
      const shift = 32 - Math.log2(slices);
      if (Number.isInteger(shift)) {
        const hashes = probes.filter((h) => h < 2 ** 32);
        expect(hashes.filter((h) => h >>> shift !== sliceIndex(slices, h))).toEqual([]);
      }
    }
  });
});

describe('HashRing option checks', () => {
  // Past them the dealing overflowed (1e305: shares dealt as if equal), a ranking key did
  // (2.3e-308: a TypeError), or ketama's single-precision weights became 0 or Infinity.
  it('refuses capacities outside 1e-30 to 1e30, in both distributions and by with()', () => {
    for (const distribution of ['ring', 'ketama'] as const) {
      for (const capacity of [1e305, 1e31, 1e-31, 2.3e-308]) {
        expect(() => new HashRing({ a: capacity, b: 1 }, { distribution })).toThrow(
          /^HashRing: node "a": capacity must be from 1e-30 to 1e30, got .* \(only the capacities' ratios matter: scale them\)$/,
        );
      }
    }
    expect(() => new HashRing({ a: 1 }).with('b', 1e308)).toThrow(RingConfigError);
    expect(() => new HashRing(JSON.parse('{"__proto__": 1, "b": 1}'))).toThrow(
      'HashRing: "__proto__" cannot name a node',
    );
    // Within them only their ratios matter: scaled capacities place keys as the small ones do.
    for (const distribution of ['ring', 'ketama'] as const) {
      const big = new HashRing({ a: 1e29, b: 3e29 }, { distribution });
      const small = new HashRing({ a: 1e-29, b: 3e-29 }, { distribution });
      const plain = new HashRing({ a: 1, b: 3 }, { distribution });
      for (let i = 0; i < 2000; i++) {
        expect([big.locate(`k${i}`), small.locate(`k${i}`)]).toEqual(
          Array(2).fill(plain.locate(`k${i}`)),
        );
      }
    }
  });

  it.each(['{{', '}}', '}{', '((', '[[', '<<', '{]'])(
    'refuses %j, two brackets that are no pair',
    (tag) => {
      expect(() => new HashRing({ a: 1 }, { hashTag: tag })).toThrow(
        /^hashTag: expected an opening and its closing character such as '\{\}', got .* \(did you mean '.*'\?\)$/,
      );
    },
  );

  it.each(['{}', '()', '[]', '<>', '$$', '::', '#:'])('accepts %j', (tag) => {
    const ring = new HashRing({ a: 1, b: 1, c: 1 }, { hashTag: tag });
    const [open, close] = [...tag];
    // Keys sharing the part between the tag's characters share a node.
    const owners = new Set(
      Array.from({ length: 20 }, (_, i) => ring.locate(`p${i}${open}user42${close}rest`)),
    );
    expect(owners.size).toBe(1);
  });
});
