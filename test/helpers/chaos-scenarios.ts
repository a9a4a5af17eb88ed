/**
 * The faults of the cross-process chaos harness, one scenario each: what breaks, for which
 * processes, for how long, and when it counts as healed. chaos-run.ts runs them (load, fault,
 * heal, read-only, final sweep, analysis); `npm run chaos:cluster` (bench/chaos-cluster.ts)
 * runs them all, the integration test (test/integration/cross-process.spec.ts) a bounded few.
 */
import type { NodeTarget } from './cluster-harness.js';
import type { WorkerStatus } from './cluster-protocol.js';
import type { FaultContext, Scenario } from './chaos-run.js';
import { redisCommand } from './redis-command.js';
import type { RedisFleet } from './redis-fleet.js';
import { TcpProxy } from './tcp-proxy.js';
import { sleep } from './wait.js';

/** The node every fault is aimed at, and the process the asymmetric ones isolate. */
const VICTIM = 'node1';
const ISOLATED = 0;
const NODE_NAMES = ['node0', 'node1', 'node2'];

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
    const { deliveredLate, droppedLate } = proxy.stats();
    // Held past the rejoin: delivered then, or dropped because the server had closed their
    // connection meanwhile (the ring kills its earlier connections before a node rejoins).
    context.note(
      `${deliveredLate + droppedLate} bytes held past the rejoin: ${deliveredLate} delivered late, ${droppedLate} dropped with their connection`,
    );
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
 * timer falls in it, and on whether the node's socket is read in the same turn as the task
 * that stalled (today some 1 stall in 10 ejects every node of its process, and whole runs of
 * 40 stalls ejected none), so a few stalls prove little either way: 16 rounds, 64 stalls.
 */
const STALL_ROUNDS = 16;

const stall: Scenario = {
  name: 'stall',
  letter: 'j',
  title: (o) =>
    `every process stalls ${STALL_ROUNDS} times for ${STALL_FACTORS.join('/')} × ${o.commandTimeout} ms under load`,
  afterHeal: 'rw',
  // A stall makes calls throw only when it ejects every node of the process, so every node
  // needs calls in flight; the figures before the redesign were taken with some 150 in flight
  // (with 8 per process, 12 stalls ejected 3 nodes here and threw nothing).
  concurrency: 40,
  plan: onServers(async (context) => {
    const { workers } = context.stage;
    context.faultBegins();
    for (let round = 0; round < STALL_ROUNDS; round++) {
      await Promise.all(
        workers.map(async (worker, w) => {
          // Each stall at a random moment: rounds at a fixed pace would meet a node's
          // deadline timer (its period is about commandTimeout) at the same phase every time,
          // and a whole run would eject always or never.
          await context.sleep((Math.random() * context.options.commandTimeout) / 2);
          const factor = STALL_FACTORS[(round + w) % STALL_FACTORS.length];
          await worker.request({ cmd: 'stall', ms: factor * context.options.commandTimeout });
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
