/**
 * Section 14: what the OpenTelemetry metrics cost `RingDict.get`, over 3 local nodes, with
 * 100-byte JSON values, at 1 and 64 in flight, interleaved:
 *
 * - with no SDK registered (the default: nothing is recorded) against a dict built with
 *   `metrics: false`, the metering code turned off (goal: ≤ 2 % cost);
 * - with an SDK recording (sdk-metrics' MeterProvider, cumulative, collected once at the
 *   end as a Prometheus scrape would) against no SDK: the cost per call.
 *
 * And heap bytes allocated per `get` (1 in flight, windows without GC) in the three cases.
 */
import { metrics } from '@opentelemetry/api';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { RingDict } from '../lib/index.js';
import { bytesPerCall } from './allocation.bench.js';
import {
  closedLoop,
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
  sig,
  textTable,
  times,
  verdict,
  type Row,
  type SectionResult,
} from './report.js';
import { redisFleet, ringNodes } from './servers.js';
import { jsonObjectOf } from './throughput.bench.js';

const KEY_SPACE = 10_000;
/** With no SDK, get may cost at most this much over the metering code turned off. */
const NO_SDK_GOAL = 0.98;

/** Reads when asked, as a pull exporter (Prometheus) does on a scrape. */
class ScrapeReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

export async function benchMetrics(config: BenchConfig): Promise<SectionResult> {
  const roundMs = config.quick ? 200 : 400;
  const rounds = config.quick ? 6 : 16;
  const fleet = await redisFleet(3);
  const nodes = ringNodes(fleet.value);
  const reader = new ScrapeReader();
  const provider = new MeterProvider({ readers: [reader] });
  // Built before the SDK is registered: they never record.
  const off = new RingDict<unknown>({ nodes, prefix: 'm:', metrics: false });
  const noSdk = new RingDict<unknown>({ nodes, prefix: 'm:' });
  metrics.setGlobalMeterProvider(provider);
  const sdk = new RingDict<unknown>({ nodes, prefix: 'm:', name: 'bench' });
  try {
    const keys = Array.from({ length: KEY_SPACE }, (_, i) => `m${i}`);
    const value = jsonObjectOf(100);
    for (let i = 0; i < KEY_SPACE; i += 500) {
      await Promise.all(keys.slice(i, i + 500).map((key) => off.set(key, value)));
    }
    const get = (dict: RingDict<unknown>) => (r: number) => dict.get(keys[r % KEY_SPACE]);
    const rows: Row[] = [];
    const detail: string[][] = [];
    for (const inFlight of [1, 64]) {
      const [o, n, s] = await alternatingRounds(
        [get(off), get(noSdk), get(sdk)],
        inFlight,
        rounds,
        roundMs,
      );
      detail.push(loadDetail(inFlight, 'metrics: false', o, medianLoad(o)));
      detail.push(loadDetail(inFlight, 'no SDK', n, medianLoad(n)));
      detail.push(loadDetail(inFlight, 'SDK recording', s, medianLoad(s)));
      rows.push(...loadRows(inFlight, o, n, s));
    }
    console.log(textTable(LOAD_DETAIL_HEADER, detail));
    rows.push(await allocationRow([off, noSdk, sdk], keys, config));
    // The SDK did record: every get of the measured dict is counted.
    const { resourceMetrics } = await reader.collect();
    const counted = resourceMetrics.scopeMetrics.some((scope) =>
      scope.metrics.some((m) => m.descriptor.name === 'ring_redis.operations'),
    );
    if (!counted) throw new Error('the SDK recorded nothing: the measurement is void');
    return { rows };
  } finally {
    await Promise.all([off, noSdk, sdk].map((dict) => dict.close()));
    metrics.disable();
    await provider.shutdown();
    await fleet.stop();
  }
}

/**
 * `interleavedRounds`, with the order of the contenders reversed every other round: at 1 in
 * flight on a busy machine the place in a round shows more than a field test on the path.
 */
async function alternatingRounds(
  ops: readonly ((random: number) => Promise<unknown>)[],
  concurrency: number,
  rounds: number,
  roundMs: number,
): Promise<LoadResult[][]> {
  for (const op of ops) await closedLoop(op, concurrency, roundMs);
  const samples = ops.map(() => [] as LoadResult[]);
  for (let round = 0; round < rounds; round++) {
    const order = ops.map((_, i) => (round % 2 === 0 ? i : ops.length - 1 - i));
    for (const i of order) samples[i].push(await closedLoop(ops[i], concurrency, roundMs));
  }
  return samples;
}

function loadRows(
  inFlight: number,
  off: LoadResult[],
  noSdk: LoadResult[],
  sdk: LoadResult[],
): Row[] {
  const perSecond = (samples: LoadResult[]) => samples.map((x) => x.perSecond);
  const noSdkRatio = pairedRatio(perSecond(noSdk), perSecond(off));
  const sdkRatio = pairedRatio(perSecond(sdk), perSecond(noSdk));
  // What recording adds to one call: the paired difference of client CPU per operation.
  const cpu = median(sdk.map((x, i) => x.cpuMicrosPerOp - noSdk[i].cpuMicrosPerOp));
  const line = (samples: LoadResult[]) =>
    `${rate(medianLoad(samples).perSecond)}, ${sig(medianLoad(samples).cpuMicrosPerOp)} µs CPU/op`;
  return [
    {
      item: 14,
      what: `RingDict.get, no SDK registered, ${inFlight} in flight`,
      ours: line(noSdk),
      baseline: `metrics: false: ${line(off)}`,
      ratio: times(noSdkRatio),
      goal: `≥ ${NO_SDK_GOAL}× (≤ 2 % cost)`,
      verdict: verdict(noSdkRatio >= NO_SDK_GOAL),
    },
    {
      item: 14,
      what: `RingDict.get, SDK recording, ${inFlight} in flight`,
      ours: line(sdk),
      baseline: `no SDK: ${line(noSdk)}`,
      ratio: `${times(sdkRatio)}; +${sig(cpu)} µs CPU/call`,
      goal: 'the cost of recording, per call',
      verdict: 'info',
    },
  ];
}

/** Heap bytes per get: metrics off, no SDK, SDK recording. */
async function allocationRow(
  [off, noSdk, sdk]: RingDict<unknown>[],
  keys: string[],
  config: BenchConfig,
): Promise<Row> {
  const windows = config.quick ? 9 : 25;
  const window = { calls: 100, sync: false };
  const ops = [off, noSdk, sdk].map((dict) => (i: number) => dict.get(keys[i % KEY_SPACE]));
  for (let round = 0; round < 3; round++) {
    for (const op of ops) await bytesPerCall(op, window, 3);
  }
  const bytes: number[] = [];
  for (const op of ops) bytes.push(await bytesPerCall(op, window, windows));
  return {
    item: 14,
    what: 'heap allocated per RingDict.get, 1 in flight: no SDK / SDK recording',
    ours: `${sig(bytes[1])} B / ${sig(bytes[2])} B`,
    baseline: `metrics: false: ${sig(bytes[0])} B`,
    ratio: `${bytes[1] - bytes[0] >= 0 ? '+' : '−'}${sig(Math.abs(bytes[1] - bytes[0]))} B / +${sig(bytes[2] - bytes[0])} B`,
    goal: 'no SDK: nothing more',
    verdict: 'info',
  };
}
