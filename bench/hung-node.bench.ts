/**
 * What a hung node costs once it is ejected: 50/50 GET/SET of 100-byte strings over 10 000
 * keys, 64 in flight, with the default options (retryRatio 0.01, heartbeat every second), on
 * two fleets of 3 nodes: one healthy, one with a node SIGSTOPped and ejected. Interleaved
 * rounds; the ratio is the degraded fleet's throughput over the healthy one's. Rediscovery
 * probes must not hold the requests that start them: the hung node would otherwise cost a
 * whole commandTimeout to one request in a hundred.
 */
import { RingDict } from '../lib/index.js';
import { interleavedRounds, median, medianLoad, pairedRatio, type BenchConfig } from './measure.js';
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
import { redisFleet, ringNodes } from './servers.js';

const KEY_SPACE = 10_000;
const VALUE = 'v'.repeat(100);
const IN_FLIGHT = 64;
/** The goal: a hung node, once ejected, costs at most 30 % of the throughput. */
const GOAL = 0.7;

function loadOn(dict: RingDict<string>): (random: number) => Promise<unknown> {
  const keys = Array.from({ length: KEY_SPACE }, (_, i) => `hung:key:${i}`);
  return (r) => {
    const key = keys[(r >>> 1) % KEY_SPACE];
    return r & 1 ? dict.get(key) : dict.set(key, VALUE);
  };
}

export async function benchHungNode(config: BenchConfig): Promise<SectionResult> {
  const warmupMs = config.quick ? 200 : 500;
  const roundMs = config.quick ? 150 : 450;
  const rounds = 7;
  const healthyFleet = await redisFleet(3);
  const hungFleet = await redisFleet(3);
  const healthy = new RingDict<string>({ nodes: ringNodes(healthyFleet.value), codec: 'string' });
  const degraded = new RingDict<string>({ nodes: ringNodes(hungFleet.value), codec: 'string' });
  const hung = hungFleet.value.servers[1];
  try {
    await Promise.all([healthy.connect(), degraded.connect()]);
    hung.hang();
    // Ejected by the requests that time out on it.
    const load = loadOn(degraded);
    while (degraded.aliveHash.size === 3) await load(Math.floor(Math.random() * 2 ** 32));
    const samples = await interleavedRounds(
      [loadOn(healthy), load],
      IN_FLIGHT,
      rounds,
      roundMs,
      warmupMs,
    );
    console.log(
      textTable(LOAD_DETAIL_HEADER, [
        loadDetail(IN_FLIGHT, '3 healthy nodes', samples[0], medianLoad(samples[0])),
        loadDetail(IN_FLIGHT, '1 of 3 hung, ejected', samples[1], medianLoad(samples[1])),
      ]),
    );
    const base = samples[0].map((s) => s.perSecond);
    const ours = samples[1].map((s) => s.perSecond);
    const ratio = pairedRatio(ours, base);
    const rows: Row[] = [
      {
        item: 4,
        what: `RingDict with 1 of 3 nodes hung and ejected, ${IN_FLIGHT} in flight`,
        ours: rate(median(ours)),
        baseline: `the same, 3 healthy nodes: ${rate(median(base))}`,
        ratio: times(ratio),
        goal: `≥ ${GOAL}×`,
        verdict: verdict(ratio >= GOAL),
      },
    ];
    return { rows };
  } finally {
    if (hung.isHung) hung.resume();
    await Promise.all([healthy.close(), degraded.close()]);
    await Promise.all([healthyFleet.stop(), hungFleet.stop()]);
  }
}
