/** Timing helpers shared by the benchmark sections. */
import { performance } from 'node:perf_hooks';

/** Run-wide settings from the command line. */
export interface BenchConfig {
  /** Shorter measurements (about a third), for a smoke run. */
  quick: boolean;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The 99th percentile (nearest rank). */
export function p99(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)];
}

/**
 * The median of the per-round ratios `a[r] / b[r]`. Rounds are interleaved, so a and b of
 * one round ran back to back under the same background load: their ratio is steadier on a
 * noisy machine than the ratio of the two medians.
 */
export function pairedRatio(a: readonly number[], b: readonly number[]): number {
  return median(a.map((value, round) => value / b[round]));
}

/**
 * Calls `chunk` (which does some operations and returns how many) until `minMs` have
 * passed; answers operations per second.
 */
export function syncOpsPerSecond(chunk: () => number, minMs: number): number {
  let ops = 0;
  const start = performance.now();
  let elapsed = 0;
  do {
    ops += chunk();
    elapsed = performance.now() - start;
  } while (elapsed < minMs);
  return (ops * 1000) / elapsed;
}

/** Mean time of one call of `fn` in microseconds, calling it for at least `minMs`. */
export function microsPerCall(fn: () => unknown, minMs: number): number {
  let calls = 0;
  const start = performance.now();
  let elapsed = 0;
  do {
    for (let i = 0; i < 8; i++) fn();
    calls += 8;
    elapsed = performance.now() - start;
  } while (elapsed < minMs);
  return (elapsed * 1000) / calls;
}

/** A small deterministic PRNG (xorshift32), so every contender sees the same key sequence. */
export function xorshift32(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) as number;
  };
}

/** What a closed-loop run measured. */
export interface LoadResult {
  /** Completed operations per second. */
  perSecond: number;
  /** CPU time of this (client) process per operation, in µs: what the client costs. */
  cpuMicrosPerOp: number;
}

/**
 * Keeps `concurrency` operations in flight for `durationMs` (each worker awaits its
 * previous operation before starting the next). `op` receives a random 32-bit number to
 * pick its key and kind from.
 */
export async function closedLoop(
  op: (random: number) => Promise<unknown>,
  concurrency: number,
  durationMs: number,
): Promise<LoadResult> {
  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  const deadline = start + durationMs;
  const worker = async (seed: number): Promise<number> => {
    const next = xorshift32(seed);
    let done = 0;
    for (;;) {
      // Checking the clock every 8 operations keeps its cost out of the figure.
      for (let i = 0; i < 8; i++) {
        await op(next());
        done++;
      }
      if (performance.now() >= deadline) return done;
    }
  };
  const counts = await Promise.all(
    Array.from({ length: concurrency }, (_, i) => worker(0x1234567 + i * 7919)),
  );
  const elapsed = performance.now() - start;
  const cpu = process.cpuUsage(cpuBefore);
  const ops = counts.reduce((a, b) => a + b, 0);
  return { perSecond: (ops * 1000) / elapsed, cpuMicrosPerOp: (cpu.user + cpu.system) / ops };
}

/**
 * Runs every contender for `rounds` rounds of `roundMs`, interleaved (A B C, A B C, …),
 * after a warm-up of `warmupMs` each, and answers each contender's rounds.
 */
export async function interleavedRounds(
  ops: readonly ((random: number) => Promise<unknown>)[],
  concurrency: number,
  rounds: number,
  roundMs: number,
  warmupMs: number,
): Promise<LoadResult[][]> {
  for (const op of ops) await closedLoop(op, concurrency, warmupMs);
  const samples = ops.map(() => [] as LoadResult[]);
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < ops.length; i++) {
      samples[i].push(await closedLoop(ops[i], concurrency, roundMs));
    }
  }
  return samples;
}

/** The median throughput and the median CPU per operation of some rounds. */
export function medianLoad(samples: readonly LoadResult[]): LoadResult {
  return {
    perSecond: median(samples.map((s) => s.perSecond)),
    cpuMicrosPerOp: median(samples.map((s) => s.cpuMicrosPerOp)),
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
