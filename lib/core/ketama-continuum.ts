import { hash as digest } from 'node:crypto';
import type { Continuum } from './continuum.js';

/** twemproxy's constants (nc_ketama.c). */
const POINTS_PER_SERVER = 160;
const POINTS_PER_HASH = 4;

/**
 * twemproxy's ketama continuum (`distribution: ketama`), point for point, so that keys
 * land on the same server as behind nutcracker. `names` are twemproxy identities: the
 * server's name when the config gives one, else `host:port`.
 *
 * Each node gets floor(share × 160 / 4 × nodes) × 4 points, computed in single precision
 * as twemproxy does; each MD5 of `name-i` yields four little-endian points.
 */
export function buildKetamaContinuum(
  names: readonly string[],
  capacities: readonly number[],
): Continuum {
  const n = names.length;
  const total = Math.fround(capacities.reduce((a, b) => a + b, 0));
  const values: number[] = [];
  const owners: number[] = [];
  for (let j = 0; j < n; j++) {
    const pct = Math.fround(Math.fround(capacities[j]) / total);
    const perServer =
      Math.floor(
        Math.fround(
          Math.fround(Math.fround((pct * POINTS_PER_SERVER) / POINTS_PER_HASH) * Math.fround(n)) +
            0.0000000001,
        ),
      ) * POINTS_PER_HASH;
    for (let i = 0; i < perServer / POINTS_PER_HASH; i++) {
      const d = digest('md5', `${names[j]}-${i}`, 'buffer');
      for (let x = 0; x < POINTS_PER_HASH; x++) {
        values.push(d.readUInt32LE(x * 4));
        owners.push(j);
      }
    }
  }
  const order = values.map((_, i) => i).sort((a, b) => values[a] - values[b]);
  return {
    points: Uint32Array.from(order, (i) => values[i]),
    owners: Uint16Array.from(order, (i) => owners[i]),
  };
}
