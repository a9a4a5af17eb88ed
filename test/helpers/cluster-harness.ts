/**
 * The orchestrator's side of the cross-process chaos harness: worker processes (see
 * cluster-worker.ts) and, for each of them, one TCP proxy per node (see tcp-proxy.ts), so a
 * fault can hit one process's path to a node while the others still reach it.
 *
 * Workers run the compiled tree (`.run/`, built by `scripts/compile-run.mjs`, which the test
 * setup and the npm scripts run), as any child process of the tests does. Every worker is
 * registered with the helpers' process registry: whatever happens to the run, each is killed
 * by its own pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  now,
  type LoadMode,
  type WorkerCommand,
  type WorkerConfig,
  type WorkerLog,
  type WorkerNodes,
  type WorkerNotice,
  type WorkerReply,
  type WorkerStatus,
} from './cluster-protocol.js';
import { exitedWithin, installExitHandler, liveChildren } from './process-registry.js';
import { TcpProxy } from './tcp-proxy.js';

/** How long a worker may take to start, connect and answer its first reads. */
const READY_TIMEOUT_MS = 15_000;
/** How long any command may take (a sweep of a few thousand keys included). */
const COMMAND_TIMEOUT_MS = 30_000;
/** How much of a worker's stderr is kept for the error that says why it died. */
const STDERR_TAIL_CHARS = 4_000;
/** How long, after a worker exited, its stderr may take to drain into that error. */
const STDERR_DRAIN_MS = 1_000;

/** The compiled worker, wherever this module runs from (the source tree or `.run/`). */
function workerScript(): { script: string; root: string } {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const compiled = /[\\/]\.run[\\/]test[\\/]helpers[\\/]$/.test(here);
  const root = fileURLToPath(new URL(compiled ? '../../../' : '../../', import.meta.url));
  const script = compiled
    ? `${here}cluster-worker.js`
    : fileURLToPath(new URL('../../.run/test/helpers/cluster-worker.js', import.meta.url));
  if (!existsSync(script)) {
    throw new Error(`${script} is missing: compile first (node scripts/compile-run.mjs)`);
  }
  return { script, root };
}

/** One worker process and a request/reply channel to it. */
export class WorkerProcess {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  #nextId = 1;
  #exited: Promise<void>;
  /** Exited and its stderr drained ('close'). */
  #closed: Promise<void>;
  #hasExited = false;
  #fatal?: string;
  #exit?: { code: number | null; signal: NodeJS.Signals | null };
  /** The last STDERR_TAIL_CHARS of the worker's stderr (which is still passed on to ours). */
  #stderrTail = '';

  private constructor(
    readonly id: number,
    child: ChildProcess,
  ) {
    this.#child = child;
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#hasExited = true;
        this.#exit = { code, signal };
        liveChildren.delete(child);
        const why = this.#fatal ?? `worker ${id} exited (${this.#exitReport()})`;
        for (const { reject } of this.#pending.values()) reject(new Error(why));
        this.#pending.clear();
        resolve();
      });
    });
    this.#closed = new Promise((resolve) => child.once('close', () => resolve()));
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      process.stderr.write(chunk);
      this.#stderrTail = (this.#stderrTail + chunk).slice(-STDERR_TAIL_CHARS);
    });
    child.on('message', (message: WorkerReply | WorkerNotice) => {
      if ('type' in message) {
        if (message.type === 'fatal') this.#fatal = message.error;
        return;
      }
      const waiting = this.#pending.get(message.id);
      if (!waiting) return;
      this.#pending.delete(message.id);
      if (message.ok) waiting.resolve(message.result);
      else waiting.reject(new Error(`worker ${id}: ${message.error}`));
    });
  }

  /** Spawns a worker and resolves once its dict is connected. */
  static async spawn(config: WorkerConfig): Promise<WorkerProcess> {
    installExitHandler();
    const { script, root } = workerScript();
    const child = spawn(
      process.execPath,
      ['--enable-source-maps', script, JSON.stringify(config)],
      {
        cwd: root,
        // stderr piped (and passed on): its tail says why a worker died.
        stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
        // Typed arrays cross as such, not as JSON objects of numbers.
        serialization: 'advanced',
      },
    );
    if (child.pid !== undefined && child.pid > 0) liveChildren.add(child);
    const worker = new WorkerProcess(config.id, child);
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`worker ${config.id} not ready in ${READY_TIMEOUT_MS} ms`)),
        READY_TIMEOUT_MS,
      );
      child.on('message', (message: WorkerNotice | WorkerReply) => {
        if ('type' in message && message.type === 'ready') {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      void worker.#exited.then(async () => {
        clearTimeout(timer);
        await exitedWithin(worker.#closed, STDERR_DRAIN_MS);
        reject(
          new Error(`worker ${config.id} exited before it was ready (${worker.#exitReport()})`),
        );
      });
    });
    try {
      await ready;
    } catch (error) {
      await worker.kill();
      throw error;
    }
    return worker;
  }

  /** How the worker ended: exit code, signal, and the tail of its stderr. */
  #exitReport(): string {
    const { code = null, signal = null } = this.#exit ?? {};
    const stderr = this.#stderrTail.trim();
    return `code ${code}, signal ${signal}; ${stderr ? `stderr:\n${stderr}` : 'no stderr'}`;
  }

  get pid(): number {
    return this.#child.pid ?? 0;
  }

  request<T = undefined>(command: WorkerCommand, timeoutMs = COMMAND_TIMEOUT_MS): Promise<T> {
    if (this.#hasExited) return Promise.reject(new Error(`worker ${this.id} has exited`));
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`worker ${this.id}: no answer to ${command.cmd} in ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value as T);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.#child.send({ ...command, id });
    });
  }

  /** Closes the dict and lets the process exit; SIGKILL (by pid) if it does not in time. */
  async stop(): Promise<void> {
    if (this.#hasExited) return;
    try {
      await this.request({ cmd: 'close' }, 5_000);
    } catch {
      // Stuck or gone: killed below.
    }
    if (!(await exitedWithin(this.#exited))) await this.kill();
  }

  async kill(): Promise<void> {
    if (this.#hasExited) return;
    const pid = this.pid;
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
      }
    }
    await this.#exited;
  }
}

/** Where a node is: a redis-server port (proxied per worker), or a connection used as is. */
export type NodeTarget = { port: number } | { connection: object };

export interface StageOptions {
  workers: number;
  /** Every worker's configuration but its id and nodes. */
  worker: Omit<WorkerConfig, 'id' | 'nodes'>;
  /** The nodes the workers start with (default: every target; the rest are for setNodes). */
  nodes?: readonly string[];
}

/**
 * The workers of one scenario and their proxies: `proxy(w, node)` is worker w's path to
 * `node`. Nodes given as a connection (a Sentinel group) are reached directly.
 */
export class Stage {
  private constructor(
    readonly workers: WorkerProcess[],
    private readonly proxies: Map<string, TcpProxy>[],
    /** Sent clock offsets: worker clock minus ours, and the uncertainty of each, ms. */
    readonly clockOffsets: { offset: number; uncertainty: number }[],
  ) {}

  static async open(targets: Record<string, NodeTarget>, options: StageOptions): Promise<Stage> {
    const proxies: Map<string, TcpProxy>[] = [];
    const workers: WorkerProcess[] = [];
    try {
      for (let w = 0; w < options.workers; w++) {
        const mine = new Map<string, TcpProxy>();
        proxies.push(mine);
        for (const [name, target] of Object.entries(targets)) {
          if ('port' in target) mine.set(name, await TcpProxy.start(target.port));
        }
      }
      const configs = proxies.map((mine, w): WorkerConfig => {
        const nodes: WorkerNodes = {};
        for (const [name, target] of Object.entries(targets)) {
          if (options.nodes !== undefined && !options.nodes.includes(name)) continue;
          const connection = 'port' in target ? mine.get(name)!.url : target.connection;
          nodes[name] = { capacity: 1, connection };
        }
        return { ...options.worker, id: w + 1, nodes };
      });
      // One at a time: starting a few Node processes at once on two cores makes each slow
      // enough to time its first connections out.
      for (const config of configs) workers.push(await WorkerProcess.spawn(config));
      const clockOffsets = [];
      for (const worker of workers) clockOffsets.push(await clockOffset(worker));
      return new Stage(workers, proxies, clockOffsets);
    } catch (error) {
      await Promise.all(workers.map((worker) => worker.stop()));
      await Promise.all(proxies.flatMap((mine) => [...mine.values()].map((p) => p.close())));
      throw error;
    }
  }

  /** Worker w's proxy to `node` (w counts from 0). */
  proxy(w: number, node: string): TcpProxy {
    const proxy = this.proxies[w]?.get(node);
    if (!proxy) throw new Error(`no proxy for worker ${w} to ${node}`);
    return proxy;
  }

  /** Every worker's proxy to `node`. */
  proxiesTo(node: string): TcpProxy[] {
    return this.proxies.map((_, w) => this.proxy(w, node));
  }

  all<T = undefined>(command: WorkerCommand, timeoutMs?: number): Promise<T[]> {
    return Promise.all(this.workers.map((worker) => worker.request<T>(command, timeoutMs)));
  }

  load(mode: LoadMode): Promise<void[]> {
    return this.all({ cmd: 'load', mode });
  }

  status(): Promise<WorkerStatus[]> {
    return this.all<WorkerStatus>({ cmd: 'status' });
  }

  /** Waits until every worker sees every node alive; answers whether that happened in time. */
  async allAlive(timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const statuses = await this.status();
      if (statuses.every((s) => s.nodes.every((node) => node.alive))) return true;
      if (performance.now() > deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** Worker w's dict changes its nodes (`setNodes`) to `names`, each through w's proxy. */
  setNodes(w: number, names: readonly string[]): Promise<void> {
    const nodes: WorkerNodes = {};
    for (const name of names) nodes[name] = { capacity: 1, connection: this.proxy(w, name).url };
    return this.workers[w].request({ cmd: 'setNodes', nodes });
  }

  collect(): Promise<WorkerLog[]> {
    return this.all<WorkerLog>({ cmd: 'collect' });
  }

  /** Stops every worker (by pid if need be) and closes every proxy. */
  async close(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.stop()));
    await Promise.all(this.proxies.flatMap((mine) => [...mine.values()].map((p) => p.close())));
  }
}

/** The worker's clock minus ours, from one round trip, and how sure that is (half the trip). */
export async function clockOffset(
  worker: WorkerProcess,
): Promise<{ offset: number; uncertainty: number }> {
  let best = { offset: 0, uncertainty: Infinity };
  for (let i = 0; i < 5; i++) {
    const sent = now();
    const status = await worker.request<WorkerStatus>({ cmd: 'status' });
    const back = now();
    const uncertainty = (back - sent) / 2;
    if (uncertainty < best.uncertainty)
      best = { offset: status.now - (sent + back) / 2, uncertainty };
  }
  return best;
}
