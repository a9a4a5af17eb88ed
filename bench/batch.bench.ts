/**
 * Goal 5: `getMany` / `setMany` / `deleteMany` of 100 keys vs a loop of 100 awaited single
 * `get` / `set` / `delete`, on RingDict over 3 local nodes. Measured interleaved; medians.
 */
import { performance } from 'node:perf_hooks';
import { RingDict } from '../lib/index.js';
import { median, pairedRatio, type BenchConfig } from './measure.js';
import { rate, sig, textTable, times, verdict, type Row, type SectionResult } from './report.js';
import { redisFleet, ringNodes } from './servers.js';

const BATCH = 100;
const GOAL = 5;

/**
 * Batches per second of `run`, timing only `run` (not `setup`), repeated for at least `ms`
 * of wall time.
 */
async function batchesPerSecond(
  run: () => Promise<unknown>,
  ms: number,
  setup?: () => Promise<unknown>,
): Promise<number> {
  let timed = 0;
  let batches = 0;
  const wallStart = performance.now();
  do {
    if (setup) await setup();
    const start = performance.now();
    await run();
    timed += performance.now() - start;
    batches++;
  } while (performance.now() - wallStart < ms);
  return (batches * 1000) / timed;
}

export async function benchBatch(config: BenchConfig): Promise<SectionResult> {
  const roundMs = config.quick ? 100 : 300;
  const rounds = 5;
  const fleet = await redisFleet(3);
  const dict = new RingDict<string>({ nodes: ringNodes(fleet.value), codec: 'string' });
  try {
    const keys = Array.from({ length: BATCH }, (_, i) => `batch:key:${i}`);
    const value = 'v'.repeat(100);
    const entries = keys.map((k) => [k, value] as [string, string]);
    const refill = () => dict.setMany(entries);

    const pairs = [
      {
        op: 'getMany',
        batch: () => dict.getMany(keys),
        loop: async () => {
          for (const k of keys) await dict.get(k);
        },
      },
      {
        op: 'setMany',
        batch: () => dict.setMany(entries),
        loop: async () => {
          for (const k of keys) await dict.set(k, value);
        },
      },
      {
        op: 'deleteMany',
        setup: refill,
        batch: () => dict.deleteMany(keys),
        loop: async () => {
          for (const k of keys) await dict.delete(k);
        },
      },
    ];
    await refill();
    // Warm-up (also connects the dict).
    for (const p of pairs) {
      await batchesPerSecond(p.batch, 100, p.setup);
      await batchesPerSecond(p.loop, 100, p.setup);
    }
    const samples = pairs.map(() => ({ batch: [] as number[], loop: [] as number[] }));
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < pairs.length; i++) {
        const p = pairs[i];
        samples[i].batch.push(await batchesPerSecond(p.batch, roundMs, p.setup));
        samples[i].loop.push(await batchesPerSecond(p.loop, roundMs, p.setup));
      }
    }
    const detail: string[][] = [];
    const rows: Row[] = pairs.map((p, i) => {
      const batch = median(samples[i].batch);
      const loop = median(samples[i].loop);
      const ratio = pairedRatio(samples[i].batch, samples[i].loop);
      detail.push(
        [p.op, rate(batch, 'batches/s'), samples[i].batch.map((s) => sig(s)).join(' / ')],
        [
          `loop of ${BATCH}`,
          rate(loop, 'batches/s'),
          samples[i].loop.map((s) => sig(s)).join(' / '),
        ],
      );
      return {
        item: 5,
        what: `${p.op} of ${BATCH} keys, 3 nodes`,
        ours: `${rate(batch, 'batches/s')} (${rate(batch * BATCH, 'keys/s')})`,
        baseline: `loop of ${BATCH} awaited ${p.op.replace('Many', '')}: ${rate(loop, 'batches/s')}`,
        ratio: times(ratio),
        goal: `≥ ${GOAL}×`,
        verdict: verdict(ratio >= GOAL),
      };
    });
    console.log(textTable(['operation', 'median', 'rounds (batches/s)'], detail));
    return { rows };
  } finally {
    await dict.close();
    await fleet.stop();
  }
}
