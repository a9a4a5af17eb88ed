import type { HashRing } from '../hashing/hash-ring.js';

/**
 * A ring's nodes, as capacities by name: what a ring is built from. Kept instead of a ring
 * where rings are remembered: a ring takes about 110 KB with the default slices (3 nodes), and
 * `slices: 2 ** 24` makes it 32 MB; a list takes a few bytes a node.
 */
export type NodeCapacities = Readonly<Record<string, number>>;

/** Node lists a dict remembers before its current one (see RingMembership.earlierNodes). */
const EARLIER_LISTS = 4;

export function capacitiesIn(ring: HashRing): NodeCapacities {
  return Object.fromEntries(ring.nodes.map((name) => [name, ring.capacityOf(name)!]));
}

export function sameCapacities(a: NodeCapacities, b: NodeCapacities): boolean {
  const names = Object.keys(a);
  return names.length === Object.keys(b).length && names.every((name) => a[name] === b[name]);
}

/**
 * The first EARLIER_LISTS of `lists` that differ from `now` and from each other, in their
 * order: setNodes builds a new ring for an unchanged list, and a loop reconciling from service
 * discovery pushed the list that differed out after four calls.
 */
export function distinctLists(
  lists: readonly NodeCapacities[],
  now: NodeCapacities,
): NodeCapacities[] {
  const kept: NodeCapacities[] = [];
  for (const list of lists) {
    if (kept.length === EARLIER_LISTS) break;
    if (sameCapacities(list, now) || kept.some((other) => sameCapacities(other, list))) continue;
    kept.push(list);
  }
  return kept;
}
