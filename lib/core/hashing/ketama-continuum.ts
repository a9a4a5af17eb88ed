import { hash as digest } from 'node:crypto';
import type { Continuum } from './continuum.js';

/*
 * twemproxy's `distribution: ketama`, rebuilt from a reading of its algorithm (nc_ketama.c,
 * nc_conf.c of twemproxy 0.5) and checked key for key against the real nutcracker by
 * test/integration/nutcracker-compat.spec.ts. Every detail below decides where keys land:
 *
 * - Points per server: `floor(pct × 160 / 4 × live + 1e-10) × 4`, where `pct` is the
 *   server's share of the live weight. twemproxy computes it in single precision (`float`),
 *   except that the tiny constant is a C `double`, so the sum is formed in double and then
 *   narrowed back to float before `floorf`. With weights 29/30/61 for instance, exact
 *   arithmetic would differ from float arithmetic on some counts, so each step is rounded
 *   with Math.fround exactly where C rounds.
 * - Each group of four points comes from one MD5 digest of `<name>-<i>` (i from 0), the
 *   digest read as four little-endian 32-bit words. The string is formed in a 273-byte
 *   buffer, so more than 272 bytes are cut (only absurdly long names are concerned).
 * - `name` is the server's identity: the name written after the weight
 *   (`host:port:weight name`), else the address as written in the config: `host:port`,
 *   just `host` when the port is 11211 (libmemcached's convention), and for a unix socket
 *   `/path:` (twemproxy appends the separator and an empty port).
 * - Points are sorted by value; a key goes to the first point ≥ its hash, wrapping round.
 *   When two servers share a point value, the first in twemproxy's server order wins:
 *   twemproxy sorts its servers by name (shorter names first, then bytewise) before it
 *   builds the continuum, and the qsort it uses (glibc's, on Debian) keeps equal points in
 *   that order; the integration test checks a real collision. With 3 servers a tie happens
 *   in about one config in 40 000, but we reproduce it rather than leave it to chance.
 */

/** Points per server at equal weights (nc_ketama.c's KETAMA_POINTS_PER_SERVER). */
const POINTS_PER_SERVER = 160;
/** Points per MD5 digest: four 32-bit words. */
const POINTS_PER_HASH = 4;
/** twemproxy forms `name-i` in a 273-byte C buffer: at most 272 bytes are hashed. */
const MAX_HOST_BYTES = 272;

/**
 * Number of points twemproxy gives a server of weight `weight` among `live` servers of
 * total weight `totalWeight`, in C's float arithmetic (see the header comment).
 */
export function ketamaPointCount(weight: number, totalWeight: number, live: number): number {
  const pct = Math.fround(Math.fround(weight) / Math.fround(totalWeight));
  // (pct * 160) is a float product; `/ 4` is exact; `* (float)live` is a float product.
  const perHashTimesLive = Math.fround(
    Math.fround(Math.fround(pct * POINTS_PER_SERVER) / POINTS_PER_HASH) * Math.fround(live),
  );
  // `+ 0.0000000001` promotes to double; the cast to float happens before floorf.
  const hashes = Math.floor(Math.fround(perHashTimesLive + 0.0000000001));
  return hashes * POINTS_PER_HASH;
}

/** Byte order of twemproxy's server sort: shorter names first, then bytewise. */
function compareTwemproxyNames(a: Buffer, b: Buffer): number {
  return a.length !== b.length ? a.length - b.length : Buffer.compare(a, b);
}

/**
 * The continuum twemproxy builds for live servers `names` (twemproxy identities) with
 * weights `capacities`. `owners` index into `names`. Ejection in twemproxy rebuilds this
 * from the servers still live, which is what the caller does by passing only those.
 */
export function buildKetamaContinuum(
  names: readonly string[],
  capacities: readonly number[],
): Continuum {
  const n = names.length;
  // twemproxy sums integer weights in a uint32; capacities are finite and > 0 here.
  const totalWeight = capacities.reduce((a, b) => a + b, 0);
  const counts = capacities.map((c) => ketamaPointCount(c, totalWeight, n));
  const total = counts.reduce((a, b) => a + b, 0);

  // Tie-break rank of each server in twemproxy's order.
  const nameBytes = names.map((name) => Buffer.from(name, 'utf8'));
  const order = names
    .map((_, i) => i)
    .sort((a, b) => {
      return compareTwemproxyNames(nameBytes[a], nameBytes[b]) || a - b;
    });
  const rank: number[] = Array.from({ length: n }, () => 0);
  order.forEach((server, r) => (rank[server] = r));

  // Sort keys that carry value and rank at once: value × 2^16 + rank < 2^48, exact in a
  // double, and a Float64Array sorts numerically without a comparator.
  const keys = new Float64Array(total);
  let k = 0;
  for (let j = 0; j < n; j++) {
    for (let i = 0; i < counts[j] / POINTS_PER_HASH; i++) {
      let host = Buffer.concat([nameBytes[j], Buffer.from(`-${i}`, 'latin1')]);
      if (host.length > MAX_HOST_BYTES) host = host.subarray(0, MAX_HOST_BYTES);
      const d = digest('md5', host, 'buffer');
      for (let x = 0; x < POINTS_PER_HASH; x++)
        keys[k++] = d.readUInt32LE(x * 4) * 0x10000 + rank[j];
    }
  }
  keys.sort();
  const points = new Uint32Array(total);
  const owners = new Uint16Array(total);
  for (let p = 0; p < total; p++) {
    points[p] = Math.floor(keys[p] / 0x10000);
    owners[p] = order[keys[p] % 0x10000];
  }
  return { points, owners };
}
