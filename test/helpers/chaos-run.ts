/**
 * The run of one scenario of the cross-process chaos harness: several worker processes share
 * three nodes through per-process proxies; the load runs (read/write), the scenario breaks
 * something and heals it, the load keeps reading (read-only by default, so a stale value is not
 * hidden by a newer write), stops, waits for quiet, every process reads every key once more,
 * and every call goes to the stale-read analyser. The faults themselves are in
 * chaos-scenarios.ts.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Stage, type NodeTarget } from './cluster-harness.js';
import { moveToClock, now, recordsOf, type LoadMode, type WorkerLog } from './cluster-protocol.js';
import { redisCommand } from './redis-command.js';
import { resetFleet, type RedisFleet } from './redis-fleet.js';
import { analyse, type FaultTimeline, type StaleReport } from './stale-analyser.js';
import { sleep } from './wait.js';

export interface ChaosOptions {
  /** Worker processes (default 4). */
  workers: number;
  /** Keys shared by every process (default 800). */
  keys: number;
  /** Calls in flight per process (default 8). */
  concurrency: number;
  /** Read/write load before the fault, ms. */
  beforeMs: number;
  /** How long a fault lasts, ms (scenarios with a fixed shape use part of it). */
  faultMs: number;
  /** Load after the heal, ms: more than 1 s, so "late" reads exist. */
  afterMs: number;
  commandTimeout: number;
  heartbeatInterval: number;
  /** RingDict `expire` (seconds) for every write; none by default. */
  expire?: number;
  /** RingDict `replicas`: copies of each entry (1 by default). */
  replicas?: number;
  /** Every process reads through a near cache (RingDict `nearCache: {}`); off by default. */
  nearCache?: boolean;
  /** Clock tolerance between processes for the analyser, ms. */
  slackMs: number;
  /** Progress lines. */
  log(line: string): void;
}

export const DEFAULT_CHAOS_OPTIONS: ChaosOptions = {
  workers: 4,
  keys: 800,
  concurrency: 8,
  beforeMs: 1_000,
  faultMs: 3_000,
  afterMs: 2_200,
  commandTimeout: 200,
  heartbeatInterval: 200,
  slackMs: 1,
  log: () => undefined,
};

export interface ScenarioResult {
  name: string;
  letter: string;
  title: string;
  report: StaleReport;
  /** `ejected` events, summed over the processes, for the whole scenario. */
  ejections: number;
  rediscoveries: number;
  /** Ejections by node, e.g. `{ node1: 4 }`. */
  ejectedNodes: Record<string, number>;
  /** Calls made (the final sweep included). */
  calls: number;
  /** Errors thrown, by kind, over every process. */
  errors: Record<string, number>;
  /** What the scenario observed on the way (bytes delivered late, failover target, …). */
  notes: string[];
  /** How long the scenario took, set-up included. */
  durationMs: number;
  /** When the fault began and healed (the processes' shared clock, ms). */
  timeline: { faultStart: number; heal: number };
  /** Every process's ring events and long event-loop gaps, for explaining the figures. */
  events: { worker: number; type: string; node?: string; at: number }[];
  gaps: { worker: number; start: number; ms: number }[];
}

export interface FaultContext {
  readonly stage: Stage;
  readonly fleet: RedisFleet;
  readonly options: ChaosOptions;
  /** Marks the fault's start (the analyser's "during" begins). */
  faultBegins(): void;
  /** Marks the heal (the analyser's "after the heal" begins). */
  healed(): void;
  note(text: string): void;
  sleep(ms: number): Promise<void>;
  /** Switches every process's load (e.g. read-only from the moment a node dies). */
  load(mode: LoadMode): Promise<void>;
}

/** What a scenario runs on: the nodes, the fault, and what to undo afterwards. */
export interface Plan {
  targets: Record<string, NodeTarget>;
  fault(context: FaultContext): Promise<void>;
  cleanup?(): Promise<void>;
}

export interface Scenario {
  name: string;
  letter: string;
  title(options: ChaosOptions): string;
  /** The load after the heal (default read-only). */
  afterHeal?: LoadMode;
  /** Calls in flight per process, if not the options' (a stall matters under load). */
  concurrency?: number;
  plan(fleet: RedisFleet, options: ChaosOptions): Promise<Plan>;
}

/**
 * Puts the servers back as a scenario expects them: running, resumed, empty, and with an
 * empty snapshot in their directory, so a restart comes back empty unless the scenario saved.
 */
async function resetServers(fleet: RedisFleet): Promise<void> {
  await resetFleet(fleet);
  for (const server of fleet.servers) await redisCommand(server.port, 'SAVE');
}

function openStage(scenario: Scenario, plan: Plan, options: ChaosOptions): Promise<Stage> {
  return Stage.open(plan.targets, {
    workers: options.workers,
    worker: {
      prefix: `chaos:${scenario.name}:`,
      keys: options.keys,
      concurrency: scenario.concurrency ?? options.concurrency,
      setRatio: 0.45,
      deleteRatio: 0.05,
      dict: {
        commandTimeout: options.commandTimeout,
        heartbeatInterval: options.heartbeatInterval,
        ...(options.expire === undefined ? {} : { expire: options.expire }),
        ...(options.replicas === undefined ? {} : { replicas: options.replicas }),
        ...(options.nearCache ? { nearCache: {} } : {}),
      },
      maxRecords: 1_000_000,
    },
  });
}

/**
 * Load, fault, heal, load after the heal, quiet, final sweep; answers the workers' logs. The
 * fault marks in `timeline` when it began and healed.
 */
async function drive(
  scenario: Scenario,
  plan: Plan,
  context: FaultContext,
  timeline: FaultTimeline,
  lag: IntervalHistogram,
): Promise<WorkerLog[]> {
  const { stage, options } = context;
  lag.enable();
  await stage.load('rw');
  await sleep(options.beforeMs);
  await plan.fault(context);
  if (!(timeline.faultStart <= timeline.heal)) {
    throw new Error(`scenario ${scenario.name} did not mark its fault and heal`);
  }
  if ((scenario.afterHeal ?? 'ro') === 'ro') await stage.load('ro');
  await sleep(options.afterMs - (now() - timeline.heal));
  await stage.all({ cmd: 'stop' });
  // Quiet: every process sees every node again (or gave up), then the final sweep.
  if (!(await stage.allAlive(3_000))) {
    context.note('some process still had a node out 3 s after the load stopped');
  }
  await sleep(200);
  if (options.nearCache) await noteChannels(context);
  await stage.all({ cmd: 'sweep' });
  lag.disable();
  return stage.collect();
}

/**
 * With a near cache: how many (process, node) invalidation channels are up before the sweep,
 * once every one is or after 3 s (a channel reopens at most once a second after a failure).
 */
async function noteChannels(context: FaultContext): Promise<void> {
  let up = 0;
  let total = 0;
  const until = now() + 3_000;
  do {
    const nodes = (await context.stage.status()).flatMap((status) => status.nodes);
    up = nodes.filter((node) => node.invalidation === 'up').length;
    total = nodes.length;
    if (up === total) break;
    await sleep(100);
  } while (now() < until);
  context.note(`near cache: ${up} of ${total} invalidation channels up`);
}

/** What the notes say about the harness itself: clocks, stalls, truncated logs. */
function harnessNotes(
  stage: Stage,
  logs: WorkerLog[],
  lag: IntervalHistogram,
  options: ChaosOptions,
) {
  const notes: string[] = [];
  // Each log was moved by its measured offset; what is left is that measure's uncertainty.
  const worstClock = Math.max(...stage.clockOffsets.map((c) => Math.abs(c.offset)));
  const worstUncertainty = Math.max(...stage.clockOffsets.map((c) => c.uncertainty));
  if (worstClock > options.slackMs) {
    notes.push(`process clocks differed by up to ${worstClock.toFixed(2)} ms (corrected)`);
  }
  if (worstUncertainty > options.slackMs) {
    notes.push(
      `process clocks known to ±${worstUncertainty.toFixed(2)} ms only (slack ${options.slackMs})`,
    );
  }
  // The proxies live in this process: should it stall, every path of every worker stalls,
  // which is a fault of the harness, not of the engine.
  const proxiesLag = lag.max / 1e6;
  if (proxiesLag > options.commandTimeout / 4) {
    notes.push(`the proxies' process stalled up to ${proxiesLag.toFixed(0)} ms`);
  }
  // A worker starved of CPU stalls as if asked to: worth knowing beside its ejections.
  const workerLag = Math.max(...logs.map((log) => log.maxLagMs));
  if (workerLag > options.commandTimeout / 4) {
    notes.push(`worker event loops stalled up to ${workerLag.toFixed(0)} ms`);
  }
  for (const log of logs) if (log.truncated) notes.push(`worker ${log.worker}'s log was truncated`);
  const stalls = logs.flatMap((log) => log.stalls.map((stall) => stall.end - stall.start));
  if (stalls.length > 0) {
    const shortest = Math.min(...stalls).toFixed(0);
    const longest = Math.max(...stalls).toFixed(0);
    notes.push(`${stalls.length} process stalls of ${shortest}–${longest} ms`);
  }
  return notes;
}

type Summary = Pick<
  ScenarioResult,
  'report' | 'ejections' | 'rediscoveries' | 'ejectedNodes' | 'calls' | 'errors' | 'events' | 'gaps'
>;

/** Every log judged by the analyser, and the processes' events and errors added up. */
function summarise(logs: WorkerLog[], timeline: FaultTimeline, options: ChaosOptions): Summary {
  const records = logs.flatMap((log) => [...recordsOf(log)]);
  const summary: Summary = {
    report: analyse(records, timeline, { slackMs: options.slackMs }),
    ejections: 0,
    rediscoveries: 0,
    ejectedNodes: {},
    calls: records.length,
    errors: {},
    events: [],
    gaps: [],
  };
  for (const log of logs) {
    for (const [kind, n] of Object.entries(log.errors)) {
      summary.errors[kind] = (summary.errors[kind] ?? 0) + n;
    }
    for (const gap of log.gaps) {
      summary.gaps.push({ worker: log.worker, start: gap.start, ms: gap.end - gap.start });
    }
    for (const event of log.events) {
      summary.events.push({ worker: log.worker, ...event });
      if (event.type === 'rediscovered') summary.rediscoveries++;
      if (event.type !== 'ejected') continue;
      summary.ejections++;
      const node = event.node ?? '?';
      summary.ejectedNodes[node] = (summary.ejectedNodes[node] ?? 0) + 1;
    }
  }
  summary.events.sort((a, b) => a.at - b.at);
  summary.gaps.sort((a, b) => a.start - b.start);
  return summary;
}

/** Runs one scenario on `fleet` (three servers); every process it started is stopped. */
export async function runScenario(
  scenario: Scenario,
  fleet: RedisFleet,
  options: ChaosOptions,
): Promise<ScenarioResult> {
  const started = performance.now();
  await resetServers(fleet);
  const title = scenario.title(options);
  options.log(`${scenario.letter}) ${title}`);
  const plan = await scenario.plan(fleet, options);
  let stage: Stage | undefined;
  const lag = monitorEventLoopDelay({ resolution: 10 });
  try {
    stage = await openStage(scenario, plan, options);
    const scenarioNotes: string[] = [];
    const timeline: FaultTimeline = { faultStart: NaN, heal: NaN };
    const running = stage;
    const context: FaultContext = {
      stage,
      fleet,
      options,
      faultBegins: () => (timeline.faultStart = now()),
      healed: () => (timeline.heal = now()),
      note: (text) => scenarioNotes.push(text),
      sleep,
      load: async (mode) => {
        await running.load(mode);
      },
    };
    const logs = await drive(scenario, plan, context, timeline, lag);
    // On one clock: the timeline's, which is this process's.
    logs.forEach((log, w) => moveToClock(log, running.clockOffsets[w].offset));
    const summary = summarise(logs, timeline, options);
    const notes = [...scenarioNotes, ...harnessNotes(stage, logs, lag, options)];
    if (summary.report.unknownVersions > 0) {
      notes.push(`${summary.report.unknownVersions} values nobody wrote`);
    }
    if (summary.report.impossible > 0) {
      notes.push(`${summary.report.impossible} values from the future`);
    }
    const { name, letter } = scenario;
    const durationMs = performance.now() - started;
    return { name, letter, title, ...summary, notes, durationMs, timeline };
  } finally {
    lag.disable();
    await stage?.close();
    await plan.cleanup?.();
  }
}
