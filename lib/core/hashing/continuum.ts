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
  /** Points are the ends of equal slices: `uniformIndex` finds the arc without searching. */
  readonly uniform?: boolean;
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
 * Index of the arc owning `hash` on a continuum of `S` equal slices, where arc i ends at
 * floor((i + 1) · 2^32 / S) − 1. O(1): the arc is computed, then corrected by one where
 * the floating-point product lands on the wrong side of a boundary. Same answer as
 * `pointIndex`, without the binary search.
 */
export function uniformIndex(points: Uint32Array, hash: number): number {
  let i = Math.floor((hash * points.length) / 4294967296);
  if (points[i] < hash) i++;
  else if (i > 0 && points[i - 1] >= hash) i--;
  return i;
}

/**
 * The same points without the nodes whose `keep[owner]` is false: each of their points is
 * given to the next kept point's owner clockwise, so their keys fall to the next node and
 * no other key moves. O(S). Keeping every point (rather than dropping some) keeps a
 * uniform continuum uniform, so `uniformIndex` still applies. Empty when nothing is kept.
 */
export function reassignContinuum(continuum: Continuum, keep: readonly boolean[]): Continuum {
  const { points, owners } = continuum;
  const n = owners.length;
  let last = -1;
  for (let i = n - 1; i >= 0; i--) {
    if (keep[owners[i]]) {
      last = i;
      break;
    }
  }
  if (last === -1) return { points: new Uint32Array(0), owners: new Uint16Array(0) };
  const reassigned = new Uint16Array(n);
  // Walk counter-clockwise from the last kept point so each removed point sees its heir.
  let heir = owners[last];
  for (let k = 0; k < n; k++) {
    const i = (last - k + n) % n;
    if (keep[owners[i]]) heir = owners[i];
    reassigned[i] = heir;
  }
  return { points, owners: reassigned, uniform: continuum.uniform };
}
