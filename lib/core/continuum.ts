/**
 * The ring itself: sorted 32-bit points and, for each point, the index of the node that
 * owns the arc ending at it. Two typed arrays, so a ring of S points costs 6 bytes per
 * point and nothing for the garbage collector to walk.
 */
export interface Continuum {
  /** Sorted ascending. */
  readonly points: Uint32Array;
  /** `owners[i]` owns the keys hashing into (points[i-1], points[i]]. */
  readonly owners: Uint16Array;
}

/**
 * Index of the point owning `hash`: the first point ≥ hash, wrapping to the first point
 * past the end. O(log S). The caller guarantees at least one point.
 */
export function pointIndex(points: Uint32Array, hash: number): number {
  let lo = 0;
  let hi = points.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (points[mid] < hash) lo = mid + 1;
    else hi = mid;
  }
  return lo === points.length ? 0 : lo;
}

/**
 * The same continuum without the points of nodes whose `keep[owner]` is false. O(S): a
 * removed node's arcs fall to the next kept point clockwise and no other arc moves.
 */
export function filterContinuum(continuum: Continuum, keep: readonly boolean[]): Continuum {
  const { points, owners } = continuum;
  let count = 0;
  for (let i = 0; i < owners.length; i++) if (keep[owners[i]]) count++;
  const keptPoints = new Uint32Array(count);
  const keptOwners = new Uint16Array(count);
  for (let i = 0, j = 0; i < owners.length; i++) {
    if (!keep[owners[i]]) continue;
    keptPoints[j] = points[i];
    keptOwners[j++] = owners[i];
  }
  return { points: keptPoints, owners: keptOwners };
}
