/**
 * A ring of sorted 32-bit points and, for each point, the index of the node that owns the
 * arc ending at it (the `'ketama'` distribution). Two typed arrays, so a ring of S points
 * costs 6 bytes per point and nothing for the garbage collector to walk.
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

/** Last hash of slice `i` of `slices` equal slices: floor((i + 1) · 2³² / slices) − 1. */
export function sliceEnd(i: number, slices: number): number {
  return Math.floor(((i + 1) * 4294967296) / slices) - 1;
}

/**
 * Index of the slice holding `hash` when the 32-bit space is cut into `slices` equal
 * slices, slice i ending at `sliceEnd(i)`. O(1) and no table: the slice is computed, then
 * corrected by one where the floating-point product lands on the wrong side of a
 * boundary. For a power of two it is `hash >>> (32 − log₂ slices)`, which the caller
 * uses directly.
 */
export function sliceIndex(slices: number, hash: number): number {
  let i = Math.floor((hash * slices) / 4294967296);
  if (sliceEnd(i, slices) < hash) i++;
  else if (i > 0 && sliceEnd(i - 1, slices) >= hash) i--;
  return i;
}

/**
 * `owners` without the nodes whose `keep[owner]` is false: each of their entries is given
 * to the next kept entry's owner (clockwise), so their keys fall to the next node and no
 * other key moves. O(S). Empty when nothing is kept.
 */
export function reassignOwners(owners: Uint16Array, keep: readonly boolean[]): Uint16Array {
  const n = owners.length;
  let last = n - 1;
  while (last >= 0 && !keep[owners[last]]) last--;
  if (last === -1) return new Uint16Array(0);
  const kept = Uint8Array.from(keep, Number);
  const reassigned = new Uint16Array(n);
  // Walk counter-clockwise from the last kept entry so each removed entry sees its heir:
  // from `last` down to 0, then from the end down past `last`.
  let heir = owners[last];
  for (let i = last; i >= 0; i--) {
    const owner = owners[i];
    if (kept[owner] === 1) heir = owner;
    reassigned[i] = heir;
  }
  for (let i = n - 1; i > last; i--) {
    const owner = owners[i];
    if (kept[owner] === 1) heir = owner;
    reassigned[i] = heir;
  }
  return reassigned;
}

/** The same points without the nodes whose `keep[owner]` is false (see `reassignOwners`). */
export function reassignContinuum(continuum: Continuum, keep: readonly boolean[]): Continuum {
  const owners = reassignOwners(continuum.owners, keep);
  return { points: owners.length === 0 ? new Uint32Array(0) : continuum.points, owners };
}
