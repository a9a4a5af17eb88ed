import { describe, expect, it } from 'vitest';
import { HashRing } from '../../lib/index.js';
import type { RingMembership } from '../../lib/core/membership/ring-membership.js';
import { ReplicaPlacement } from '../../lib/core/routing/replica-placement.js';

/**
 * Where copies live and which node records the hints of a write for the home nodes that miss
 * it: server-free, over the rings alone (the membership's two rings are all it reads).
 */

const total = new HashRing({ a: 1, b: 1, c: 1, d: 1 });
const keys = Array.from({ length: 3000 }, (_, i) => `user:${i}`);

function placement(replicas: number, out: string[] = []): ReplicaPlacement {
  const alive = out.reduce((ring, name) => ring.without(name), total);
  const membership = { totalHash: total, aliveHash: alive } as unknown as RingMembership;
  return new ReplicaPlacement(membership, replicas);
}

/** For each key, the nodes that record a hint for each home node missing a write to all targets. */
function hintsOf(p: ReplicaPlacement, key: string): Map<string, string[]> {
  const hints = new Map<string, string[]>();
  for (const node of p.targets(key)) {
    for (const owner of p.standsInFor(node, key))
      hints.set(owner, [...(hints.get(owner) ?? []), node]);
  }
  return hints;
}

describe('ReplicaPlacement', () => {
  it('with one copy: a write away from the owner is hinted for the owner, as without replicas', () => {
    const p = placement(1, ['a']);
    for (const key of keys.slice(0, 500)) {
      const owner = total.locate(key)!;
      const [target] = p.targets(key);
      expect(p.standsInFor(target, key)).toEqual(target === owner ? [] : [owner]);
      expect(p.isHome(owner, key)).toBe(true);
      expect(p.isHome(target, key)).toBe(target === owner);
    }
  });

  it('with every node alive: the targets are the home and nothing is hinted', () => {
    const p = placement(2);
    for (const key of keys) {
      expect(p.targets(key)).toEqual(p.home(key));
      expect(hintsOf(p, key).size).toBe(0);
    }
  });

  it('one home node out: its copy goes to the next node, which alone records its hint', () => {
    const p = placement(2, ['b']);
    let seen = 0;
    for (const key of keys) {
      const home = p.home(key);
      if (!home.includes('b')) {
        expect(p.targets(key)).toEqual(home);
        continue;
      }
      seen++;
      const targets = p.targets(key);
      const standIn = targets.find((name) => !home.includes(name))!;
      expect(targets).toContain(home.find((name) => name !== 'b'));
      expect(hintsOf(p, key)).toEqual(new Map([['b', [standIn]]]));
      expect(p.isHome(standIn, key)).toBe(false);
    }
    expect(seen).toBeGreaterThan(1000);
  });

  it('fewer nodes alive than copies: the first target, a home node, records the hints', () => {
    const p = placement(4, ['c']);
    for (const key of keys.slice(0, 500)) {
      const targets = p.targets(key);
      expect(targets).toHaveLength(3);
      expect(hintsOf(p, key)).toEqual(new Map([['c', [targets[0]]]]));
    }
  });

  it('both home nodes out: every stand-in records both hints', () => {
    const p = placement(2, ['a', 'b']);
    for (const key of keys) {
      const home = p.home(key);
      if (home.join() !== 'a,b' && home.join() !== 'b,a') continue;
      const targets = p.targets(key);
      expect([...targets].sort()).toEqual(['c', 'd']);
      const hints = hintsOf(p, key);
      expect(hints.get('a')?.sort()).toEqual(['c', 'd']);
      expect(hints.get('b')?.sort()).toEqual(['c', 'd']);
    }
  });

  it('a write on a node that is no target any more is hinted for the home nodes it misses', () => {
    const p = placement(2);
    for (const key of keys.slice(0, 500)) {
      const stray = total.nodes.find((name) => !p.home(key).includes(name))!;
      expect(p.standsInFor(stray, key)).toEqual([p.home(key)[0]]);
    }
  });
});
