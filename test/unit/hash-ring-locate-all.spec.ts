import { describe, expect, it } from 'vitest';
import { HashRing, RingArgumentError, type HashRingOptions } from '../../lib/index.js';

const keys = Array.from({ length: 20_000 }, (_, i) => `user:${i}`);

function equalNodes(n: number): Record<string, number> {
  return Object.fromEntries(Array.from({ length: n }, (_, i) => [`node${i}`, 1]));
}

const RINGS: [string, Record<string, number>, HashRingOptions][] = [
  ['ring, 3 equal nodes', equalNodes(3), {}],
  ['ring, 10 nodes of capacities 1–3', { ...equalNodes(7), big: 3, mid: 2, small: 1 }, {}],
  ['ring, 5 nodes, 1000 slices (not a power of two)', equalNodes(5), { slices: 1000 }],
  ['ring, hash tag', equalNodes(4), { hashTag: '{}' }],
  ['ketama, 4 nodes', { 'a:1': 1, 'b:1': 2, 'c:1': 1, 'd:1': 1 }, { distribution: 'ketama' }],
];

describe('HashRing.locateAll', () => {
  describe.each(RINGS)('%s', (_label, nodes, options) => {
    const ring = new HashRing(nodes, options);

    it('answers distinct nodes, the first being locate(entry)', () => {
      // Checked in plain code and counted: an expect per key makes the test slow.
      let wrong = 0;
      for (const count of [1, 2, 3]) {
        for (const key of keys) {
          const all = ring.locateAll(key, count);
          const ok =
            all.length === count && all[0] === ring.locate(key) && new Set(all).size === count;
          if (!ok) wrong++;
        }
      }
      expect(wrong).toBe(0);
    });

    it('answers every node once when asked for as many or more', () => {
      for (const key of keys.slice(0, 500)) {
        expect([...ring.locateAll(key, ring.size)].sort()).toEqual([...ring.nodes]);
        expect(ring.locateAll(key, ring.size + 5)).toEqual(ring.locateAll(key, ring.size));
      }
    });

    it('is a prefix of itself: the first copies stay when more are asked for', () => {
      for (const key of keys.slice(0, 2000)) {
        const three = ring.locateAll(key, 3);
        expect(ring.locateAll(key, 2)).toEqual(three.slice(0, 2));
      }
    });

    it('is the same in a ring built afresh from the same configuration (every process agrees)', () => {
      const reordered = Object.fromEntries(Object.entries(nodes).reverse());
      const other = new HashRing(reordered, { ...options });
      for (const key of keys.slice(0, 2000)) {
        expect(other.locateAll(key, 3)).toEqual(ring.locateAll(key, 3));
      }
    });
  });

  it('without a node, meets the other nodes in the same order (copies on survivors stay put)', () => {
    const ring = new HashRing(equalNodes(5));
    for (const out of [['node1'], ['node0', 'node3']]) {
      const alive = out.reduce((r, name) => r.without(name), ring);
      let wrong = 0;
      for (const key of keys.slice(0, 5000)) {
        const expected = ring
          .locateAll(key, 5)
          .filter((name) => !out.includes(name))
          .slice(0, 2);
        if (alive.locateAll(key, 2).join() !== expected.join()) wrong++;
      }
      expect(wrong).toBe(0);
    }
  });

  it('spreads the copies evenly: each of 3 equal nodes holds about 2/3 of the entries with 2 copies', () => {
    const ring = new HashRing(equalNodes(3));
    const held = new Map<string, number>(ring.nodes.map((name) => [name, 0]));
    for (const key of keys)
      for (const name of ring.locateAll(key, 2)) held.set(name, held.get(name)! + 1);
    for (const count of held.values())
      expect(Math.abs(count / keys.length - 2 / 3)).toBeLessThan(0.02);
  });

  it('answers nothing for an empty ring and one node for a ring of one', () => {
    const one = new HashRing({ solo: 1 });
    expect(one.locateAll('k', 3)).toEqual(['solo']);
    expect(one.without('solo').locateAll('k', 2)).toEqual([]);
  });

  it.each([0, -1, 1.5, NaN, '2', undefined])(
    'refuses a count of %s with RingArgumentError',
    (count) => {
      const ring = new HashRing(equalNodes(3));
      expect(() => ring.locateAll('k', count as number)).toThrow(RingArgumentError);
      expect(() => ring.locateAll('k', count as number)).toThrow(/locateAll: count/);
    },
  );
});
