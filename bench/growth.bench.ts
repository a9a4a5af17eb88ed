/**
 * Growth: the share of keys that change node when a configuration of n equal nodes grows
 * to n + 1 (each ring built afresh, as every process would after a restart with the new
 * configuration), against the ideal 1/(n + 1) and against the `hashring` npm package
 * (3.2.0) on the same nodes and keys; then every n from 1 to 100, and the removal of one
 * node of n, for our ring alone.
 *
 * Keys moved = keys whose owner differs between the two rings ÷ keys. The removed node is
 * `node<(37 n + 11) mod n>`, a different position for every n.
 */
import HashRingNpm from 'hashring';
import { HashRing } from '../lib/index.js';
import { equalNodes, userKeys } from './hash-ring.bench.js';
import type { BenchConfig } from './measure.js';
import { percent, sig, textTable, verdict, type Row, type SectionResult } from './report.js';

/** Keys per comparison: the sampling error of a share is under 0.1 pp (one σ). */
const KEYS = 200_000;
/** The promise: at most this much more than the ideal moves (percentage points as a fraction). */
const ALLOWANCE = 0.025;
/** The sizes compared side by side with `hashring`. */
const SIDE_BY_SIDE = [3, 10, 11, 50, 100];

type Locate = (key: string) => string | undefined;

/** Each key's owner. */
function owners(locate: Locate, keys: readonly string[]): (string | undefined)[] {
  return keys.map((key) => locate(key));
}

function movedShare(before: readonly unknown[], after: readonly unknown[]): number {
  let moved = 0;
  for (let i = 0; i < before.length; i++) if (before[i] !== after[i]) moved++;
  return moved / before.length;
}

function ours(n: number): Locate {
  const ring = new HashRing(equalNodes(n));
  return (key) => ring.locate(key);
}

function npm(n: number): Locate {
  const ring = new HashRingNpm(equalNodes(n));
  return (key) => ring.get(key);
}

/** A point over the ideal, as `+0.61 pp` / `−1.20 pp`. */
function pp(excess: number): string {
  return `${excess < 0 ? '−' : '+'}${(Math.abs(excess) * 100).toFixed(2)} pp`;
}

function sideBySide(keys: readonly string[]): Row[] {
  const lines: string[][] = [];
  const rows = SIDE_BY_SIDE.map((n): Row => {
    const ideal = 1 / (n + 1);
    const mine = movedShare(owners(ours(n), keys), owners(ours(n + 1), keys));
    const theirs = movedShare(owners(npm(n), keys), owners(npm(n + 1), keys));
    lines.push([
      `${n} → ${n + 1}`,
      percent(ideal),
      percent(mine),
      pp(mine - ideal),
      percent(theirs),
      pp(theirs - ideal),
    ]);
    return {
      item: 7,
      what: `keys moved growing ${n} → ${n + 1} equal nodes, ${KEYS / 1000}k keys`,
      ours: `${percent(mine)} (ideal ${percent(ideal)}, ${pp(mine - ideal)})`,
      baseline: `hashring 3.2.0: ${percent(theirs)} (${pp(theirs - ideal)})`,
      ratio: `×${sig(mine / ideal)} ideal (hashring ×${sig(theirs / ideal)})`,
      goal: '≤ ideal + 2.5 pp',
      verdict: verdict(mine <= ideal + ALLOWANCE),
    };
  });
  console.log(
    textTable(['growth', 'ideal', 'ours', 'ours − ideal', 'hashring', 'hashring − ideal'], lines),
  );
  return rows;
}

interface Sweep {
  worst: number;
  worstAt: number;
  mean: number;
  /** Worst share of keys that moved between nodes that were neither added nor removed. */
  bystanders: number;
}

/** Every n from 1 to 100 → n + 1, and removing one node of every n from 2 to 100. */
function sweeps(keys: readonly string[]): { growth: Sweep; removal: Sweep } {
  const growth: Sweep = { worst: -1, worstAt: 0, mean: 0, bystanders: 0 };
  const removal: Sweep = { worst: -1, worstAt: 0, mean: 0, bystanders: 0 };
  let before = owners(ours(1), keys);
  for (let n = 1; n <= 100; n++) {
    const after = owners(ours(n + 1), keys);
    record(
      growth,
      n,
      movedShare(before, after) - 1 / (n + 1),
      bystanders(before, after, `node${n}`),
    );
    const nodes = equalNodes(n + 1);
    const gone = `node${(37 * (n + 1) + 11) % (n + 1)}`;
    delete nodes[gone];
    const ring = new HashRing(nodes);
    const removed = owners((key) => ring.locate(key), keys);
    record(
      removal,
      n + 1,
      movedShare(after, removed) - 1 / (n + 1),
      bystanders(after, removed, gone),
    );
    before = after;
  }
  growth.mean /= 100;
  removal.mean /= 100;
  return { growth, removal };
}

function record(sweep: Sweep, n: number, excess: number, bystanders: number): void {
  if (excess > sweep.worst) [sweep.worst, sweep.worstAt] = [excess, n];
  sweep.mean += excess;
  sweep.bystanders = Math.max(sweep.bystanders, bystanders);
}

/** Share of keys that moved from a node other than `changed` to a node other than `changed`. */
function bystanders(
  before: readonly (string | undefined)[],
  after: readonly (string | undefined)[],
  changed: string,
): number {
  let moved = 0;
  for (let i = 0; i < before.length; i++) {
    if (before[i] !== after[i] && before[i] !== changed && after[i] !== changed) moved++;
  }
  return moved / before.length;
}

export async function benchGrowth(_config: BenchConfig): Promise<SectionResult> {
  await import('ioredis');
  const keys = userKeys(KEYS);
  const rows = sideBySide(keys);
  const { growth, removal } = sweeps(keys);
  rows.push(
    {
      item: 7,
      what: `keys moved growing n → n + 1 equal nodes, every n from 1 to 100, ${KEYS / 1000}k keys`,
      ours: `worst ${pp(growth.worst)} over ideal (n = ${growth.worstAt}), mean ${pp(growth.mean)}`,
      baseline: `keys of other nodes moved: at most ${percent(growth.bystanders)}`,
      ratio: '',
      goal: '≤ ideal + 2.5 pp at every n',
      verdict: verdict(growth.worst <= ALLOWANCE),
    },
    {
      item: 7,
      what: `keys moved removing one of n equal nodes, every n from 2 to 101, ${KEYS / 1000}k keys`,
      ours: `worst ${pp(removal.worst)} over ideal (n = ${removal.worstAt}), mean ${pp(removal.mean)}`,
      baseline: `keys of other nodes moved: at most ${percent(removal.bystanders)}`,
      ratio: '',
      goal: '≤ 1/n + 2.5 pp at every n',
      verdict: verdict(removal.worst <= ALLOWANCE && removal.bystanders <= ALLOWANCE),
    },
  );
  return { rows };
}
