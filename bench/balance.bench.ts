/**
 * Goal 3: the worst node-share deviation over 100 000 `user:<i>` keys, default settings,
 * for 2–10 equal nodes and 1:2:3 capacities (also repeated over 6 and 9 nodes), next to
 * the `hashring` npm package's worst on the same node sets. Then over 1 M keys, for 2–10
 * equal nodes and 15 sizes from 11 to 100 (those where the slice count doubles among them;
 * 1 M lookups take about 0.3 s), `hashring` at 10, 50 and 100 nodes (its lookups are 25×
 * slower).
 *
 * Deviation of a node = |keys it got / keys its capacity share promises − 1|; the worst
 * over the nodes of a set is reported.
 */
import HashRingNpm from 'hashring';
import { HashRing } from '../lib/index.js';
import { equalNodes, userKeys } from './hash-ring.bench.js';
import type { BenchConfig } from './measure.js';
import { percent, textTable, times, verdict, type Row, type SectionResult } from './report.js';

const KEYS = 100_000;
const GOAL = 0.03;
const MILLION = 1_000_000;
/** The goal past 10 nodes, where 1 M keys give each node only 10 000–90 000. */
const GOAL_LARGE = 0.05;
const NPM_SIZES = [10, 50, 100];
/** Node counts measured over 1 M keys: 8192 slices up to 40 nodes, 16384 up to 81, then 32768. */
const MILLION_SIZES = [2, 3, 4, 5, 6, 7, 8, 9, 10].concat([
  11, 12, 16, 20, 25, 32, 40, 41, 50, 64, 75, 81, 82, 90, 100,
]);

interface NodeSet {
  label: string;
  nodes: Record<string, number>;
}

function weighted123(groups: number): Record<string, number> {
  const nodes: Record<string, number> = {};
  for (let g = 0; g < groups; g++) for (let w = 1; w <= 3; w++) nodes[`node${g * 3 + w - 1}`] = w;
  return nodes;
}

function worstDeviation(
  nodes: Record<string, number>,
  keys: readonly string[],
  locate: (key: string) => string | undefined,
): { deviation: number; node: string } {
  // One slot per node (a key located nowhere counts against no node): a Map lookup per
  // key, no Map write, so 1 M keys stay cheap.
  const slot = new Map(Object.keys(nodes).map((name, i) => [name, i]));
  const counts = new Float64Array(slot.size + 1);
  for (const key of keys) counts[slot.get(locate(key) ?? '') ?? slot.size]++;
  const total = Object.values(nodes).reduce((a, b) => a + b, 0);
  let worst = { deviation: 0, node: '' };
  for (const [name, capacity] of Object.entries(nodes)) {
    const expected = (keys.length * capacity) / total;
    const deviation = Math.abs(counts[slot.get(name)!] / expected - 1);
    if (deviation > worst.deviation) worst = { deviation, node: name };
  }
  return worst;
}

export async function benchBalance(_config: BenchConfig): Promise<SectionResult> {
  await import('ioredis');
  const keys = userKeys(KEYS);
  const sets: NodeSet[] = [];
  for (let n = 2; n <= 10; n++) sets.push({ label: `${n} equal nodes`, nodes: equalNodes(n) });
  sets.push({ label: '3 nodes 1:2:3', nodes: weighted123(1) });
  sets.push({ label: '6 nodes 1:2:3 ×2', nodes: weighted123(2) });
  sets.push({ label: '9 nodes 1:2:3 ×3', nodes: weighted123(3) });

  const results = sets.map((set) => {
    const ours = new HashRing(set.nodes);
    const npm = new HashRingNpm(set.nodes);
    return {
      set,
      slices: ours.points,
      ours: worstDeviation(set.nodes, keys, (k) => ours.locate(k)),
      npm: worstDeviation(set.nodes, keys, (k) => npm.get(k)),
    };
  });

  console.log(
    textTable(
      ['node set', 'S', 'ours worst', 'hashring worst', 'goal ≤ 3 %'],
      results.map((r) => [
        r.set.label,
        String(r.slices),
        `${percent(r.ours.deviation)} (${r.ours.node})`,
        `${percent(r.npm.deviation)} (${r.npm.node})`,
        verdict(r.ours.deviation <= GOAL),
      ]),
    ),
  );

  const row = (label: string, group: typeof results): Row => {
    const worstOurs = group.reduce((a, r) => (r.ours.deviation > a.ours.deviation ? r : a));
    const npmValues = group.map((r) => r.npm.deviation);
    const npmMin = Math.min(...npmValues);
    const npmMax = Math.max(...npmValues);
    const range = npmMin === npmMax ? percent(npmMax) : `${percent(npmMin)} – ${percent(npmMax)}`;
    return {
      item: 3,
      what: `balance, ${label}, ${KEYS / 1000}k keys`,
      ours: `worst ${percent(worstOurs.ours.deviation)} (${worstOurs.set.label})`,
      baseline: `hashring worst ${range}`,
      ratio: `${times(npmMax / worstOurs.ours.deviation)} less`,
      goal: '≤ 3 %',
      verdict: verdict(worstOurs.ours.deviation <= GOAL),
    };
  };
  return {
    rows: [
      row('2–10 equal nodes', results.slice(0, 9)),
      row('1:2:3 capacities (3, 6, 9 nodes)', results.slice(9)),
      ...millionKeyRows(),
    ],
  };
}

/** Worst deviation over 1 M keys at MILLION_SIZES: one row for 2–10 nodes, one for 11–100. */
function millionKeyRows(): Row[] {
  const keys = userKeys(MILLION);
  const worst = [
    { deviation: 0, n: 0 },
    { deviation: 0, n: 0 },
  ];
  const line: string[] = [];
  for (const n of MILLION_SIZES) {
    const ring = new HashRing(equalNodes(n));
    const { deviation } = worstDeviation(equalNodes(n), keys, (k) => ring.locate(k));
    const range = worst[n <= 10 ? 0 : 1];
    if (deviation > range.deviation) [range.deviation, range.n] = [deviation, n];
    line.push(`${n}: ${percent(deviation)}`);
  }
  const npm = NPM_SIZES.map((n) => {
    const ring = new HashRingNpm(equalNodes(n));
    return worstDeviation(equalNodes(n), keys, (k) => ring.get(k)).deviation;
  });
  console.log(`1 M keys, ours worst by node count: ${line.join(', ')}`);
  const npmAt = (n: number) => npm[NPM_SIZES.indexOf(n)];
  return [
    {
      item: 3,
      what: 'balance, 2–10 equal nodes, 1 M keys',
      ours: `worst ${percent(worst[0].deviation)} (${worst[0].n} nodes)`,
      baseline: `hashring worst at 10 nodes: ${percent(npmAt(10))}`,
      ratio: `${times(npmAt(10) / worst[0].deviation)} less`,
      goal: '≤ 3 %',
      verdict: verdict(worst[0].deviation <= GOAL),
    },
    {
      item: 3,
      what: `balance, 11–100 equal nodes (${MILLION_SIZES.length - 9} sizes), 1 M keys`,
      ours: `worst ${percent(worst[1].deviation)} (${worst[1].n} nodes)`,
      baseline: `hashring worst at 50 / 100 nodes: ${percent(npmAt(50))} / ${percent(npmAt(100))}`,
      ratio: `${times(Math.max(npmAt(50), npmAt(100)) / worst[1].deviation)} less`,
      goal: '≤ 5 %',
      verdict: verdict(worst[1].deviation <= GOAL_LARGE),
    },
  ];
}
