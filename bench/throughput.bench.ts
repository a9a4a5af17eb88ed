/**
 * Goal 4: throughput, 50/50 GET/SET of 100-byte values over a 10 000-key space, at 64 and
 * at 1 in flight: RingDict over 3 local nodes vs raw ioredis to one node vs ioredis through
 * nutcracker (ketama, the same 3 nodes). Contenders are warmed up, then measured
 * interleaved (A B C D, A B C D, …) and the median round is reported.
 */
import type { Redis } from 'ioredis';
import { RingDict } from '../lib/index.js';
import {
  interleavedRounds,
  median,
  medianLoad,
  pairedRatio,
  type BenchConfig,
  type LoadResult,
} from './measure.js';
import {
  LOAD_DETAIL_HEADER,
  loadDetail,
  rate,
  textTable,
  times,
  verdict,
  type Row,
  type SectionResult,
} from './report.js';
import {
  ioredisClient,
  nutcrackerFor,
  redisFleet,
  ringNodes,
  THROUGH_NUTCRACKER,
  type Started,
} from './servers.js';

const KEY_SPACE = 10_000;
const STRING_VALUE = 'v'.repeat(100);
/** A JSON object that serialises to exactly 100 bytes. */
const OBJECT_VALUE = jsonObjectOf(100);

export function jsonObjectOf(bytes: number): { id: number; name: string; active: boolean } {
  const value = { id: 12345, name: '', active: true };
  value.name = 'n'.repeat(bytes - JSON.stringify(value).length);
  return value;
}

interface Contender {
  name: string;
  op(random: number): Promise<unknown>;
  prefill(): Promise<void>;
}

function keysWith(prefix: string): string[] {
  return Array.from({ length: KEY_SPACE }, (_, i) => `${prefix}key:${i}`);
}

function ringContender<V>(name: string, dict: RingDict<V>, prefix: string, value: V): Contender {
  const keys = keysWith(prefix);
  return {
    name,
    op: (r) => {
      const key = keys[(r >>> 1) % KEY_SPACE];
      return r & 1 ? dict.get(key) : dict.set(key, value);
    },
    prefill: async () => {
      for (let i = 0; i < KEY_SPACE; i += 1000) {
        await dict.setMany(keys.slice(i, i + 1000).map((k) => [k, value] as [string, V]));
      }
    },
  };
}

function ioredisContender(name: string, client: Redis, prefix: string): Contender {
  const keys = keysWith(prefix);
  return {
    name,
    op: (r) => {
      const key = keys[(r >>> 1) % KEY_SPACE];
      return r & 1 ? client.get(key) : client.set(key, STRING_VALUE);
    },
    prefill: async () => {
      for (let i = 0; i < KEY_SPACE; i += 1000) {
        const pipeline = client.pipeline();
        for (const key of keys.slice(i, i + 1000)) pipeline.set(key, STRING_VALUE);
        await pipeline.exec();
      }
    },
  };
}

export async function benchThroughput(config: BenchConfig): Promise<SectionResult> {
  const warmupMs = config.quick ? 200 : 500;
  // ~3 s per contender and load, in 7 interleaved rounds: the median shrugs off noisy ones.
  const roundMs = config.quick ? 150 : 450;
  const rounds = 7;
  const stops: (() => Promise<void>)[] = [];
  const keep = <T>(started: Started<T>): T => {
    stops.push(started.stop);
    return started.value;
  };
  try {
    const fleet = keep(await redisFleet(3));
    const proxy = keep(await nutcrackerFor(fleet));
    const nodes = ringNodes(fleet);
    const ringString = new RingDict<string>({ nodes, codec: 'string' });
    const ringJson = new RingDict<typeof OBJECT_VALUE>({ nodes, codec: 'json' });
    stops.push(
      () => ringString.close(),
      () => ringJson.close(),
    );
    const raw = keep(await ioredisClient(fleet.servers[0].port));
    const viaProxy = keep(await ioredisClient(proxy.port, THROUGH_NUTCRACKER));

    const contenders: Contender[] = [
      ringContender('RingDict string', ringString, 'rs:', STRING_VALUE),
      ringContender('RingDict json', ringJson, 'rj:', OBJECT_VALUE),
      ioredisContender('raw ioredis', raw, 'rw:'),
      ioredisContender('nutcracker', viaProxy, 'nc:'),
    ];
    for (const c of contenders) await c.prefill();

    const results = new Map<string, LoadResult[]>();
    const detail: string[][] = [];
    for (const inFlight of [64, 1]) {
      const ops = contenders.map((c) => c.op);
      const samples = await interleavedRounds(ops, inFlight, rounds, roundMs, warmupMs);
      contenders.forEach((c, i) => {
        const m = medianLoad(samples[i]);
        results.set(`${c.name}@${inFlight}`, samples[i]);
        detail.push(loadDetail(inFlight, c.name, samples[i], m));
      });
    }
    console.log(textTable(LOAD_DETAIL_HEADER, detail));

    const get = (name: string, inFlight: number) =>
      results.get(`${name}@${inFlight}`)!.map((s) => s.perSecond);
    const rows: Row[] = [];
    const compare = (
      name: string,
      baseline: 'raw ioredis' | 'nutcracker',
      inFlight: number,
      goal?: number,
    ) => {
      const ours = get(name, inFlight);
      const base = get(baseline, inFlight);
      const ratio = pairedRatio(ours, base);
      const what =
        baseline === 'raw ioredis' ? 'raw ioredis, 1 node' : 'nutcracker, ketama, 3 nodes';
      rows.push({
        item: 4,
        what: `${name} (3 nodes), ${inFlight} in flight`,
        ours: rate(median(ours)),
        baseline: `${what}: ${rate(median(base))}`,
        ratio: times(ratio),
        goal: goal === undefined ? 'info' : `≥ ${goal}×`,
        verdict: goal === undefined ? 'info' : verdict(ratio >= goal),
      });
    };
    compare('RingDict string', 'raw ioredis', 64, 0.95);
    compare('RingDict string', 'nutcracker', 64, 1.3);
    compare('RingDict json', 'raw ioredis', 64);
    compare('RingDict string', 'nutcracker', 1, 1.4);
    compare('RingDict string', 'raw ioredis', 1);
    compare('RingDict json', 'nutcracker', 1);
    return { rows };
  } finally {
    for (const stop of stops.reverse()) await stop();
  }
}
