import { describe, expect, it } from 'vitest';
import { HashRing } from '../../lib/index.js';

/** Keys for the growth and removal checks (the benchmark uses 1 M). */
const KEYS = 25_000;
const keys = Array.from({ length: KEYS }, (_, i) => `user:${i}`);
/** The promise: at most this much more than the ideal share moves (2.5 percentage points). */
const ALLOWANCE = 0.025;

/**
 * The promise checked with margin for sampling: a fraction measured over KEYS keys may be
 * off by 3σ = 3 √(p (1 − p) / KEYS) (0.95 pp at p = 50 %, 0.38 pp at 9 %), so it must stay
 * that far below the bound for the bound to hold over any number of keys.
 */
function bound(ideal: number): number {
  return ideal + ALLOWANCE - 3 * Math.sqrt((ideal * (1 - ideal)) / KEYS);
}

function equalNodes(n: number): Record<string, number> {
  return Object.fromEntries(Array.from({ length: n }, (_, i) => [`node${i}`, 1]));
}

/** Each key's owner, as an index into `ring.nodes`, so placements compare cheaply. */
function placement(ring: HashRing): { names: readonly string[]; owner: Uint16Array } {
  const index = new Map(ring.nodes.map((name, i) => [name, i]));
  const owner = new Uint16Array(KEYS);
  for (let k = 0; k < KEYS; k++) owner[k] = index.get(ring.locate(keys[k])!)!;
  return { names: ring.nodes, owner };
}

/**
 * What changed from `before` to `after`: every key that changed owner, and those among
 * them that neither left `gone` nor went to `added` (keys of other nodes that moved).
 */
function moves(
  before: ReturnType<typeof placement>,
  after: ReturnType<typeof placement>,
  change: { added?: string; gone?: string },
): { moved: number; bystanders: number } {
  let moved = 0;
  let bystanders = 0;
  for (let k = 0; k < KEYS; k++) {
    const from = before.names[before.owner[k]];
    const to = after.names[after.owner[k]];
    if (from === to) continue;
    moved++;
    if (from !== change.gone && to !== change.added) bystanders++;
  }
  return { moved: moved / KEYS, bystanders: bystanders / KEYS };
}

describe('HashRing growth', () => {
  it('adding a node to n moves at most 1/(n + 1) + 2.5 pp of keys, for every n from 1 to 100', () => {
    const over: string[] = [];
    let ring = new HashRing(equalNodes(1));
    let before = placement(ring);
    for (let n = 1; n <= 100; n++) {
      const grown = ring.with(`node${n}`, 1);
      // with() of a new node is the ring built afresh from the new configuration.
      expect(grown.points).toBe(new HashRing(equalNodes(n + 1)).points);
      const after = placement(grown);
      const { moved, bystanders } = moves(before, after, { added: `node${n}` });
      const ideal = 1 / (n + 1);
      if (moved > bound(ideal) || bystanders > ALLOWANCE) {
        over.push(
          `${n}→${n + 1}: moved ${pct(moved)} (ideal ${pct(ideal)}), bystanders ${pct(bystanders)}`,
        );
      }
      ring = grown;
      before = after;
    }
    expect(over).toEqual([]);
  });

  it('the slice count doubling on the way (40 → 41, 81 → 82 nodes) refines the ring instead of re-cutting it', () => {
    for (const n of [40, 81]) {
      const small = new HashRing(equalNodes(n));
      const big = small.with(`node${n}`, 1);
      expect(big.points).toBe(small.points * 2);
      const { moved } = moves(placement(small), placement(big), { added: `node${n}` });
      expect(moved).toBeLessThan(bound(1 / (n + 1)));
    }
  });

  it('removing one node of n moves its own keys and at most 2.5 pp of the others', () => {
    const over: string[] = [];
    for (let n = 2; n <= 100; n++) {
      const nodes = equalNodes(n);
      const gone = `node${(n * 37 + 11) % n}`;
      const full = new HashRing(nodes);
      delete nodes[gone];
      const { moved, bystanders } = moves(placement(full), placement(new HashRing(nodes)), {
        gone,
      });
      if (moved > bound(1 / n) || bystanders > ALLOWANCE) {
        over.push(
          `${n}−1 (${gone}): moved ${pct(moved)} (ideal ${pct(1 / n)}), bystanders ${pct(bystanders)}`,
        );
      }
    }
    expect(over).toEqual([]);
  });

  it('adding a node at another capacity takes its capacity share', () => {
    const nodes = { a: 1, b: 2, c: 3, d: 1, e: 2, f: 3 };
    const ring = new HashRing(nodes);
    const grown = ring.with('g', 2);
    const { moved, bystanders } = moves(placement(ring), placement(grown), { added: 'g' });
    expect(moved).toBeLessThan(bound(2 / 14));
    expect(moved).toBeGreaterThan(2 / 14 - ALLOWANCE);
    expect(bystanders).toBeLessThan(ALLOWANCE);
  });
});

function pct(fraction: number): string {
  return `${(fraction * 100).toFixed(2)} %`;
}
