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
 * compiled tree: `tsc -p tsconfig.run.json && node .run/bench/soak.js`.
 */
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { RingDict } from '../lib/index.js';
import { redisCommand } from '../test/helpers/redis-command.js';
import { startRedisServers, type RedisFleet } from '../test/helpers/redis-fleet.js';
import { stopAllRedisServers } from '../test/helpers/redis-servers.js';

// ------------------------------------------------------------------------------ set-up

if (typeof globalThis.gc !== 'function') {
  // Heap figures are only comparable after a full collection: run again with --expose-gc.
  const child = spawnSync(
    process.execPath,
    ['--expose-gc', ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)],
    { stdio: 'inherit' },
  );
  process.exit(child.status ?? 1);
}

interface Options {
  ops: number;
  concurrency: number;
  keys: number;
  flapEvery: number;
  outage: number;
  heapBound: number;
  seconds: number;
  timeLimit: number;
}

function parseOptions(argv: readonly string[]): Options {
  const options: Options = {
    ops: 500_000,
    concurrency: 32,
    keys: 8192,
    flapEvery: 3_000,
    outage: 1_000,
    heapBound: 20,
    seconds: 60,
    timeLimit: 170,
  };
  const names: Record<string, keyof Options> = {
    '--ops': 'ops',
    '--concurrency': 'concurrency',
    '--keys': 'keys',
    '--flap-every': 'flapEvery',
    '--outage': 'outage',
    '--heap-bound': 'heapBound',
    '--seconds': 'seconds',
    '--time-limit': 'timeLimit',
  };
  for (const arg of argv) {
    const [name, value] = arg.split('=');
    const field = names[name];
    const number = Number(value);
    if (field === undefined || !Number.isFinite(number) || number <= 0) {
      console.error(`soak: unknown or invalid argument ${arg}\n${usage()}`);
      process.exit(2);
    }
    options[field] = number;
  }
  if (options.outage >= options.flapEvery) {
    console.error('soak: --outage must be shorter than --flap-every');
    process.exit(2);
  }
  return options;
}

function usage(): string {
  return (
    'usage: node --expose-gc .run/bench/soak.js [--ops=500000] [--concurrency=32] [--keys=8192] ' +
    '[--flap-every=3000] [--outage=1000] [--heap-bound=20] [--seconds=60] [--time-limit=170]'
  );
}

const COMMAND_TIMEOUT = 200;
const HEARTBEAT = 200;
const NAMES = ['node0', 'node1', 'node2'];
/** The goal for the slowest call: 2 × commandTimeout + 50 ms. */
const SLOW_CALL_MS = 2 * COMMAND_TIMEOUT + 50;
/** The dict's data connection, its fleet connection (RESP3: one) and this probe's own. */
const CONNECTIONS_PER_NODE = 3;
/** How often the stall watch ticks. */
const STALL_PERIOD_MS = 20;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function collect(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    globalThis.gc!();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

// ------------------------------------------------------------------------------ probes

/** Active resources keeping the loop alive, by type (timers, sockets, child processes…). */
function activeResources(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const type of process.getActiveResourcesInfo()) {
    counts.set(type, (counts.get(type) ?? 0) + 1);
  }
  // Handles that are unref()ed (the dict's heartbeat) are not in that list; these are.
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  counts.set('(all handles)', handles.length);
  return counts;
}

/**
 * Listeners on each node's ioredis client and its socket. ioredis clients are not part of
 * RingDict's API, so this reaches into its private membership — the only way to see them.
 */
function clientListeners(dict: RingDict<unknown>): number {
  const { membership } = dict as unknown as { membership: { all(): Iterable<{ client: Redis }> } };
  let total = 0;
  for (const { client } of membership.all()) {
    for (const event of client.eventNames()) total += client.listenerCount(event);
    const stream = client.stream as NodeJS.EventEmitter | undefined;
    if (stream) for (const event of stream.eventNames()) total += stream.listenerCount(event);
  }
  return total;
}

function processListeners(): number {
  return process.eventNames().reduce((sum, event) => sum + process.listenerCount(event), 0);
}

interface Snapshot {
  heapMB: number;
  resources: Map<string, number>;
  clientListeners: number;
  processListeners: number;
}

async function snapshot(dict: RingDict<unknown>): Promise<Snapshot> {
  await collect();
  return {
    heapMB: process.memoryUsage().heapUsed / 2 ** 20,
    resources: activeResources(),
    clientListeners: clientListeners(dict),
    processListeners: processListeners(),
  };
}

/** The lines of `CLIENT LIST` on a port: one per connection, this probe's own included. */
async function clientList(port: number): Promise<string[]> {
  const reply = await redisCommand(port, 'CLIENT', 'LIST');
  return reply.split('\n').filter((line) => line.trim().length > 0);
}

// ------------------------------------------------------------------------------ the load

interface Stored {
  w: number;
  k: number;
  v: number;
}

class Load {
  ops = 0;
  errors = 0;
  errorSamples: string[] = [];
  stale = 0;
  neverWritten = 0;
  misses = 0;
  slowestMs = 0;
  /** Calls slower than the goal: when (performance.now()), how long, which operation. */
  slowCalls: { at: number; ms: number; op: string }[] = [];
  private readonly acked: Int32Array;
  private readonly deleted: Uint8Array;
  private readonly next: Int32Array;
  private readonly keysPerWorker: number;

  constructor(
    private readonly dict: RingDict<Stored>,
    private readonly workers: number,
    keys: number,
  ) {
    this.keysPerWorker = Math.max(1, Math.floor(keys / workers));
    const total = this.keysPerWorker * workers;
    this.acked = new Int32Array(total);
    this.deleted = new Uint8Array(total);
    this.next = new Int32Array(total).fill(1);
  }

  /** Runs the workers until `until()` says stop; resolves when their last calls are done. */
  async run(until: () => boolean): Promise<void> {
    await Promise.all(Array.from({ length: this.workers }, (_, w) => this.worker(w, until)));
  }

  private check(w: number, k: number, slot: number, value: Stored | undefined): void {
    if (value === undefined) {
      this.misses++;
      return;
    }
    if (value.w !== w || value.k !== k || !(value.v > 0) || value.v >= this.next[slot]) {
      this.neverWritten++;
    } else if (value.v < this.acked[slot] || (value.v === this.acked[slot] && this.deleted[slot])) {
      this.stale++;
    }
  }

  private async worker(w: number, until: () => boolean): Promise<void> {
    while (!until()) {
      const k = Math.floor(Math.random() * this.keysPerWorker);
      const slot = w * this.keysPerWorker + k;
      const key = `w${w}:k${k}`;
      const dice = Math.random();
      const start = performance.now();
      try {
        if (dice < 0.5) {
          this.check(w, k, slot, await this.dict.get(key));
        } else if (dice < 0.95) {
          const v = this.next[slot]++;
          await this.dict.set(key, { w, k, v });
          this.acked[slot] = v;
          this.deleted[slot] = 0;
        } else {
          const v = this.next[slot]++;
          await this.dict.delete(key);
          this.acked[slot] = v;
          this.deleted[slot] = 1;
        }
      } catch (error) {
        // A set that threw may have landed: accept any version from here on.
        this.acked[slot] = 0;
        this.deleted[slot] = 0;
        this.errors++;
        if (this.errorSamples.length < 5) this.errorSamples.push(String(error));
        await sleep(5);
      } finally {
        this.ops++;
        const ms = performance.now() - start;
        this.slowestMs = Math.max(this.slowestMs, ms);
        if (ms > SLOW_CALL_MS && this.slowCalls.length < 100) {
          this.slowCalls.push({
            at: start,
            ms,
            op: dice < 0.5 ? 'get' : dice < 0.95 ? 'set' : 'delete',
          });
        }
      }
    }
  }
}

// ------------------------------------------------------------------------------ the soak

interface Check {
  name: string;
  bound: string;
  measured: string;
  ok: boolean;
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  const deadline = performance.now() + options.timeLimit * 1000;
  // Our own stdio handles are created on first use: create them now, so they count as "start".
  void process.stdout.writable;
  void process.stderr.writable;
  const resourcesAtStart = activeResources();
  const warnings: string[] = [];
  process.on('warning', (warning) => warnings.push(`${warning.name}: ${warning.message}`));
  const processListenersAtStart = processListeners();

  let fleet: RedisFleet | undefined;
  let dict: RingDict<Stored> | undefined;
  try {
    fleet = await startRedisServers(3);
    const servers = fleet.servers;
    const ring = new RingDict<Stored>({
      nodes: Object.fromEntries(
        servers.map((server, i) => [NAMES[i], { capacity: 1, connection: server.url }]),
      ),
      prefix: 'soak:',
      commandTimeout: COMMAND_TIMEOUT,
      heartbeatInterval: HEARTBEAT,
    });
    dict = ring;
    const flaps = { kill: 0, hang: 0, ejected: 0, rediscovered: 0 };
    /** What happened when, to explain slow calls. */
    const timeline: { at: number; what: string }[] = [];
    const log = (what: string) => timeline.push({ at: performance.now(), what });
    ring.events$.subscribe((event) => {
      log(`${event.type}${event.node ? ` ${event.node}` : ''}`);
      if (event.type === 'ejected') flaps.ejected++;
      if (event.type === 'rediscovered') flaps.rediscovered++;
    });
    const allAlive = async (timeoutMs: number) => {
      const until = performance.now() + timeoutMs;
      while (!ring.nodeStates().every((s) => s.alive)) {
        if (performance.now() > until) throw new Error('not every node came back');
        await sleep(10);
      }
    };
    await allAlive(5_000);

    const load = new Load(ring, options.concurrency, options.keys);
    console.log(
      `soak: ≥ ${options.ops} operations and ≥ ${options.seconds} s, ${options.concurrency} workers, ${options.keys} keys, ` +
        `one node flapping every ${options.flapEvery} ms (${options.outage} ms down), ` +
        `commandTimeout ${COMMAND_TIMEOUT} ms, heartbeat ${HEARTBEAT} ms`,
    );

    // Warm-up without flaps: connections, JIT, buffers; then the baseline.
    const warmup = Math.min(20_000, Math.floor(options.ops / 10));
    await load.run(() => load.ops >= warmup);
    // Event-loop stalls explain slow calls (and, past commandTimeout, ejections): log them.
    let tick = performance.now();
    let worstStall = 0;
    const stallWatch = setInterval(() => {
      const now = performance.now();
      const stall = now - tick - STALL_PERIOD_MS;
      tick = now;
      worstStall = Math.max(worstStall, stall);
      if (stall > COMMAND_TIMEOUT / 2) log(`event loop stalled ${stall.toFixed(0)} ms`);
    }, STALL_PERIOD_MS);
    const before = await snapshot(ring as RingDict<unknown>);

    // The soak: workers until the operation count, one node flapping meanwhile.
    const target = load.ops + options.ops;
    let running = true;
    let timedOut = false;
    const flapper = (async () => {
      for (let n = 0; running; n++) {
        await sleep(options.flapEvery - options.outage);
        if (!running) break;
        const server = servers[n % servers.length];
        if (n % 2 === 0) {
          flaps.kill++;
          log(`SIGKILL ${NAMES[n % servers.length]}`);
          await server.kill();
          await sleep(options.outage);
          await server.restart();
          log(`restarted ${NAMES[n % servers.length]}`);
        } else {
          flaps.hang++;
          log(`SIGSTOP ${NAMES[n % servers.length]}`);
          server.hang();
          await sleep(options.outage);
          server.resume();
          log(`SIGCONT ${NAMES[n % servers.length]}`);
        }
      }
    })();
    const started = performance.now();
    let lastReport = started;
    await load.run(() => {
      const now = performance.now();
      if (now > deadline) timedOut = true;
      if (now - lastReport > 5_000) {
        lastReport = now;
        console.log(
          `  ${((now - started) / 1000).toFixed(0)} s: ${load.ops - warmup} operations, ` +
            `heap ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(1)} MB`,
        );
      }
      return (load.ops >= target && now - started >= options.seconds * 1000) || timedOut;
    });
    const elapsed = performance.now() - started;
    running = false;
    await flapper;

    // Every node back, rediscovered and settled; then the same measurements.
    for (const server of servers) {
      if (server.isHung) server.resume();
      if (!server.running) await server.restart();
    }
    await allAlive(5_000);
    await sleep(4 * HEARTBEAT);
    const after = await snapshot(ring as RingDict<unknown>);
    const connections = await Promise.all(servers.map((server) => clientList(server.port)));

    // ------------------------------------------------------------------ the bounds
    const checks: Check[] = [];
    const add = (name: string, bound: string, measured: string, ok: boolean) =>
      checks.push({ name, bound, measured, ok });
    const done = load.ops - warmup;
    add(
      'operations',
      `≥ ${options.ops}, ≥ ${options.seconds} s, within ${options.timeLimit} s`,
      `${done} in ${(elapsed / 1000).toFixed(1)} s (${Math.round(done / (elapsed / 1000))}/s)`,
      done >= options.ops && !timedOut,
    );
    add(
      'flaps',
      '≥ 1 kill and ≥ 1 hang',
      `${flaps.kill} kill+restart, ${flaps.hang} hang+resume; ${flaps.ejected} ejections, ${flaps.rediscovered} rediscoveries`,
      flaps.kill >= 1 && flaps.hang >= 1,
    );
    const growth = after.heapMB - before.heapMB;
    add(
      'heap used (after gc)',
      `≤ before + ${options.heapBound} MB`,
      `${before.heapMB.toFixed(1)} → ${after.heapMB.toFixed(1)} MB (${growth >= 0 ? '+' : ''}${growth.toFixed(1)} MB)`,
      growth <= options.heapBound,
    );
    const types = new Set([...before.resources.keys(), ...after.resources.keys()]);
    const grown = [...types].filter(
      (type) => (after.resources.get(type) ?? 0) > (before.resources.get(type) ?? 0),
    );
    add(
      'active handles and timers',
      'no growth, by type',
      [...types]
        .sort()
        .map((t) => `${t} ${before.resources.get(t) ?? 0}→${after.resources.get(t) ?? 0}`)
        .join(', '),
      grown.length === 0,
    );
    add(
      'listeners on the nodes’ clients and sockets',
      'no growth',
      `${before.clientListeners} → ${after.clientListeners}`,
      after.clientListeners <= before.clientListeners,
    );
    add(
      'listeners on process',
      'no growth',
      `${before.processListeners} → ${after.processListeners}`,
      after.processListeners <= before.processListeners,
    );
    const leakWarnings = warnings.filter((w) => w.startsWith('MaxListenersExceededWarning'));
    add(
      'listener-leak warnings',
      '0',
      leakWarnings.length === 0 ? '0' : `${leakWarnings.length}: ${leakWarnings[0]}`,
      leakWarnings.length === 0,
    );
    add(
      'connections per node (CLIENT LIST)',
      `exactly ${CONNECTIONS_PER_NODE}: the dict’s data and fleet connections + this probe’s`,
      connections.map((lines, i) => `${NAMES[i]} ${lines.length}`).join(', '),
      connections.every((lines) => lines.length === CONNECTIONS_PER_NODE),
    );
    add(
      'calls that threw (two nodes always alive)',
      '0',
      load.errors === 0 ? '0' : `${load.errors}, e.g. ${load.errorSamples[0]}`,
      load.errors === 0,
    );
    add('stale reads', '0', String(load.stale), load.stale === 0);
    add('values never written', '0', String(load.neverWritten), load.neverWritten === 0);
    add(
      'slowest call',
      `info (goal ≤ ${2 * COMMAND_TIMEOUT + 50} ms)`,
      `${load.slowestMs.toFixed(0)} ms`,
      true,
    );
    add('misses', 'info (keys lost with a killed node)', String(load.misses), true);
    add('worst event-loop stall', 'info', `${worstStall.toFixed(0)} ms`, true);

    clearInterval(stallWatch);
    await ring.close();
    dict = undefined;
    await fleet.stop();
    fleet = undefined;
    // Let closed sockets and exited children be reaped before counting.
    await sleep(100);
    const resourcesAtEnd = activeResources();
    const leftover = [...resourcesAtEnd].filter(
      ([type, count]) => count > (resourcesAtStart.get(type) ?? 0),
    );
    add(
      'after close() and stopping the servers',
      'the handles of the start',
      leftover.length === 0 ? 'none left' : leftover.map(([t, c]) => `${t} ${c}`).join(', '),
      // +1: the server helper's own 'exit' safety net, installed with the first server.
      leftover.length === 0 && processListeners() <= processListenersAtStart + 1,
    );

    printChecks(checks);
    if (load.slowCalls.length > 0) {
      console.log(
        `\nCalls slower than ${SLOW_CALL_MS} ms, with what happened in the second before:`,
      );
      const slowest = [...load.slowCalls].sort((x, y) => y.ms - x.ms).slice(0, 5);
      for (const call of slowest) {
        const context = timeline
          .filter((e) => e.at >= call.at - 1_000 && e.at <= call.at + call.ms)
          .map((e) => `${e.what} at ${(e.at - call.at).toFixed(0)} ms`)
          .join(', ');
        console.log(`  ${call.op} ${call.ms.toFixed(0)} ms (${context || 'nothing'})`);
      }
    }
    const broken = checks.filter((c) => !c.ok);
    if (broken.length > 0) {
      console.log(`\nsoak: FAILED — ${broken.map((c) => c.name).join('; ')}`);
      if (connections.some((lines) => lines.length !== CONNECTIONS_PER_NODE)) {
        console.log(
          connections.map((lines, i) => `${NAMES[i]}:\n  ${lines.join('\n  ')}`).join('\n'),
        );
      }
      return 1;
    }
    console.log('\nsoak: every bound held');
    return 0;
  } finally {
    await dict?.close();
    await fleet?.stop();
  }
}

function printChecks(checks: readonly Check[]): void {
  console.log('\n| check | bound | measured | |');
  console.log('|---|---|---|---|');
  for (const c of checks) {
    console.log(`| ${c.name} | ${c.bound} | ${c.measured} | ${c.ok ? 'ok' : 'BROKEN'} |`);
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
