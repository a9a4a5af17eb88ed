/**
 * twemproxy-compatible placement without a nutcracker: the arithmetic, the hashes, the hash
 * tag rule and ejection. The fixtures marked "nutcracker" were observed on nutcracker 0.5.0
 * (Debian, x86-64); test/integration/nutcracker-compat.spec.ts re-checks them live.
 */
import { hash as digest } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { pointIndex, reassignContinuum } from '../../lib/core/hashing/continuum.js';
import {
  fnv132Hash,
  fnv164Hash,
  fnv1a32Hash,
  fnv1a64Hash,
  fnv1aHash,
  hashBytes,
  md5Hash,
  resolveHashFunction,
  type HashFunctionName,
} from '../../lib/core/hashing/hash-functions.js';
import { HashRing } from '../../lib/core/hashing/hash-ring.js';
import { buildKetamaContinuum, ketamaPointCount } from '../../lib/core/hashing/ketama-continuum.js';

/** Reference FNV over a real 64-bit state (BigInt), each byte widened as a signed C char. */
function referenceFnv64(bytes: Uint8Array, variant: '1' | '1a'): number {
  const mask = (1n << 64n) - 1n;
  let h = 0xcbf29ce484222325n;
  for (const byte of bytes) {
    const widened = BigInt.asUintN(64, BigInt((byte << 24) >> 24));
    if (variant === '1') h = ((h * 0x100000001b3n) & mask) ^ widened;
    else h = ((h ^ widened) * 0x100000001b3n) & mask;
  }
  return Number(h & 0xffffffffn);
}

/** Reference 32-bit FNV (BigInt), signed-char widening. */
function referenceFnv32(bytes: Uint8Array, variant: '1' | '1a', signed = true): number {
  const mask = 0xffffffffn;
  let h = 0x811c9dc5n;
  for (const byte of bytes) {
    const widened = BigInt.asUintN(32, BigInt(signed ? (byte << 24) >> 24 : byte));
    if (variant === '1') h = ((h * 0x01000193n) & mask) ^ widened;
    else h = ((h ^ widened) * 0x01000193n) & mask;
  }
  return Number(h);
}

function randomBytes(seed: number, length: number): Uint8Array {
  let x = seed >>> 0 || 1;
  return Uint8Array.from({ length }, () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x & 0xff;
  });
}

describe('ketama point counts (float arithmetic)', () => {
  it('gives 160 points to each of equally weighted servers', () => {
    for (const n of [1, 2, 3, 5, 7, 10, 13, 64]) {
      expect(ketamaPointCount(1, n, n)).toBe(160);
      expect(ketamaPointCount(5, 5 * n, n)).toBe(160);
    }
  });

  it('rounds in single precision like twemproxy (nutcracker: weights 29/30/61 → 472 points)', () => {
    // Exact arithmetic would give 116 and 244 for 29 and 61: twemproxy computes
    // floor((29 / 120) * 40 * 3) in float, where the product is 28.9999…, not 29.
    expect([29, 30, 61].map((w) => ketamaPointCount(w, 120, 3))).toEqual([112, 120, 240]);
    expect(buildKetamaContinuum(['a', 'b', 'c'], [29, 30, 61]).points.length).toBe(472);
  });

  it('gives proportional counts to unequal weights', () => {
    expect([1, 1, 2].map((w) => ketamaPointCount(w, 4, 3))).toEqual([120, 120, 240]);
    expect([3, 5, 7].map((w) => ketamaPointCount(w, 15, 3))).toEqual([96, 160, 224]);
  });
});

describe('buildKetamaContinuum', () => {
  it('takes four little-endian points from each MD5 of "name-i"', () => {
    const { points, owners } = buildKetamaContinuum(['alpha'], [1]);
    expect(points.length).toBe(160);
    expect(owners.every((o) => o === 0)).toBe(true);
    const expected: number[] = [];
    for (let i = 0; i < 40; i++) {
      const d = digest('md5', `alpha-${i}`, 'buffer');
      for (let x = 0; x < 4; x++) expected.push(d.readUInt32LE(4 * x));
    }
    expect([...points]).toEqual(expected.sort((a, b) => a - b));
  });

  it('is sorted, and owners follow their points', () => {
    const names = ['s1', 's2', 'srv-three'];
    const { points, owners } = buildKetamaContinuum(names, [1, 2, 3]);
    for (let i = 1; i < points.length; i++) expect(points[i]).toBeGreaterThanOrEqual(points[i - 1]);
    const counts = names.map((_, j) => owners.filter((o) => o === j).length);
    expect(counts).toEqual([1, 2, 3].map((w) => ketamaPointCount(w, 6, 3)));
  });

  it('hashes names as UTF-8 bytes', () => {
    const { points } = buildKetamaContinuum(['сервер'], [1]);
    const d = digest('md5', Buffer.from('сервер-0', 'utf8'), 'buffer');
    expect(points).toContain(d.readUInt32LE(0));
  });

  it('cuts "name-i" at 272 bytes, as twemproxy\'s 273-byte buffer does', () => {
    const name = 'n'.repeat(300);
    const { points } = buildKetamaContinuum([name], [1]);
    // Every "name-i" is cut to the same 272 bytes: one digest, repeated 40 times.
    const d = digest('md5', name.slice(0, 272), 'buffer');
    expect(new Set(points)).toEqual(new Set([0, 1, 2, 3].map((x) => d.readUInt32LE(4 * x))));
  });

  it('breaks ties by twemproxy server order: shorter names first, then bytes (nutcracker)', () => {
    // MD5 collisions found offline; nutcracker was seen to give the tied point to n789 and n1213.
    for (const [names, tie, winner] of [
      [['n1030', 'n789'], 2011699212, 'n789'],
      [['n789', 'n1030'], 2011699212, 'n789'],
      [['n1280', 'n1213'], 1718821595, 'n1213'],
      [['n81', 'n975'], 607858066, 'n81'],
    ] as const) {
      const { points, owners } = buildKetamaContinuum(names, [1, 1]);
      const at = pointIndex(points, tie);
      expect(points[at]).toBe(tie);
      expect(points[at + 1]).toBe(tie);
      expect(names[owners[at]]).toBe(winner);
    }
  });
});

describe("twemproxy's hash functions", () => {
  const samples = [
    new Uint8Array(0),
    Buffer.from('a'),
    Buffer.from('foobar'),
    Buffer.from('ключ 🔑 {x}'),
    Uint8Array.from([0x80, 0xff, 0x7f, 0x00, 0xc3]),
    ...Array.from({ length: 50 }, (_, i) => randomBytes(i + 1, i * 7)),
  ];

  it('fnv1a_64 / fnv1_64 are the low 32 bits of a 64-bit FNV with sign-extended bytes', () => {
    for (const bytes of samples) {
      expect(hashBytes('fnv1a_64', bytes)).toBe(referenceFnv64(bytes, '1a'));
      expect(hashBytes('fnv1_64', bytes)).toBe(referenceFnv64(bytes, '1'));
    }
    // Published FNV-64 vectors for "a", truncated: …8601ec8c (1a) and …8601b7be (1).
    expect(fnv1a64Hash('a')).toBe(0x8601ec8c);
    expect(fnv164Hash('a')).toBe(0x8601b7be);
    expect(fnv1a64Hash('')).toBe(0x84222325);
  });

  it('fnv1_32 / fnv1a_32 are 32-bit FNV with sign-extended bytes; fnv1a is standard', () => {
    for (const bytes of samples) {
      expect(hashBytes('fnv1_32', bytes)).toBe(referenceFnv32(bytes, '1'));
      expect(hashBytes('fnv1a_32', bytes)).toBe(referenceFnv32(bytes, '1a'));
      expect(hashBytes('fnv1a', bytes)).toBe(referenceFnv32(bytes, '1a', false));
    }
    expect(fnv1a32Hash('a')).toBe(0xe40c292c);
    expect(fnv132Hash('a')).toBe(0x050c5d7e);
    // They part ways on bytes ≥ 0x80 only.
    expect(fnv1a32Hash('é')).not.toBe(fnv1aHash('é'));
    expect(fnv1a32Hash('ascii')).toBe(fnv1aHash('ascii'));
  });

  it('md5 reads the first four digest bytes little-endian; crc32a is the standard CRC-32', () => {
    expect(md5Hash('')).toBe(0xd98c1dd4); // d41d8cd9…
    expect(hashBytes('crc32a', Buffer.from('123456789'))).toBe(0xcbf43926);
  });

  it('agrees between strings (UTF-8) and bytes for every name', () => {
    const names: HashFunctionName[] = [
      'crc32',
      'md5',
      'fnv1a',
      'fnv1a_64',
      'fnv1_64',
      'fnv1_32',
      'fnv1a_32',
      'crc32a',
    ];
    for (const name of names) {
      const fn = resolveHashFunction(name);
      for (const s of ['', 'a', 'user:42', 'ключ 🔑 {x}', 'x'.repeat(5000)]) {
        expect(fn(s), `${name}(${s.slice(0, 10)})`).toBe(hashBytes(name, Buffer.from(s, 'utf8')));
      }
    }
  });

  it('refuses unknown names', () => {
    expect(() => resolveHashFunction('murmur' as HashFunctionName)).toThrow(
      /unknown hash function/,
    );
    expect(() => hashBytes('jenkins' as HashFunctionName, new Uint8Array(1))).toThrow(/unknown/);
  });
});

describe('hash tags (twemproxy rule, both distributions)', () => {
  const cases: [entry: string, hashed: string][] = [
    ['user:{42}:profile', '42'],
    ['{a}{b}', 'a'], // the first opening character…
    ['{{a}}', '{a'], // …and the first closing one after it
    ['a{}b{c}', 'a{}b{c}'], // empty tag: the whole key, no second look
    ['a}b{c', 'a}b{c'], // no closing character after the opening one
    ['x{', 'x{'],
    ['plain', 'plain'],
    ['{ключ}:1', 'ключ'],
  ];

  for (const distribution of ['ketama', 'ring'] as const) {
    it(`hashes only the tag's content (${distribution})`, () => {
      const ring = new HashRing(
        { a: 1, b: 1, c: 1 },
        { distribution, hashFunction: 'fnv1a_64', hashTag: '{}' },
      );
      for (const [entry, hashed] of cases) {
        expect(ring.hashOf(entry), entry).toBe(fnv1a64Hash(hashed));
      }
      expect(ring.locate('user:{42}:a')).toBe(ring.locate('user:{42}:b'));
    });
  }

  it('takes any two characters, even the same one twice', () => {
    const angle = new HashRing(
      { a: 1, b: 1 },
      { distribution: 'ketama', hashTag: '<>', hashFunction: 'md5' },
    );
    expect(angle.hashOf('k<v>w')).toBe(md5Hash('v'));
    const dollar = new HashRing(
      { a: 1, b: 1 },
      { distribution: 'ketama', hashTag: '$$', hashFunction: 'md5' },
    );
    expect(dollar.hashOf('x$ab$c$d')).toBe(md5Hash('ab'));
    expect(dollar.hashOf('x$$ab')).toBe(md5Hash('x$$ab'));
  });

  it('places the empty key at hash 0 in ketama mode, as twemproxy does (nutcracker)', () => {
    const ketama = new HashRing(
      { a: 1, b: 1 },
      { distribution: 'ketama', hashFunction: 'fnv1a_64' },
    );
    expect(ketama.hashOf('')).toBe(0);
    const ring = new HashRing({ a: 1, b: 1 }, { hashFunction: 'fnv1a_64' });
    expect(ring.hashOf('')).toBe(fnv1a64Hash(''));
  });
});

describe('ketama ejection (auto_eject_hosts rebuild)', () => {
  const keys = Array.from({ length: 5000 }, (_, i) => `key:${i}`);

  it("at equal weights, rebuilding equals filtering: only the ejected node's keys move", () => {
    const names = ['alpha', 'beta', 'gamma', 'delta'];
    const full = new HashRing(Object.fromEntries(names.map((n) => [n, 1])), {
      distribution: 'ketama',
      hashFunction: 'fnv1a_64',
    });
    const without = full.without('beta');
    const rebuilt = new HashRing(
      { alpha: 1, gamma: 1, delta: 1 },
      {
        distribution: 'ketama',
        hashFunction: 'fnv1a_64',
      },
    );
    const continuum = buildKetamaContinuum(names, [1, 1, 1, 1]);
    const filtered = reassignContinuum(continuum, [true, false, true, true]);
    for (const k of keys) {
      const before = full.locate(k);
      const after = without.locate(k);
      expect(after).toBe(rebuilt.locate(k));
      expect(after).toBe(names[filtered.owners[pointIndex(filtered.points, fnv1a64Hash(k))]]);
      if (before !== 'beta') expect(after).toBe(before);
      else expect(after).not.toBe('beta');
    }
  });

  it('at unequal weights, point counts follow the live weights, like twemproxy', () => {
    const options = { distribution: 'ketama', hashFunction: 'fnv1a_64' } as const;
    const full = new HashRing({ alpha: 1, beta: 1, gamma: 2 }, options);
    const without = full.without('alpha');
    const rebuilt = new HashRing({ beta: 1, gamma: 2 }, options);
    expect(without.points).toBe(rebuilt.points);
    expect(without.points).toBe(ketamaPointCount(1, 3, 2) + ketamaPointCount(2, 3, 2));
    let moved = 0;
    for (const k of keys) {
      expect(without.locate(k)).toBe(rebuilt.locate(k));
      if (full.locate(k) !== 'alpha' && without.locate(k) !== full.locate(k)) moved++;
    }
    // Unlike our own ring, some keys of live nodes move: twemproxy does the same.
    expect(moved).toBeGreaterThan(0);
  });

  it('restores the full placement when the node comes back', () => {
    const options = { distribution: 'ketama', hashFunction: 'md5' } as const;
    const full = new HashRing({ alpha: 1, beta: 1, gamma: 2 }, options);
    const back = full.without('gamma').with('gamma', 2);
    for (const k of keys) expect(back.locate(k)).toBe(full.locate(k));
    expect(back.points).toBe(full.points);
  });

  it('gives no node for an empty ring and everything to a lone node', () => {
    const one = new HashRing({ only: 3 }, { distribution: 'ketama', hashFunction: 'fnv1a_64' });
    expect(new Set(keys.map((k) => one.locate(k)))).toEqual(new Set(['only']));
    expect(one.without('only').locate('x')).toBeUndefined();
  });
});
