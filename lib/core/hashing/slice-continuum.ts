import { hash as digest } from 'node:crypto';
import type { Continuum } from './continuum.js';

/** Smallest prime ≥ n: the slice count must be prime for every node's permutation to visit every slice. */
export function nextPrime(n: number): number {
  for (let p = Math.max(2, Math.ceil(n)); ; p++) {
    let prime = true;
    for (let d = 2; d * d <= p; d++) {
      if (p % d === 0) {
        prime = false;
        break;
      }
    }
    if (prime) return p;
  }
}

/**
 * Our own distribution. The 32-bit space is cut into `slices` equal arcs and the arcs are
 * dealt to nodes Maglev-style: nodes take turns in proportion to their capacity (smooth
 * weighted round robin), and on its turn a node claims the next free slice of its own
 * pseudo-random permutation of the slices.
 *
 * Why not ketama's "hash name-i for every point": random points leave arcs of random
 * length, so node shares wander by 5–40 %. Here every node holds exactly its capacity
 * share of equal arcs (± one slice), and each node's slices are scattered over the ring,
 * so when a node is ejected its arcs fall to many different neighbours instead of one.
 *
 * The result depends only on node names, capacities and `slices` (never on the order of
 * the configuration), so every process computes the same placement.
 */
export function buildSliceContinuum(
  names: readonly string[],
  capacities: readonly number[],
  slices: number,
): Continuum {
  const n = names.length;
  const points = new Uint32Array(slices);
  const owners = new Uint16Array(slices);
  if (n === 0) return { points: new Uint32Array(0), owners: new Uint16Array(0) };

  // Arc i ends at point i; the last arc ends at 2^32 - 1 so no hash wraps past the end.
  for (let i = 0; i < slices; i++) points[i] = Math.floor(((i + 1) * 2 ** 32) / slices) - 1;

  // Each node's permutation of the slices: offset + k * skip (mod slices), seeded by MD5
  // of its name — a strong mix, so similar names ('node1', 'node2') get unrelated orders.
  const offset = new Float64Array(n);
  const skip = new Float64Array(n);
  const next = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    const seed = digest('md5', names[j], 'buffer');
    offset[j] = seed.readUInt32LE(0) % slices;
    skip[j] = (seed.readUInt32LE(4) % (slices - 1)) + 1;
  }

  const claimed = new Uint8Array(slices);
  const total = capacities.reduce((a, b) => a + b, 0);
  const current = new Float64Array(n);
  for (let turn = 0; turn < slices; turn++) {
    // Smooth weighted round robin: after t turns every node has had its share ± 1.
    let pick = 0;
    for (let j = 0; j < n; j++) {
      current[j] += capacities[j];
      if (current[j] > current[pick]) pick = j;
    }
    current[pick] -= total;

    let slice = (offset[pick] + next[pick] * skip[pick]) % slices;
    while (claimed[slice]) {
      next[pick]++;
      slice = (offset[pick] + next[pick] * skip[pick]) % slices;
    }
    claimed[slice] = 1;
    owners[slice] = pick;
    next[pick]++;
  }
  return { points, owners, uniform: true };
}
