/**
 * Goal 2: eject / rediscover rebuild time — `ring.without(x)` and `.with(x, c)` — at 3, 10
 * and 100 nodes (S = 2003, 2003, 20011 slices by default), normalised by S and S·log₂S, and
 * the growth from the smallest to the largest S next to what S log S would allow.
 *
 * Rediscovery is measured while another node stays ejected (the alive ring is rebuilt by
 * filtering); when the last ejected node comes back the total ring is reused as it is.
 */
import { HashRing } from '../lib/index.js';
import { equalNodes, exposeGc } from './hash-ring.bench.js';
import { median, microsPerCall, type BenchConfig } from './measure.js';
import { sig, textTable, type Row, type SectionResult } from './report.js';

interface Figure {
  nodes: number;
  slices: number;
  without: number;
  with: number;
  withLast: number;
  build: number;
}

let sink = 0;

function measure(nodeCount: number, ms: number, rounds: number, gc: () => void): Figure {
  const nodes = equalNodes(nodeCount);
  const ring = new HashRing(nodes);
  // node1 is rediscovered while node2 stays out.
  const twoOut = ring.without('node1').without('node2');
  const oneOut = ring.without('node1');
  const samples = { without: [] as number[], with: [] as number[], withLast: [] as number[] };
  const build: number[] = [];
  for (let round = 0; round < rounds; round++) {
    gc();
    samples.without.push(microsPerCall(() => (sink += ring.without('node1').points), ms));
    gc();
    samples.with.push(microsPerCall(() => (sink += twoOut.with('node1', 1).points), ms));
    samples.withLast.push(microsPerCall(() => (sink += oneOut.with('node1', 1).points), ms / 4));
    gc();
    // A build takes milliseconds, and the first few after a full collection run while V8
    // optimises its code again: a longer window keeps that from being most of the figure.
    build.push(microsPerCall(() => (sink += new HashRing(nodes).points), ms * 4));
  }
  return {
    nodes: nodeCount,
    slices: ring.points,
    without: median(samples.without),
    with: median(samples.with),
    withLast: median(samples.withLast),
    build: median(build),
  };
}

const nsPer = (micros: number, units: number) => (micros * 1000) / units;
const sLogS = (s: number) => s * Math.log2(s);

export function benchRebuild(config: BenchConfig): SectionResult {
  const ms = config.quick ? 40 : 80;
  const rounds = 3;
  const gc = exposeGc();
  // Warm-up, so the first size is not timed while still interpreted.
  measure(10, 200, 1, gc);
  const figures = [3, 10, 100].map((n) => measure(n, ms, rounds, gc));

  console.log(
    textTable(
      ['nodes', 'S', 'op', 'µs/op', 'ns/S', 'ns/(S·log₂S)'],
      figures.flatMap((f) =>
        (
          [
            ['without(x)', f.without],
            ['with(x, c), another node out', f.with],
            ['with(x, c), the last one out', f.withLast],
            ['new HashRing()', f.build],
          ] as const
        ).map(([op, micros]) => [
          String(f.nodes),
          String(f.slices),
          op,
          sig(micros),
          sig(nsPer(micros, f.slices)),
          sig(nsPer(micros, sLogS(f.slices))),
        ]),
      ),
    ),
  );

  // Growth from the smallest S (3 and 10 nodes share it: their mean) to the largest.
  const small = figures.filter((f) => f.slices === figures[0].slices);
  const large = figures[figures.length - 1];
  const sGrowth = large.slices / small[0].slices;
  const sLogSGrowth = sLogS(large.slices) / sLogS(small[0].slices);
  const growthRow = (what: string, pick: (f: Figure) => number, goal: boolean, extra = ''): Row => {
    const smallMean = small.reduce((a, f) => a + pick(f), 0) / small.length;
    const growth = pick(large) / smallMean;
    return {
      item: 2,
      what,
      ours: figures.map((f) => `${f.nodes} nodes ${sig(pick(f))} µs`).join(', ') + extra,
      baseline: `S = ${figures.map((f) => f.slices).join(' / ')}; ${sig(nsPer(pick(large), large.slices))} ns per slice at S = ${large.slices}`,
      ratio: `time ×${sig(growth)} for S ×${sig(sGrowth)} (S log S: ×${sig(sLogSGrowth)})`,
      goal: goal ? 'grows ≤ S log S' : 'not a goal (initial build)',
      verdict: goal ? (growth <= sLogSGrowth ? 'PASS' : 'MISS') : 'info',
    };
  };
  if (sink === -1) console.log(sink);
  return {
    rows: [
      growthRow('eject: ring.without(x)', (f) => f.without, true),
      growthRow(
        'rediscover: ring.with(x, c)',
        (f) => f.with,
        true,
        ` (${figures.map((f) => sig(f.withLast)).join(' / ')} µs when x was the last node out)`,
      ),
      growthRow('(for scale) new HashRing(nodes)', (f) => f.build, false),
    ],
  };
}
