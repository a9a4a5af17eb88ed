/**
 * The faults of the cross-process chaos harness and the run of one scenario: several worker
 * processes share three nodes through per-process proxies; each scenario runs a read/write
 * load, breaks something (for one process or for all), heals it, keeps reading (read-only by
 * default, so a stale value is not hidden by a newer write), stops, waits for quiet, has every
 * process read every key once more, and hands every call to the stale-read analyser.
 *
 * Used by `npm run chaos:cluster` (bench/chaos-cluster.ts) and by the bounded integration
 * test (test/integration/cross-process.spec.ts).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Stage, type NodeTarget } from './cluster-harness.js';
import { now, recordsOf, type LoadMode, type WorkerStatus } from './cluster-protocol.js';
import { redisCommand, resetFleet, type RedisFleet } from './redis-servers.js';
import { analyse, type StaleReport } from './stale-analyser.js';
import { TcpProxy } from './tcp-proxy.js';

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

/** The node every fault is aimed at, and the process the asymmetric ones isolate. */
const VICTIM = 'node1';
const ISOLATED = 0;
const NODE_NAMES = ['node0', 'node1', 'node2'];

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
interface Plan {
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/** The three servers, each reached through every worker's own proxy. */
function proxied(fleet: RedisFleet): Record<string, NodeTarget> {
  return Object.fromEntries(
    fleet.servers.map((server, i) => [NODE_NAMES[i], { port: server.port }] as const),
  );
}

/** A scenario on the three plain servers. */
function onServers(fault: (context: FaultContext) => Promise<void>): Scenario['plan'] {
  return async (fleet) => ({ targets: proxied(fleet), fault });
}

async function until(what: string, timeoutMs: number, done: () => Promise<boolean>) {
  const deadline = performance.now() + timeoutMs;
  while (!(await done())) {
    if (performance.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(20);
  }
}

async function victimAlive(context: FaultContext, worker: number): Promise<boolean> {
  const status = await context.stage.workers[worker].request<WorkerStatus>({ cmd: 'status' });
  return status.nodes.find((node) => node.name === VICTIM)?.alive ?? false;
}

/** A proxy fault of one process's path to the victim: on, for faultMs, healed. */
function isolated(mode: 'cut' | 'hang'): Scenario['plan'] {
  return onServers(async (context) => {
    const proxy = context.stage.proxy(ISOLATED, VICTIM);
    context.faultBegins();
    proxy[mode]();
    await context.sleep(context.options.faultMs);
    proxy.heal();
    context.healed();
  });
}

const cut: Scenario = {
  name: 'cut',
  letter: 'a',
  title: (o) => `one process cut off from ${VICTIM} for ${o.faultMs / 1000} s`,
  plan: isolated('cut'),
};

const hang: Scenario = {
  name: 'hang',
  letter: 'b',
  title: (o) => `one process's path to ${VICTIM} hung for ${o.faultMs / 1000} s`,
  plan: isolated('hang'),
};

const sigstop: Scenario = {
  name: 'sigstop',
  letter: 'c',
  title: (o) => `${VICTIM} SIGSTOPped for ${o.faultMs / 1000} s (every process)`,
  plan: onServers(async (context) => {
    const server = context.fleet.servers[1];
    context.faultBegins();
    server.hang();
    await context.sleep(context.options.faultMs);
    server.resume();
    context.healed();
  }),
};

const kill: Scenario = {
  name: 'kill',
  letter: 'd',
  title: () => `${VICTIM} SIGKILLed, restarted empty`,
  plan: onServers(async (context) => {
    const server = context.fleet.servers[1];
    context.faultBegins();
    await server.kill();
    await context.sleep(context.options.faultMs / 2);
    // Its directory holds an empty snapshot (see resetServers): it comes back empty.
    await server.restart();
    context.healed();
  }),
};

const rdb: Scenario = {
  name: 'rdb',
  letter: 'e',
  title: () => `${VICTIM} restarted from a snapshot older than the last writes`,
  plan: onServers(async (context) => {
    const server = context.fleet.servers[1];
    await redisCommand(server.port, 'SAVE');
    context.note(`snapshot of ${await redisCommand(server.port, 'DBSIZE')} keys`);
    // Writes the snapshot will not have, acknowledged by the node itself.
    await context.sleep(1_000);
    context.faultBegins();
    // Nothing rewritten from here on: every key written since the snapshot must not go back.
    await context.load('ro');
    await server.kill();
    await context.sleep(500);
    await server.restart(); // loads the snapshot from its directory
    context.note(`restarted with ${await redisCommand(server.port, 'DBSIZE')} keys`);
    context.healed();
  }),
};

const sentinel: Scenario = {
  name: 'sentinel',
  letter: 'f',
  title: () => `Sentinel failover of ${VICTIM} to a replica that missed the last writes`,
  async plan(fleet) {
    // Loaded only here: it starts sentinels, which no other scenario needs.
    const { startSentinelGroup } = await import('./sentinel.js');
    const group = await startSentinelGroup({ name: 'chaos' });
    // The replica follows its master through a proxy, so its link can be cut.
    const link = await TcpProxy.start(group.master.port);
    const cleanup = async () => {
      await link.close();
      await group.stop();
    };
    try {
      await redisCommand(group.replica.port, 'REPLICAOF', '127.0.0.1', String(link.port));
      await until('the replica in sync through its proxy', 10_000, async () => {
        const info = await redisCommand(group.replica.port, 'INFO', 'replication');
        return info.includes(`master_port:${link.port}`) && info.includes('master_link_status:up');
      });
    } catch (error) {
      await cleanup();
      throw error;
    }
    return {
      targets: {
        node0: { port: fleet.servers[0].port },
        [VICTIM]: { connection: group.connection() },
        node2: { port: fleet.servers[2].port },
      },
      cleanup,
      async fault(context) {
        const from = await group.currentMaster();
        context.faultBegins();
        link.cut(); // from now on the replica misses every write
        await context.sleep(Math.min(1_000, context.options.faultMs / 2));
        const behind = await replicationLag(group.master.port, group.replica.port);
        context.note(`the replica is ${behind} bytes of replication stream behind`);
        // Nothing rewritten from here on: every key the replica missed must not go back.
        await context.load('ro');
        await group.master.kill();
        const to = await group.waitForNewMaster(from, 20_000);
        context.note(`failover ${from} → ${to}`);
        context.healed();
      },
    };
  },
};

/** How far the replica's replication offset is behind its master's, in bytes. */
async function replicationLag(masterPort: number, replicaPort: number): Promise<number> {
  const offset = async (port: number, field: string) => {
    const info = await redisCommand(port, 'INFO', 'replication');
    return Number(new RegExp(`${field}:(\\d+)`).exec(info)?.[1] ?? NaN);
  };
  const master = await offset(masterPort, 'master_repl_offset');
  const replica = await offset(replicaPort, 'slave_repl_offset');
  return master - replica;
}

const slow: Scenario = {
  name: 'slow',
  letter: 'g',
  title: (o) =>
    `${VICTIM} slow for every process (+${o.commandTimeout * 0.75} ms each way) for ${o.faultMs / 1000} s`,
  plan: onServers(async (context) => {
    const proxies = context.stage.proxiesTo(VICTIM);
    context.faultBegins();
    // A round trip of 1.5 × commandTimeout: every call on the node times out.
    for (const proxy of proxies) proxy.delay(context.options.commandTimeout * 0.75);
    await context.sleep(context.options.faultMs);
    for (const proxy of proxies) proxy.heal();
    context.healed();
  }),
};

const late: Scenario = {
  name: 'late',
  letter: 'h',
  title: () => `one process: calls on ${VICTIM} time out, their bytes land after it rejoined`,
  plan: onServers(async (context) => {
    const proxy = context.stage.proxy(ISOLATED, VICTIM);
    const budget = context.options.faultMs;
    context.faultBegins();
    // What this connection sends now is held: its calls time out, the node is ejected,
    // the writes retried on the next node; the heartbeat's new connection passes.
    proxy.deliverLate();
    await until('the isolated process ejects the node', budget, async () => {
      return !(await victimAlive(context, ISOLATED));
    });
    await until('the isolated process takes the node back', budget, () =>
      victimAlive(context, ISOLATED),
    );
    // Newer writes of the same keys, acknowledged, before the old bytes land.
    await context.sleep(300);
    proxy.heal();
    context.note(`${proxy.stats().deliveredLate} bytes delivered late`);
    context.healed();
  }),
};

const flap: Scenario = {
  name: 'flap',
  letter: 'i',
  title: () => `every process's path to ${VICTIM} hangs 400 ms, heals 400 ms, 5 times`,
  plan: onServers(async (context) => {
    const proxies = context.stage.proxiesTo(VICTIM);
    context.faultBegins();
    for (let i = 0; i < 5; i++) {
      for (const proxy of proxies) proxy.hang();
      await context.sleep(400);
      for (const proxy of proxies) proxy.heal();
      if (i < 4) await context.sleep(400);
    }
    context.healed();
  }),
};

/** Stall lengths, as multiples of commandTimeout: the band where today's engine ejects. */
export const STALL_FACTORS = [1.0, 1.15, 1.3, 1.5];
/**
 * Stalls per process. Whether a stall ejects a node depends on where the node's deadline
 * timer falls in it (today: only in its last quarter of a commandTimeout), so a few stalls
 * prove little either way: 6 rounds, 24 stalls over the processes.
 */
const STALL_ROUNDS = 6;

const stall: Scenario = {
  name: 'stall',
  letter: 'j',
  title: (o) =>
    `every process stalls ${STALL_ROUNDS} times for ${STALL_FACTORS.join('/')} × ${o.commandTimeout} ms under load`,
  afterHeal: 'rw',
  // The figures were taken with some 150 calls in flight in the stalled process.
  concurrency: 40,
  plan: onServers(async (context) => {
    const { workers } = context.stage;
    context.faultBegins();
    for (let round = 0; round < STALL_ROUNDS; round++) {
      if (round > 0) await context.sleep(300);
      await Promise.all(
        workers.map((worker, w) => {
          const factor = STALL_FACTORS[(round + w) % STALL_FACTORS.length];
          return worker.request({ cmd: 'stall', ms: factor * context.options.commandTimeout });
        }),
      );
    }
    context.healed();
  }),
};

/** Every scenario, in the order a full run takes them (the slow Sentinel set-up last). */
export const SCENARIOS: readonly Scenario[] = [
  cut,
  hang,
  sigstop,
  kill,
  rdb,
  slow,
  late,
  flap,
  stall,
  sentinel,
];

/** Scenarios by letter or name (`a`, `cut`, `a,c,kill`); throws naming an unknown one. */
export function pickScenarios(spec: string): Scenario[] {
  return spec.split(',').map((wanted) => {
    const found = SCENARIOS.find((s) => s.letter === wanted.trim() || s.name === wanted.trim());
    if (!found) {
      const known = SCENARIOS.map((s) => `${s.letter}/${s.name}`).join(', ');
      throw new Error(`unknown scenario "${wanted}" (known: ${known})`);
    }
    return found;
  });
}

/**
 * Puts the servers back as a scenario expects them: running, resumed, empty, and with an
 * empty snapshot in their directory, so a restart comes back empty unless the scenario saved.
 */
async function resetServers(fleet: RedisFleet): Promise<void> {
  await resetFleet(fleet);
  for (const server of fleet.servers) await redisCommand(server.port, 'SAVE');
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
  // The proxies live in this process: should it stall, every path of every worker stalls,
  // which is a fault of the harness, not of the engine. Watched from the load's start, and said.
  const lag = monitorEventLoopDelay({ resolution: 10 });
  try {
    stage = await Stage.open(plan.targets, {
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
        },
        maxRecords: 1_000_000,
      },
    });
    const notes: string[] = [];
    const worstClock = Math.max(
      ...stage.clockOffsets.map((c) => Math.abs(c.offset) - c.uncertainty),
    );
    if (worstClock > options.slackMs) {
      notes.push(
        `process clocks differ by up to ${worstClock.toFixed(2)} ms (slack ${options.slackMs})`,
      );
    }
    const timeline = { faultStart: NaN, heal: NaN };
    const context: FaultContext = {
      stage,
      fleet,
      options,
      faultBegins: () => (timeline.faultStart = now()),
      healed: () => (timeline.heal = now()),
      note: (text) => notes.push(text),
      sleep,
      load: async (mode) => {
        await stage!.load(mode);
      },
    };
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
      notes.push('some process still had a node out 3 s after the load stopped');
    }
    await sleep(200);
    await stage.all({ cmd: 'sweep' });
    lag.disable();
    const worstLagMs = lag.max / 1e6;
    if (worstLagMs > options.commandTimeout / 4) {
      notes.push(`the proxies' process stalled up to ${worstLagMs.toFixed(0)} ms`);
    }
    const logs = await stage.collect();
    const records = logs.flatMap((log) => [...recordsOf(log)]);
    const report = analyse(records, timeline, { slackMs: options.slackMs });
    const errors: Record<string, number> = {};
    let ejections = 0;
    let rediscoveries = 0;
    const ejectedNodes: Record<string, number> = {};
    const workerLag = Math.max(...logs.map((log) => log.maxLagMs));
    if (workerLag > options.commandTimeout / 4) {
      notes.push(`worker event loops stalled up to ${workerLag.toFixed(0)} ms`);
    }
    for (const log of logs) {
      if (log.truncated) notes.push(`worker ${log.worker}'s log was truncated`);
      for (const [kind, n] of Object.entries(log.errors)) errors[kind] = (errors[kind] ?? 0) + n;
      for (const event of log.events) {
        if (event.type === 'ejected') {
          ejections++;
          const node = event.node ?? '?';
          ejectedNodes[node] = (ejectedNodes[node] ?? 0) + 1;
        }
        if (event.type === 'rediscovered') rediscoveries++;
      }
    }
    if (report.unknownVersions > 0) notes.push(`${report.unknownVersions} values nobody wrote`);
    if (report.impossible > 0) notes.push(`${report.impossible} values from the future`);
    return {
      name: scenario.name,
      letter: scenario.letter,
      title,
      report,
      ejections,
      rediscoveries,
      ejectedNodes,
      calls: records.length,
      errors,
      notes,
      durationMs: performance.now() - started,
    };
  } finally {
    lag.disable();
    await stage?.close();
    await plan.cleanup?.();
  }
}
