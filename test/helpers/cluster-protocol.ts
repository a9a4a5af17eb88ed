/**
 * What the chaos orchestrator and its worker processes say to each other over IPC, and the
 * compact log a worker keeps of its calls. Shared by both sides (and by nothing else), so a
 * message or a log column cannot mean one thing on one side and another on the other.
 */
import type { OpKind, OpOutcome, OpRecord } from './stale-analyser.js';

/** A ring node's configuration as JSON can carry it (a RingNodesConfig, structurally). */
export type WorkerNodes = Record<string, { capacity: number; connection: string | object }>;

/** RingDict options a worker passes through (JSON-safe ones only). */
export interface WorkerDictOptions {
  commandTimeout: number;
  heartbeatInterval: number;
  expire?: number;
  retryRatio?: number;
  warmUpWindow?: number;
  /** A rolling change of membership: the nodes the other kind of process still uses. */
  migration?: { from: WorkerNodes; until: number };
  /** Copies of each entry (RingDict `replicas`). */
  replicas?: number;
  /** The near cache, on with these bounds (off when absent). */
  nearCache?: { maxEntries?: number; maxBytes?: number };
}

export interface WorkerConfig {
  /** The worker's number: the `writer` of every version it writes. */
  id: number;
  nodes: WorkerNodes;
  prefix: string;
  /** Keys `k0` … `k<keys-1>`. */
  keys: number;
  /** Calls kept in flight at once. */
  concurrency: number;
  /** In read/write load: the share of calls that are sets, and of deletes (the rest: gets). */
  setRatio: number;
  deleteRatio: number;
  dict: WorkerDictOptions;
  /** Calls logged at most; past it the load stops (and the log says it was truncated). */
  maxRecords: number;
}

/** `rw`: gets, sets and deletes; `ro`: gets only. */
export type LoadMode = 'rw' | 'ro';

export type WorkerCommand =
  | { cmd: 'load'; mode: LoadMode }
  | { cmd: 'stop' }
  | { cmd: 'status' }
  | { cmd: 'stall'; ms: number }
  | { cmd: 'sweep' }
  | { cmd: 'collect' }
  | { cmd: 'setNodes'; nodes: WorkerNodes }
  | { cmd: 'close' };

export type WorkerRequest = WorkerCommand & { id: number };

export type WorkerReply =
  { id: number; ok: true; result?: unknown } | { id: number; ok: false; error: string };

/** Sent unasked: the dict is built and connected; or the worker failed for good. */
export type WorkerNotice = { type: 'ready' } | { type: 'fatal'; error: string };

export interface WorkerStatus {
  /** The worker's clock (see `now()`) when it answered. */
  now: number;
  /** `invalidation`: with a near cache, whether the node's invalidation channel is up. */
  nodes: { name: string; alive: boolean; invalidation?: 'up' | 'down' }[];
  /** Calls started and not yet settled. */
  inFlight: number;
}

export interface WorkerEvent {
  type: string;
  node?: string;
  at: number;
}

/** A stall the worker was asked for: when its busy loop began and ended. */
export interface WorkerStall {
  start: number;
  end: number;
}

/** What `collect` answers: the calls in columns (typed arrays cross IPC cheaply). */
export interface WorkerLog {
  worker: number;
  count: number;
  key: Int32Array;
  kind: Uint8Array;
  outcome: Uint8Array;
  /** The version written (set) or read (get, sweep); -1: none. */
  writer: Int32Array;
  seq: Int32Array;
  /** Key number named inside the value read; -1 none; -2 a value not in our shape. */
  valueKey: Int32Array;
  start: Float64Array;
  end: Float64Array;
  truncated: boolean;
  /** Errors thrown, by message (numbers stripped), and how often. */
  errors: Record<string, number>;
  events: WorkerEvent[];
  stalls: WorkerStall[];
  /** The longest the worker's event loop was held up (its own stalls included), ms. */
  maxLagMs: number;
  /** When its event loop was held up for long (> 100 ms), and how long (bounded). */
  gaps: WorkerStall[];
}

/** The value every write stores: its key, its start time, writer and sequence number. */
export interface StoredVersion {
  k: string;
  v: number;
  w: number;
  s: number;
}

/**
 * Milliseconds on the process's clock: the epoch time of its start plus the monotonic time
 * since. Two processes' clocks agree only to within how late each read the epoch time as it
 * started (about 10 ms measured on a loaded machine), so the orchestrator measures each
 * worker's offset and moves its log onto its own clock (`moveToClock`).
 */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

/** Moves every time in `log` by −`offset` ms: from the worker's clock onto the orchestrator's. */
export function moveToClock(log: WorkerLog, offset: number): void {
  for (let i = 0; i < log.count; i++) {
    log.start[i] -= offset;
    log.end[i] -= offset;
  }
  for (const event of log.events) event.at -= offset;
  for (const span of [...log.stalls, ...log.gaps]) {
    span.start -= offset;
    span.end -= offset;
  }
}

export function keyName(index: number): string {
  return `k${index}`;
}

export const KINDS: readonly OpKind[] = ['get', 'set', 'delete', 'sweep'];
export const OUTCOMES: readonly OpOutcome[] = ['ok', 'miss', 'error'];
const UNSHAPED = -2;

/** A worker's log of calls, in growable columns, bounded by `limit` calls. */
export class OpLog {
  count = 0;
  truncated = false;
  readonly errors: Record<string, number> = {};
  readonly events: WorkerEvent[] = [];
  readonly stalls: WorkerStall[] = [];
  readonly gaps: WorkerStall[] = [];
  #capacity = 0;
  #key = new Int32Array(0);
  #kind = new Uint8Array(0);
  #outcome = new Uint8Array(0);
  #writer = new Int32Array(0);
  #seq = new Int32Array(0);
  #valueKey = new Int32Array(0);
  #start = new Float64Array(0);
  #end = new Float64Array(0);

  constructor(
    readonly worker: number,
    readonly limit: number,
  ) {}

  get full(): boolean {
    return this.count >= this.limit;
  }

  add(
    key: number,
    kind: OpKind,
    outcome: OpOutcome,
    start: number,
    end: number,
    version?: { w: number; s: number },
    valueKey = -1,
  ): void {
    if (this.full) {
      this.truncated = true;
      return;
    }
    if (this.count === this.#capacity) this.#grow();
    const i = this.count++;
    this.#key[i] = key;
    this.#kind[i] = KINDS.indexOf(kind);
    this.#outcome[i] = OUTCOMES.indexOf(outcome);
    this.#writer[i] = version?.w ?? -1;
    this.#seq[i] = version?.s ?? -1;
    this.#valueKey[i] = valueKey;
    this.#start[i] = start;
    this.#end[i] = end;
  }

  error(error: unknown): void {
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    // Ports, pids and durations vary; the kind of failure is what is counted.
    const kind = message.replace(/\d+/g, 'N').slice(0, 160);
    this.errors[kind] = (this.errors[kind] ?? 0) + 1;
  }

  /** The columns, trimmed to what was logged. */
  snapshot(maxLagMs: number): WorkerLog {
    const n = this.count;
    return {
      worker: this.worker,
      count: n,
      key: this.#key.slice(0, n),
      kind: this.#kind.slice(0, n),
      outcome: this.#outcome.slice(0, n),
      writer: this.#writer.slice(0, n),
      seq: this.#seq.slice(0, n),
      valueKey: this.#valueKey.slice(0, n),
      start: this.#start.slice(0, n),
      end: this.#end.slice(0, n),
      truncated: this.truncated,
      errors: { ...this.errors },
      events: [...this.events],
      stalls: [...this.stalls],
      maxLagMs,
      gaps: [...this.gaps],
    };
  }

  #grow(): void {
    const capacity = Math.min(this.limit, Math.max(1024, this.#capacity * 2));
    const grow = <T extends Int32Array | Uint8Array | Float64Array>(
      old: T,
      make: (n: number) => T,
    ) => {
      const next = make(capacity);
      next.set(old);
      return next;
    };
    this.#key = grow(this.#key, (n) => new Int32Array(n));
    this.#kind = grow(this.#kind, (n) => new Uint8Array(n));
    this.#outcome = grow(this.#outcome, (n) => new Uint8Array(n));
    this.#writer = grow(this.#writer, (n) => new Int32Array(n));
    this.#seq = grow(this.#seq, (n) => new Int32Array(n));
    this.#valueKey = grow(this.#valueKey, (n) => new Int32Array(n));
    this.#start = grow(this.#start, (n) => new Float64Array(n));
    this.#end = grow(this.#end, (n) => new Float64Array(n));
    this.#capacity = capacity;
  }
}

/** The key number a value names, or UNSHAPED (-2) for a value not written by a worker. */
export function valueKeyOf(value: unknown): {
  valueKey: number;
  version?: { w: number; s: number };
} {
  if (typeof value !== 'object' || value === null) return { valueKey: UNSHAPED };
  const { k, w, s } = value as Partial<StoredVersion>;
  const match = typeof k === 'string' ? /^k(\d+)$/.exec(k) : null;
  if (!match || !Number.isInteger(w) || !Number.isInteger(s)) return { valueKey: UNSHAPED };
  return { valueKey: Number(match[1]), version: { w: w!, s: s! } };
}

/** A worker's log as the analyser's records. */
export function* recordsOf(log: WorkerLog): Generator<OpRecord> {
  for (let i = 0; i < log.count; i++) {
    const record: OpRecord = {
      key: keyName(log.key[i]),
      kind: KINDS[log.kind[i]],
      outcome: OUTCOMES[log.outcome[i]],
      start: log.start[i],
      end: log.end[i],
    };
    if (log.writer[i] >= 0) record.version = { writer: log.writer[i], seq: log.seq[i] };
    const valueKey = log.valueKey[i];
    if (valueKey !== -1)
      record.valueKey = valueKey === UNSHAPED ? '(not a version)' : keyName(valueKey);
    yield record;
  }
}
