/**
 * Goal 3: the worst node-share deviation over 100 000 `user:<i>` keys, default settings,
 * for 2–10 equal nodes and 1:2:3 capacities (also repeated over 6 and 9 nodes), next to
 * the `hashring` npm package's worst on the same node sets.
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
  const counts = new Map<string, number>();
  for (const key of keys) {
    const node = locate(key) ?? '(none)';
    counts.set(node, (counts.get(node) ?? 0) + 1);
  }
  const total = Object.values(nodes).reduce((a, b) => a + b, 0);
  let worst = { deviation: 0, node: '' };
  for (const [name, capacity] of Object.entries(nodes)) {
    const expected = (keys.length * capacity) / total;
    const deviation = Math.abs((counts.get(name) ?? 0) / expected - 1);
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
    ],
  };
}
