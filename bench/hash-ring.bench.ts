/**
 * Goal 1: `HashRing.locate` lookups per second at 3 and 10 nodes, side by side with the
 * `hashring` npm package (3.2.0) on the same keys and nodes, and the ring's memory: a
 * ring alone, and a ring with the one derived from it when a node is ejected (the total
 * and alive rings of a dict with a node out).
 */
import HashRingNpm from 'hashring';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { HashRing } from '../lib/index.js';
import { median, pairedRatio, syncOpsPerSecond, type BenchConfig } from './measure.js';
import { rate, sig, times, verdict, type Row, type SectionResult } from './report.js';

/** Distinct keys cycled through: far more than hashring's 5000-entry LRU holds. */
const KEY_COUNT = 100_000;
/** Lookups between two looks at the clock. */
const CHUNK = 10_000;
/** Rings built to measure memory. */
const MEMORY_RINGS = 1000;

export function equalNodes(count: number): Record<string, number> {
  const nodes: Record<string, number> = {};
  for (let i = 0; i < count; i++) nodes[`node${i}`] = 1;
  return nodes;
}

/** The keys every lookup benchmark uses: `user:0` … `user:99999`. */
export function userKeys(count = KEY_COUNT): string[] {
  return Array.from({ length: count }, (_, i) => `user:${i}`);
}

/** Sink for lookup results, so the optimiser cannot drop the lookups. */
let sink = 0;

function oursChunk(ring: HashRing, keys: readonly string[]): () => number {
  let position = 0;
  return () => {
    let hits = 0;
    const end = position + CHUNK;
    for (let i = position; i < end; i++) hits += ring.locate(keys[i])!.length;
    position = end % keys.length;
    sink += hits;
    return CHUNK;
  };
}

function npmChunk(ring: HashRingNpm, keys: readonly string[]): () => number {
  let position = 0;
  return () => {
    let hits = 0;
    const end = position + CHUNK;
    for (let i = position; i < end; i++) hits += ring.get(keys[i])!.length;
    position = end % keys.length;
    sink += hits;
    return CHUNK;
  };
}

interface MemoryFigure {
  slices: number;
  /** Measured off-heap bytes (typed array backing stores) per slice. */
  externalPerSlice: number;
  /** Measured JS heap bytes per ring (names, index map, options: independent of S). */
  heapPerRing: number;
}

export function exposeGc(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

function measureMemory(nodes: Record<string, number>, ejected = false): MemoryFigure {
  const gc = exposeGc();
  gc();
  gc();
  const before = process.memoryUsage();
  const rings: HashRing[] = [];
  for (let i = 0; i < MEMORY_RINGS; i++) {
    const ring = new HashRing(nodes);
    rings.push(ring);
    if (ejected) rings.push(ring.without('node1'));
  }
  gc();
  gc();
  const after = process.memoryUsage();
  const slices = rings[0].points;
  sink += rings.length;
  return {
    slices,
    externalPerSlice: (after.arrayBuffers - before.arrayBuffers) / (MEMORY_RINGS * slices),
    // Per configuration: with `ejected`, a ring and the one derived from it.
    heapPerRing: (after.heapUsed - before.heapUsed) / MEMORY_RINGS,
  };
}

export async function benchLocate(config: BenchConfig): Promise<SectionResult> {
  // ioredis changes V8's string performance for the whole process, and the package always
  // loads it: measure under the same conditions.
  await import('ioredis');
  const keys = userKeys();
  const rounds = config.quick ? 3 : 5;
  const oursMs = config.quick ? 100 : 300;
  const npmMs = config.quick ? 100 : 250;

  const sizes = [3, 10];
  const contenders = sizes.flatMap((n) => {
    const nodes = equalNodes(n);
    const ours = new HashRing(nodes);
    const npm = new HashRingNpm(nodes);
    return [
      { n, who: 'ours' as const, chunk: oursChunk(ours, keys), ms: oursMs },
      { n, who: 'npm' as const, chunk: npmChunk(npm, keys), ms: npmMs },
    ];
  });
  // Warm up: let both get optimised before anything is timed.
  for (const c of contenders) syncOpsPerSecond(c.chunk, 150);
  const samples = contenders.map(() => [] as number[]);
  for (let round = 0; round < rounds; round++) {
    contenders.forEach((c, i) => samples[i].push(syncOpsPerSecond(c.chunk, c.ms)));
  }

  const rows: Row[] = [];
  for (const n of sizes) {
    const oursSamples = samples[contenders.findIndex((c) => c.n === n && c.who === 'ours')];
    const npmSamples = samples[contenders.findIndex((c) => c.n === n && c.who === 'npm')];
    const ours = median(oursSamples);
    const npm = median(npmSamples);
    const ratio = pairedRatio(oursSamples, npmSamples);
    rows.push({
      item: 1,
      what: `HashRing.locate, ${n} nodes, keys user:<i>`,
      ours: rate(ours, 'lookups/s'),
      baseline: `hashring 3.2.0 get(): ${rate(npm, 'lookups/s')}`,
      ratio: times(ratio),
      goal: '≥ 15× and ≥ 5 M/s',
      verdict: verdict(ratio >= 15 && ours >= 5e6),
    });
  }

  for (const n of sizes) {
    const memory = measureMemory(equalNodes(n));
    rows.push({
      item: 1,
      what: `ring memory, ${n} nodes (S = ${memory.slices})`,
      ours:
        `${sig(memory.externalPerSlice)} B/slice measured (S × 2 B = ${memory.slices * 2} B by ` +
        `construction) + ${Math.round(memory.heapPerRing)} B/ring of JS objects`,
      baseline: `Δ process.memoryUsage() over ${MEMORY_RINGS} rings`,
      ratio: '',
      goal: 'O(S), ≤ 6 B/slice',
      verdict: verdict(memory.externalPerSlice <= 6.5),
    });
  }
  // An ejection adds the alive ring's owners (2 B/slice) and, once per configuration, the
  // slices grouped by owner that make later ejections cheap (4 B/slice).
  const ejected = measureMemory(equalNodes(10), true);
  rows.push({
    item: 1,
    what: `ring memory, 10 nodes (S = ${ejected.slices}), one ejected: total + alive ring`,
    ours:
      `${sig(ejected.externalPerSlice)} B/slice measured (S × (2+4+2) B = ${ejected.slices * 8} B ` +
      `by construction) + ${Math.round(ejected.heapPerRing)} B of JS objects`,
    baseline: `Δ process.memoryUsage() over ${MEMORY_RINGS} pairs`,
    ratio: '',
    goal: 'O(S), ≤ 8 B/slice',
    verdict: verdict(ejected.externalPerSlice <= 8.5),
  });
  if (sink === -1) console.log(sink);
  return { rows };
}
