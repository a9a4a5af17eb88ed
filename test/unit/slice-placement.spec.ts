import { describe, expect, it } from 'vitest';
import { HashRing, RingConfigError } from '../../lib/index.js';
import { reassignOwners } from '../../lib/core/hashing/continuum.js';
import { dealSlices } from '../../lib/core/hashing/slice-continuum.js';
import { SliceOwners } from '../../lib/core/hashing/slice-owners.js';
import { SlicePreferences } from '../../lib/core/hashing/slice-preferences.js';

function names(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `node${i}`).sort();
}

function equalNodes(n: number): Record<string, number> {
  return Object.fromEntries(names(n).map((name) => [name, 1]));
}

function sliceCounts(owners: Uint16Array, nodeCount: number): number[] {
  const counts = Array.from({ length: nodeCount }, () => 0);
  for (const owner of owners) counts[owner]++;
  return counts;
}

describe('HashRing slices option', () => {
  it.each([2003, 1000, 4096, 65_537])('uses slices: %i as given', (slices) => {
    const ring = new HashRing(equalNodes(3), { slices });
    expect(ring.points).toBe(slices);
    // Every slice is reachable: keys land on all three nodes.
    const owners = new Set(Array.from({ length: 3000 }, (_, i) => ring.locate(`k${i}`)));
    expect(owners.size).toBe(3);
  });

  it('deals each node its capacity share of the slices given, to one slice', () => {
    for (const [slices, capacities] of [
      [2003, [1, 1, 1]],
      [10_000, [1, 2, 3, 4]],
      [8192, [0.5, 1.5, 1, 1, 3]],
      [100, Array.from({ length: 100 }, () => 1)],
    ] as const) {
      const counts = sliceCounts(
        dealSlices(names(capacities.length), capacities, slices),
        capacities.length,
      );
      const total = capacities.reduce((a, b) => a + b, 0);
      expect(counts.reduce((a, b) => a + b, 0)).toBe(slices);
      counts.forEach((count, j) =>
        expect(Math.abs(count - (slices * capacities[j]) / total)).toBeLessThan(1),
      );
    }
  });

  it.each([
    [1.5, /^slices: expected an integer from 2 to 2\^24, got 1.5$/],
    [1, /^slices: expected an integer from 2 to 2\^24, got 1$/],
    [0, /got 0$/],
    [-8192, /got -8192$/],
    [2 ** 24 + 1, /got 16777217$/],
    [Number.NaN, /got NaN$/],
    ['8192', /got 8192$/],
  ])('refuses slices: %j with a RingConfigError naming the field', (slices, message) => {
    const build = () => new HashRing(equalNodes(3), { slices: slices as number });
    expect(build).toThrow(RingConfigError);
    expect(build).toThrow(message);
  });

  it('refuses fewer slices than nodes, also when with() adds one', () => {
    expect(() => new HashRing(equalNodes(5), { slices: 4 })).toThrow(
      /^slices: 4 slices cannot give each of the 5 nodes one; give at least 5$/,
    );
    const ring = new HashRing(equalNodes(3), { slices: 3 });
    expect(ring.points).toBe(3);
    expect(() => ring.with('node3', 1)).toThrow(RingConfigError);
    // ketama ignores slices: only its type is checked.
    expect(new HashRing(equalNodes(5), { slices: 4, distribution: 'ketama' }).size).toBe(5);
  });
});

describe('SlicePreferences', () => {
  it("answers a block's next node as a full ranking of every node would, in any order of asking", () => {
    for (const capacities of [
      Array.from({ length: 40 }, () => 1),
      Array.from({ length: 40 }, (_, j) => (j % 5) + 0.5),
    ]) {
      const preferences = new SlicePreferences(names(40), capacities, 64);
      for (let b = 0; b < 64; b++) {
        const ranking = capacities
          .map((_, j) => ({ key: preferences.key(j, b), node: j }))
          .sort((x, y) => x.key - y.key || x.node - y.node);
        // Walk the whole ranking (past the entries kept at once), then ask again from
        // earlier and later places in it, as turned-away slices of one block do.
        let after = { key: -Infinity, node: -1 };
        for (const expected of ranking) {
          expect(preferences.next(b, after.key, after.node)).toBe(expected.node);
          after = expected;
        }
        expect(preferences.next(b, after.key, after.node)).toBe(-1);
        for (const at of [30, 2, 17, 0, 39, 5]) {
          const expected = at + 1 < ranking.length ? ranking[at + 1].node : -1;
          expect(preferences.next(b, ranking[at].key, ranking[at].node)).toBe(expected);
        }
      }
    }
  });
});

describe('HashRing without() and with()', () => {
  /** Random subsets of nodes to keep, each with at least one node. */
  function keepSets(n: number, count: number): boolean[][] {
    let seed = 12345;
    const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    const sets: boolean[][] = [];
    for (let s = 0; s < count; s++) {
      const removeShare = [0.01, 0.3, 0.6, 0.95][s % 4];
      const keep = Array.from({ length: n }, () => random() >= removeShare);
      keep[Math.floor(random() * n)] = true;
      sets.push(keep);
    }
    return sets;
  }

  it('hands every removed slice to the next kept slice clockwise, whatever is removed', () => {
    for (const [n, capacities] of [
      [3, [1, 1, 1]],
      [10, [1, 2, 3, 1, 2, 3, 1, 2, 3, 1]],
      [50, Array.from({ length: 50 }, () => 1)],
    ] as const) {
      const owners = dealSlices(names(n), capacities, 8192);
      const table = new SliceOwners(owners, n);
      for (const keep of [
        ...keepSets(n, 24),
        // Each node alone out (an ejection), the owners of the first and last slices too.
        ...Array.from({ length: n }, (_, out) => Array.from({ length: n }, (_, j) => j !== out)),
        Array.from({ length: n }, (_, j) => j === n - 1),
      ]) {
        // The reference: one walk over the whole ring (reassignOwners).
        const fast = table.keeping(keep);
        const reference = reassignOwners(owners, keep);
        expect(fast).toHaveLength(reference.length);
        expect(fast.filter((owner, i) => owner !== reference[i])).toHaveLength(0);
      }
      expect(table.keeping(Array.from({ length: n }, () => false))).toHaveLength(0);
    }
  });

  it('moves only the removed nodes’ keys, and with() restores the placement exactly', () => {
    const nodes = Object.fromEntries(names(50).map((name, i) => [name, (i % 4) + 1]));
    const ring = new HashRing(nodes);
    const out = ['node7', 'node21', 'node33'];
    const smaller = out.reduce((r, name) => r.without(name), ring);
    const back = [...out].reverse().reduce((r, name) => r.with(name, nodes[name]), smaller);
    for (let i = 0; i < 20_000; i++) {
      const key = `user:${i}`;
      const before = ring.locate(key)!;
      if (!out.includes(before)) expect(smaller.locate(key)).toBe(before);
      else expect(out).not.toContain(smaller.locate(key));
      expect(back.locate(key)).toBe(before);
    }
  });
});
