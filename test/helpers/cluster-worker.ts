/**
 * One application process of the cross-process chaos harness. Started by the orchestrator
 * (cluster-harness.ts) from the compiled tree with its configuration as JSON in argv[2]; it
 * builds a RingDict over ITS OWN proxies (one per node), so the orchestrator can break this
 * process's path to a node while the others still reach it.
 *
 * It runs versioned calls on a shared key space and logs every one (key, kind, version written
 * or read, start and end on a clock shared by the processes, outcome): a write stores
 * `{ k, v, w, s }` (key, start time, writer, sequence number), so the analyser can tell which
 * write a read saw. It obeys the orchestrator over IPC: load (read/write or read-only), stop,
 * status, stall (a synchronous busy loop, as a long synchronous task makes), sweep (read every
 * key once), collect (answer the log), close.
 *
 * It uses only the engine's public API (constructor, get/set/delete, events$, nodeStates,
 * close), so it measures whatever engine is compiled.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { RingDict } from '../../lib/core/index.js';
import {
  keyName,
  now,
  OpLog,
  valueKeyOf,
  type LoadMode,
  type StoredVersion,
  type WorkerCommand,
  type WorkerConfig,
  type WorkerNotice,
  type WorkerReply,
  type WorkerRequest,
  type WorkerStatus,
} from './cluster-protocol.js';
import { sleep } from './wait.js';

/** After a call threw, a loop pauses this long: with no node alive, calls fail in a tight loop. */
const PAUSE_AFTER_ERROR_MS = 5;

const config = JSON.parse(process.argv[2] ?? 'null') as WorkerConfig | null;
if (config === null || typeof process.send !== 'function') {
  console.error('cluster-worker: run by the chaos orchestrator (IPC and a JSON config in argv)');
  process.exit(2);
}

function notify(message: WorkerNotice | WorkerReply): void {
  process.send?.(message);
}

class Worker {
  readonly log: OpLog;
  readonly dict: RingDict<StoredVersion>;
  #mode: LoadMode | 'idle' = 'idle';
  #loops: Promise<void>[] = [];
  #seq = 0;
  #inFlight = 0;

  constructor(private readonly config: WorkerConfig) {
    this.log = new OpLog(config.id, config.maxRecords);
    this.dict = new RingDict<StoredVersion>({
      nodes: config.nodes as ConstructorParameters<typeof RingDict>[0]['nodes'],
      prefix: config.prefix,
      ...config.dict,
    });
    this.dict.events$.subscribe((event) => {
      // Bounded: a flapping run makes a few hundred at most.
      if (this.log.events.length < 10_000) {
        this.log.events.push({ type: event.type, node: event.node, at: now() });
      }
    });
  }

  status(): WorkerStatus {
    return {
      now: now(),
      nodes: this.dict.nodeStates().map(({ name, alive, invalidation }) => ({
        name,
        alive,
        ...(invalidation === undefined ? {} : { invalidation }),
      })),
      inFlight: this.#inFlight,
    };
  }

  /** Starts the load in `mode`, or switches the running load to it. */
  load(mode: LoadMode): void {
    const running = this.#mode !== 'idle';
    this.#mode = mode;
    if (running) return;
    this.#loops = Array.from({ length: this.config.concurrency }, () => this.#loop());
  }

  /** Stops the load; resolves once every call in flight has settled. */
  async stop(): Promise<void> {
    this.#mode = 'idle';
    await Promise.all(this.#loops);
    this.#loops = [];
  }

  /** Blocks the event loop for `ms`, as a long synchronous task would. */
  stall(ms: number): void {
    const start = now();
    const until = performance.now() + ms;
    while (performance.now() < until) {
      // Busy: no timer, no I/O callback, no reply is handled meanwhile.
    }
    this.log.stalls.push({ start, end: now() });
  }

  /** Reads every key once, `concurrency` at a time. */
  async sweep(): Promise<void> {
    let next = 0;
    const reader = async (): Promise<void> => {
      while (next < this.config.keys) await this.#get(next++, 'sweep');
    };
    await Promise.all(Array.from({ length: this.config.concurrency }, reader));
  }

  async #loop(): Promise<void> {
    const { keys, setRatio, deleteRatio } = this.config;
    while (this.#mode !== 'idle' && !this.log.full) {
      const key = Math.floor(Math.random() * keys);
      const dice = this.#mode === 'ro' ? 1 : Math.random();
      let ok: boolean;
      if (dice < setRatio) ok = await this.#set(key);
      else if (dice < setRatio + deleteRatio) ok = await this.#delete(key);
      else ok = await this.#get(key, 'get');
      if (!ok) await sleep(PAUSE_AFTER_ERROR_MS);
    }
  }

  async #get(key: number, kind: 'get' | 'sweep'): Promise<boolean> {
    const start = now();
    this.#inFlight++;
    try {
      const value = await this.dict.get(keyName(key));
      const end = now();
      if (value === undefined) {
        this.log.add(key, kind, 'miss', start, end);
      } else {
        const { valueKey, version } = valueKeyOf(value);
        this.log.add(key, kind, 'ok', start, end, version, valueKey);
      }
      return true;
    } catch (error) {
      this.log.add(key, kind, 'error', start, now());
      this.log.error(error);
      return false;
    } finally {
      this.#inFlight--;
    }
  }

  async #set(key: number): Promise<boolean> {
    const start = now();
    const version = { w: this.config.id, s: ++this.#seq };
    this.#inFlight++;
    try {
      await this.dict.set(keyName(key), { k: keyName(key), v: start, ...version });
      this.log.add(key, 'set', 'ok', start, now(), version);
      return true;
    } catch (error) {
      this.log.add(key, 'set', 'error', start, now(), version);
      this.log.error(error);
      return false;
    } finally {
      this.#inFlight--;
    }
  }

  async #delete(key: number): Promise<boolean> {
    const start = now();
    this.#inFlight++;
    try {
      await this.dict.delete(keyName(key));
      this.log.add(key, 'delete', 'ok', start, now());
      return true;
    } catch (error) {
      this.log.add(key, 'delete', 'error', start, now());
      this.log.error(error);
      return false;
    } finally {
      this.#inFlight--;
    }
  }
}

const worker = new Worker(config);
// A worker starved of CPU stalls like one asked to: the report says how long it was held up.
const lag = monitorEventLoopDelay({ resolution: 10 });
lag.enable();
let loadStarted = false;
/** Gaps of the event loop over this long are logged with their time, to set beside events. */
const GAP_MS = 100;
let lastTick = now();
setInterval(() => {
  const at = now();
  if (at - lastTick > GAP_MS && loadStarted && worker.log.gaps.length < 100) {
    worker.log.gaps.push({ start: lastTick, end: at });
  }
  lastTick = at;
}, 10).unref();

async function run(command: WorkerCommand): Promise<unknown> {
  switch (command.cmd) {
    case 'load':
      // Stalls of the start-up (loading modules, connecting) are not the run's.
      if (!loadStarted) lag.reset();
      loadStarted = true;
      worker.load(command.mode);
      return undefined;
    case 'stop':
      await worker.stop();
      return undefined;
    case 'status':
      return worker.status();
    case 'stall':
      worker.stall(command.ms);
      return undefined;
    case 'sweep':
      await worker.sweep();
      return undefined;
    case 'collect':
      return worker.log.snapshot(lag.max / 1e6);
    case 'setNodes':
      await worker.dict.setNodes(command.nodes);
      return undefined;
    case 'close':
      await worker.stop();
      await worker.dict.close();
      // Answered before exiting: the orchestrator waits for the exit itself.
      setImmediate(() => process.exit(0));
      return undefined;
  }
}

process.on('message', (request: WorkerRequest) => {
  run(request).then(
    (result) => notify({ id: request.id, ok: true, result }),
    (error: unknown) => notify({ id: request.id, ok: false, error: String(error) }),
  );
});

// The orchestrator is gone (crashed, killed): nothing is left to report to.
process.on('disconnect', () => process.exit(1));

// Connections first, so the first measured calls do not pay for them: a few reads on every node.
await Promise.all(
  Array.from({ length: Math.min(config.keys, 64) }, (_, i) =>
    worker.dict.get(keyName(i)).catch(() => undefined),
  ),
);
notify({ type: 'ready' });
