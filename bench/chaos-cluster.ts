/**
 * `npm run chaos:cluster`: correctness across processes, measured. Three local redis-servers,
 * several worker processes (each a RingDict over its own TCP proxies to the nodes), and one
 * scenario per fault: asymmetric cut and hang, SIGSTOP, SIGKILL + restart empty, restart from
 * an old snapshot, slow node, late delivery, flapping, process stalls, Sentinel failover to a
 * replica that missed writes. Every call of every process is logged with versions and times;
 * the stale-read analyser (test/helpers/stale-analyser.ts) counts the stale reads.
 *
 *   npm run chaos:cluster                          every scenario (about 2 minutes)
 *   npm run chaos:cluster -- --only a,late         some of them, by letter or name
 *   npm run chaos:cluster -- --workers 6 --seconds 2
 *
 * Options: --only <list>, --workers N (4), --seconds S (how long a fault lasts, 3),
 * --keys N (800), --concurrency N (calls in flight per process, 8), --expire S (none),
 * --replicas N (copies of each entry, 1), --near (every process reads through a near cache),
 * --verbose (phase by phase, errors, examples).
 *
 * A measurement, not a test: it prints what it saw and exits 0 unless a scenario could not
 * run. Everything runs on 127.0.0.1; every process it starts is stopped by its pid, also on
 * failure and on Ctrl-C. Run from the compiled tree: `npm run chaos:cluster`.
 */
import {
  DEFAULT_CHAOS_OPTIONS,
  runScenario,
  type ChaosOptions,
  type ScenarioResult,
} from '../test/helpers/chaos-run.js';
import { pickScenarios, SCENARIOS } from '../test/helpers/chaos-scenarios.js';
import { startRedisServers } from '../test/helpers/redis-fleet.js';
import { stopAllRedisServers } from '../test/helpers/redis-servers.js';
import { PHASES } from '../test/helpers/stale-analyser.js';

interface Cli {
  only?: string;
  verbose: boolean;
  options: ChaosOptions;
}

function usage(): string {
  return (
    'usage: npm run chaos:cluster -- [--only a,b,…] [--workers 4] [--seconds 3] [--keys 800] ' +
    `[--concurrency 8] [--expire S] [--replicas 1] [--near] [--verbose]\nscenarios: ${SCENARIOS.map((s) => `${s.letter}/${s.name}`).join(', ')}`
  );
}

function parseCli(argv: readonly string[]): Cli {
  const cli: Cli = { verbose: false, options: { ...DEFAULT_CHAOS_OPTIONS, log: console.log } };
  const positive = (name: string, value: string | undefined): number => {
    const number = Number(value);
    if (value === undefined || !Number.isFinite(number) || number <= 0) {
      throw new Error(`${name}: expected a number > 0, got ${value ?? 'nothing'}`);
    }
    return number;
  };
  for (let i = 0; i < argv.length; i++) {
    const [name, inline] = argv[i].split('=', 2);
    const value = (): string | undefined => inline ?? argv[++i];
    switch (name) {
      case '--only':
        cli.only = value();
        break;
      case '--workers':
        cli.options.workers = Math.round(positive(name, value()));
        break;
      case '--seconds':
        cli.options.faultMs = positive(name, value()) * 1000;
        break;
      case '--keys':
        cli.options.keys = Math.round(positive(name, value()));
        break;
      case '--concurrency':
        cli.options.concurrency = Math.round(positive(name, value()));
        break;
      case '--expire':
        cli.options.expire = positive(name, value());
        break;
      case '--replicas':
        cli.options.replicas = Math.round(positive(name, value()));
        break;
      case '--near':
        cli.options.nearCache = true;
        break;
      case '--verbose':
        cli.verbose = true;
        break;
      default:
        throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  return cli;
}

const COLUMNS = [
  'scenario',
  'stale during the fault',
  'stale after the heal',
  'of which > 1 s after',
  'stale keys at the end',
  'misses',
  'calls thrown',
  'ejections',
  'wrong key',
  'calls',
];

function row(result: ScenarioResult): string[] {
  const r = result.report;
  return [
    `${result.letter}) ${result.title}`,
    String(r.phases.during.stale),
    String(r.staleAfterHeal),
    String(r.staleLate),
    `${r.staleKeysAtEnd} / ${r.keysSwept}`,
    String(r.misses),
    String(r.errors),
    String(result.ejections),
    String(r.wrongKey),
    String(result.calls),
  ];
}

function table(rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(COLUMNS), line(COLUMNS.map(() => '---')), ...rows.map(line)].join('\n');
}

function details(result: ScenarioResult): string {
  const r = result.report;
  const lines = [`${result.letter}) ${result.name}`];
  for (const phase of PHASES) {
    const c = r.phases[phase];
    lines.push(
      `   ${phase.padEnd(9)} reads ${c.reads}, stale ${c.stale}, misses ${c.misses}, ` +
        `writes ${c.writes}, thrown ${c.errors}, wrong key ${c.wrongKey}`,
    );
  }
  const ejected = Object.entries(result.ejectedNodes).map(([node, n]) => `${node} ${n}×`);
  if (ejected.length > 0) lines.push(`   ejected ${ejected.join(', ')}`);
  for (const [kind, n] of Object.entries(result.errors)) lines.push(`   thrown ${n}× ${kind}`);
  // Times relative to the heal: what each process's ring did, and when a process stalled.
  const at = (t: number) =>
    `${t >= result.timeline.heal ? '+' : ''}${((t - result.timeline.heal) / 1000).toFixed(2)} s`;
  const timeline = [
    ...result.events.map((e) => ({
      t: e.at,
      text: `worker ${e.worker} ${e.type} ${e.node ?? ''}`,
    })),
    ...result.gaps.map((g) => ({
      t: g.start,
      text: `worker ${g.worker} stalled ${g.ms.toFixed(0)} ms`,
    })),
  ].sort((a, b) => a.t - b.t);
  lines.push(`   fault at ${at(result.timeline.faultStart)}, heal at +0.00 s`);
  for (const entry of timeline.slice(0, 40))
    lines.push(`   ${at(entry.t).padStart(9)}  ${entry.text}`);
  if (timeline.length > 40) lines.push(`   … ${timeline.length - 40} more`);
  for (const example of r.examples.slice(0, 3)) {
    lines.push(
      `   e.g. ${example.key} (${example.phase}) read writer ${example.read.writer} #${example.read.seq}, ` +
        `superseded by a write begun ${(example.supersededByStart - example.readWrittenEnd).toFixed(1)} ms after it completed; ` +
        `the read began ${(example.readStart - example.supersededByStart).toFixed(1)} ms after that write`,
    );
  }
  return lines.join('\n');
}

async function main(): Promise<number> {
  let cli: Cli;
  let scenarios;
  try {
    cli = parseCli(process.argv.slice(2));
    scenarios = cli.only === undefined ? [...SCENARIOS] : pickScenarios(cli.only);
  } catch (error) {
    console.error(`chaos:cluster: ${(error as Error).message}\n${usage()}`);
    return 2;
  }
  const { options } = cli;
  console.log(
    `chaos:cluster: ${options.workers} processes, 3 nodes, ${options.keys} keys, ` +
      `${options.concurrency} calls in flight per process, commandTimeout ${options.commandTimeout} ms, ` +
      `heartbeat ${options.heartbeatInterval} ms${options.expire ? `, expire ${options.expire} s` : ''}` +
      `${options.replicas ? `, replicas ${options.replicas}` : ''}` +
      `${options.nearCache ? ', near cache on' : ''}; ` +
      `fault ${options.faultMs / 1000} s, read-only ${options.afterMs / 1000} s after the heal`,
  );
  const started = performance.now();
  const results: ScenarioResult[] = [];
  const failed: string[] = [];
  const fleet = await startRedisServers(3);
  try {
    for (const scenario of scenarios) {
      try {
        const result = await runScenario(scenario, fleet, options);
        results.push(result);
        for (const note of result.notes) console.log(`   ${note}`);
        console.log(`   ${(result.durationMs / 1000).toFixed(1)} s`);
      } catch (error) {
        failed.push(`${scenario.letter}) ${scenario.name}: ${(error as Error).stack}`);
        console.error(`   could not run: ${(error as Error).message}`);
      }
    }
  } finally {
    await fleet.stop();
    await stopAllRedisServers();
  }
  console.log(`\n${table(results.map(row))}\n`);
  if (cli.verbose) for (const result of results) console.log(details(result));
  console.log(
    `${results.length} scenarios in ${((performance.now() - started) / 1000).toFixed(0)} s`,
  );
  for (const failure of failed) console.error(`FAILED ${failure}`);
  return failed.length === 0 ? 0 : 1;
}

// Ctrl-C: exit through the process registry's exit hook, which kills every child by its pid.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));
process.exitCode = await main();
