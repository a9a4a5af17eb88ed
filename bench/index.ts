/**
 * `npm run bench`: every benchmark in one run, each figure side by side with its
 * baseline, the ratio and the goal, then a Markdown table for bench/README.md.
 *
 *   npm run bench                        every section (~3 min)
 *   npm run bench -- --only throughput   one section (or a comma-separated list)
 *   npm run bench -- --quick             shorter measurements, for a smoke run
 */
import { performance } from 'node:perf_hooks';
import { benchAllocation } from './allocation.bench.js';
import { benchBalance } from './balance.bench.js';
import { benchBatch } from './batch.bench.js';
import { installSignalHandlers, interruptedBy, stopEverything } from './cleanup.js';
import { benchClientFloor } from './client-floor.bench.js';
import { benchEcosystem } from './ecosystem.bench.js';
import { benchGrowth } from './growth.bench.js';
import { benchLocate } from './hash-ring.bench.js';
import { benchMembership } from './membership.bench.js';
import { benchNearCache } from './near-cache.bench.js';
import { benchHungNode } from './hung-node.bench.js';
import { describeMachine, loadAverage, machineLine, schedulerPauses } from './machine.js';
import { benchMetrics } from './metrics.bench.js';
import type { BenchConfig } from './measure.js';
import { benchRebuild } from './rebuild.bench.js';
import { benchReplication } from './replication.bench.js';
import { benchRingCached } from './ring-cached.bench.js';
import { benchRingCachedOptions } from './ring-cached-options.bench.js';
import { benchRingCachedResilience } from './ring-cached-resilience.bench.js';
import { markdownTable, rowsTable, type Row, type SectionResult } from './report.js';
import { benchThroughput } from './throughput.bench.js';

interface Section {
  name: string;
  title: string;
  run(config: BenchConfig): SectionResult | Promise<SectionResult>;
}

const SECTIONS: Section[] = [
  { name: 'locate', title: '1. HashRing.locate vs hashring 3.2.0, ring memory', run: benchLocate },
  { name: 'rebuild', title: '2. Eject / rediscover rebuild time', run: benchRebuild },
  { name: 'balance', title: '3. Balance: worst node-share deviation', run: benchBalance },
  {
    name: 'growth',
    title: '10. Growth: keys moved adding or removing a node, vs the ideal and hashring 3.2.0',
    run: benchGrowth,
  },
  {
    name: 'membership',
    title:
      '11. Membership at run time: setNodes swap, hits after a node joins, load across a change',
    run: benchMembership,
  },
  {
    name: 'throughput',
    title: '4. Throughput: RingDict vs raw ioredis vs nutcracker',
    run: benchThroughput,
  },
  {
    name: 'hung',
    title: '4. Throughput with a hung node, once ejected',
    run: benchHungNode,
  },
  { name: 'batch', title: '5. getMany / setMany / deleteMany vs loops', run: benchBatch },
  { name: 'cached', title: '6. @RingCached hit path', run: benchRingCached },
  {
    name: 'floor',
    title: '6. (for scale) one caller, 1 in flight: servers and client libraries below the ring',
    run: benchClientFloor,
  },
  {
    name: 'cached-options',
    title: '8. @RingCached hit cost with each resilient option, and bentocache 1.6',
    run: benchRingCachedOptions,
  },
  {
    name: 'cached-resilience',
    title: '9. @RingCached resilience: tags, lock, soft timeouts, refresh-ahead, grace',
    run: benchRingCachedResilience,
  },
  {
    name: 'alloc',
    title: '6. Heap allocated per call on the hot path (get / set / locate)',
    run: benchAllocation,
  },
  {
    name: 'eco',
    title: '7. Keyv store, msgpack codec, compression',
    run: benchEcosystem,
  },
  {
    name: 'near',
    title: '12. Near cache: hits from process memory, invalidation seen by another process',
    run: benchNearCache,
  },
  {
    name: 'replicas',
    title: '13. Replication: replicas 2 against replicas 1',
    run: benchReplication,
  },
  {
    name: 'metrics',
    title: '14. OpenTelemetry metrics: no SDK, metrics off, an SDK recording',
    run: benchMetrics,
  },
];

function usage(): string {
  return (
    'usage: npm run bench -- [--quick] [--only <section>[,<section>…]]\n' +
    `sections: ${SECTIONS.map((s) => s.name).join(', ')}`
  );
}

function parseArgs(argv: readonly string[]): { config: BenchConfig; sections: Section[] } {
  let quick = false;
  const only = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--quick') quick = true;
    else if (arg === '--only' || arg.startsWith('--only=')) {
      const value = arg === '--only' ? argv[++i] : arg.slice('--only='.length);
      if (!value) throw new Error(`--only needs a section name\n${usage()}`);
      for (const name of value.split(',')) only.add(name.trim());
    } else if (arg === '--help' || arg === '-h') {
      console.log(usage());
      process.exit(0);
    } else throw new Error(`unknown argument ${JSON.stringify(arg)}\n${usage()}`);
  }
  for (const name of only) {
    if (!SECTIONS.some((s) => s.name === name)) {
      throw new Error(`unknown section ${JSON.stringify(name)}\n${usage()}`);
    }
  }
  const sections = only.size === 0 ? SECTIONS : SECTIONS.filter((s) => only.has(s.name));
  return { config: { quick }, sections };
}

async function main(): Promise<number> {
  installSignalHandlers();
  const { config, sections } = parseArgs(process.argv.slice(2));
  const started = performance.now();
  const machine = machineLine(await describeMachine());
  console.log(`nestjs-ring-redis benchmarks${config.quick ? ' (--quick)' : ''}`);
  const loadAtStart = loadAverage();
  console.log(`machine: ${machine}`);
  console.log(`load average (1 min) at start: ${loadAtStart}`);
  const pausesAtStart = schedulerPauses();
  console.log(`scheduler at start: ${pausesAtStart}\n`);

  const rows: Row[] = [];
  const notes: string[] = [];
  let failed = false;
  for (const section of sections) {
    console.log(`== ${section.title}`);
    const t0 = performance.now();
    try {
      const result = await section.run(config);
      rows.push(...result.rows);
      notes.push(...(result.notes ?? []));
      console.log(rowsTable(result.rows));
      for (const note of result.notes ?? []) console.log(`note: ${note}`);
    } catch (error) {
      failed = true;
      // Servers stopped under a running benchmark make it fail: not worth a report.
      if (!interruptedBy()) console.error(`section ${section.name} failed:`, error);
    } finally {
      await stopEverything();
    }
    // The signal handler exits once everything is stopped; print nothing meanwhile.
    if (interruptedBy()) return new Promise<number>(() => undefined);
    console.log(`(${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
  }

  const goals = rows.filter((r) => r.verdict !== 'info');
  const misses = goals.filter((r) => r.verdict === 'MISS');
  console.log('== Summary (Markdown, for bench/README.md)\n');
  console.log(`Measured with \`npm run bench\` on ${machine}.`);
  console.log(
    'Each figure is the median of interleaved rounds; each ratio is the median of the ' +
      'per-round ratios (the two contenders of a round ran back to back).\n',
  );
  console.log(markdownTable(rows));
  for (const note of notes) console.log(`\nNote: ${note}`);
  console.log(
    `\n${goals.length - misses.length}/${goals.length} goals passed` +
      (misses.length ? `; missed: ${misses.map((r) => `${r.item}. ${r.what}`).join('; ')}` : '') +
      `; total ${((performance.now() - started) / 1000).toFixed(1)} s` +
      `; load average (1 min) at start ${loadAtStart}, at end ${loadAverage()}`,
  );
  console.log(`\nScheduler: at start, ${pausesAtStart}; at end, ${schedulerPauses()}.`);
  return failed ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  async (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    await stopEverything();
    process.exitCode = 1;
  },
);
