/**
 * `npm run soak`: a bounded soak of RingDict against three local redis-server processes, one
 * of which flaps (SIGKILL + restart, or SIGSTOP + SIGCONT, alternately) every few seconds
 * while ~32 workers get, set and delete their own keys, for at least 500 000 operations.
 *
 *   npm run soak                               defaults: ≥ 500 000 operations and ≥ 60 s
 *   npm run soak -- --seconds=15               a shorter smoke run
 *
 * It runs for at least --seconds AND at least --ops operations, and gives up (a broken
 * bound) past --time-limit. Options: --ops (500000), --seconds (60), --concurrency (32),
 * --keys (8192), --flap-every ms (3000), --outage ms (1000), --heap-bound MB (20),
 * --time-limit s (170).
 *
 * At the end, with every node back, it checks the bounds and exits 1 if one is broken:
 * - heap after ≤ heap before + --heap-bound (both after `global.gc()`: the script re-execs
 *   itself with `--expose-gc` when started without it);
 * - no growth in active handles or timers (process.getActiveResourcesInfo() by type), nor
 *   in listeners on the nodes' ioredis clients and sockets, nor on `process`;
 * - no listener-leak warning (MaxListenersExceededWarning) during the run;
 * - no leaked socket: each node's `CLIENT LIST` shows exactly the dict's two connections (its
 *   data connection and the fleet's, see fleet-view.ts) plus the probe's own;
 * - no call threw (one node flaps, two are always alive), no stale read, no value that was
 *   never written;
 * - after close() and stopping the servers, exactly the handles the process had at start.
 *
 * Everything runs on 127.0.0.1; every server it starts is stopped by its pid, also on
 * Ctrl-C and on failure. It imports the package by relative path, so it runs from the
 * compiled tree: `npm run soak`.
 */
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { RingDict } from '../lib/index.js';
import { startRedisServers, type RedisFleet } from '../test/helpers/redis-fleet.js';
import { stopAllRedisServers, type RedisServer } from '../test/helpers/redis-servers.js';
import { sleep } from './measure.js';
import { boundChecks, leftoverCheck, report, type Check, type Measured } from './soak-checks.js';
import {
  COMMAND_TIMEOUT,
  describeRun,
  HEARTBEAT,
  NAMES,
  parseOptions,
  type Options,
} from './soak-config.js';
import { Load, type Stored } from './soak-load.js';
import { activeResources, clientList, processListeners, snapshot } from './soak-probes.js';
import { flapServers, Timeline } from './soak-timeline.js';

if (typeof globalThis.gc !== 'function') {
  // Heap figures are only comparable after a full collection: run again with --expose-gc.
  const child = spawnSync(
    process.execPath,
    ['--expose-gc', ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)],
    { stdio: 'inherit' },
  );
  process.exit(child.status ?? 1);
}

function openRing(servers: readonly RedisServer[]): RingDict<Stored> {
  return new RingDict<Stored>({
    nodes: Object.fromEntries(
      servers.map((server, i) => [NAMES[i], { capacity: 1, connection: server.url }]),
    ),
    prefix: 'soak:',
    commandTimeout: COMMAND_TIMEOUT,
    heartbeatInterval: HEARTBEAT,
  });
}

async function allAlive(ring: RingDict<Stored>, timeoutMs: number): Promise<void> {
  const until = performance.now() + timeoutMs;
  while (!ring.nodeStates().every((s) => s.alive)) {
    if (performance.now() > until) throw new Error('not every node came back');
    await sleep(10);
  }
}

/**
 * The soak proper: the workers until the operation count and the duration are both reached
 * (or the time limit is), one node flapping meanwhile, progress every 5 s.
 */
async function soakUnderFlaps(
  servers: readonly RedisServer[],
  load: Load,
  options: Options,
  run: { deadline: number; warmup: number; timeline: Timeline },
): Promise<{ elapsedMs: number; timedOut: boolean }> {
  const target = load.ops + options.ops;
  let timedOut = false;
  const flapper = flapServers(servers, options, run.timeline);
  const started = performance.now();
  let lastReport = started;
  await load.run(() => {
    const now = performance.now();
    if (now > run.deadline) timedOut = true;
    if (now - lastReport > 5_000) {
      lastReport = now;
      console.log(
        `  ${((now - started) / 1000).toFixed(0)} s: ${load.ops - run.warmup} operations, ` +
          `heap ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(1)} MB`,
      );
    }
    return (load.ops >= target && now - started >= options.seconds * 1000) || timedOut;
  });
  const elapsedMs = performance.now() - started;
  await flapper.stop();
  return { elapsedMs, timedOut };
}

/** Every node back, rediscovered and settled, so the after-figures compare with the before. */
async function bringBack(servers: readonly RedisServer[], ring: RingDict<Stored>): Promise<void> {
  for (const server of servers) {
    if (server.isHung) server.resume();
    if (!server.running) await server.restart();
  }
  await allAlive(ring, 5_000);
  await sleep(4 * HEARTBEAT);
}

/** With every node back: the after-figures and each node's connections, against the bounds. */
async function measureAfter(
  servers: readonly RedisServer[],
  ring: RingDict<Stored>,
  measured: Omit<Measured, 'after' | 'connections'>,
): Promise<{ checks: Check[]; connections: string[][] }> {
  await bringBack(servers, ring);
  const after = await snapshot(ring as RingDict<unknown>);
  const connections = await Promise.all(servers.map((server) => clientList(server.port)));
  return { checks: boundChecks({ ...measured, after, connections }), connections };
}

/** What the process holds before the soak, so that only what the soak adds counts as a leak. */
function processBaseline(): {
  resources: Map<string, number>;
  warnings: string[];
  processListeners: number;
} {
  // Our own stdio handles are created on first use: create them now, so they count as "start".
  void process.stdout.writable;
  void process.stderr.writable;
  const resources = activeResources();
  const warnings: string[] = [];
  process.on('warning', (warning) => warnings.push(`${warning.name}: ${warning.message}`));
  return { resources, warnings, processListeners: processListeners() };
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  const deadline = performance.now() + options.timeLimit * 1000;
  const start = processBaseline();

  let fleet: RedisFleet | undefined;
  let dict: RingDict<Stored> | undefined;
  try {
    fleet = await startRedisServers(3);
    const servers = fleet.servers;
    const ring = openRing(servers);
    dict = ring;
    const timeline = new Timeline();
    timeline.follow(ring);
    await allAlive(ring, 5_000);

    const load = new Load(ring, options.concurrency, options.keys);
    console.log(describeRun(options));
    // Warm-up without flaps: connections, JIT, buffers; then the baseline.
    const warmup = Math.min(20_000, Math.floor(options.ops / 10));
    await load.run(() => load.ops >= warmup);
    const stopStallWatch = timeline.watchStalls();
    const before = await snapshot(ring as RingDict<unknown>);
    const run = await soakUnderFlaps(servers, load, options, { deadline, warmup, timeline });

    const { checks, connections } = await measureAfter(servers, ring, {
      ...run,
      options,
      done: load.ops - warmup,
      load,
      timeline,
      before,
      warnings: start.warnings,
    });

    stopStallWatch();
    await ring.close();
    dict = undefined;
    await fleet.stop();
    fleet = undefined;
    // Let closed sockets and exited children be reaped before counting.
    await sleep(100);
    checks.push(leftoverCheck(start.resources, start.processListeners));
    return report(checks, load, timeline, connections);
  } finally {
    await dict?.close();
    await fleet?.stop();
  }
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`\nsoak: ${signal}, stopping the servers`);
    void stopAllRedisServers().finally(() => process.exit(130));
  });
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  async (error: unknown) => {
    console.error('soak: crashed:', error);
    await stopAllRedisServers();
    process.exitCode = 1;
  },
);
