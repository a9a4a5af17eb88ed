import type { RingDict } from '../../lib/index.js';
import { useRingDicts, type RingDictFixture } from './ring-dicts.js';
import { sleep } from './wait.js';

/**
 * The ring and the load of the in-process chaos suites (test/integration/chaos.spec.ts, and
 * chaos-hangs.spec.ts beside it): three nodes with a short commandTimeout and heartbeat, the
 * goal for the slowest call and the margin the timing assertions allow, and the workers that
 * read and write through one RingDict while the servers behind it are broken, checking every
 * read against what they wrote. (The cross-process harness is chaos-run.ts.)
 */

export const COMMAND_TIMEOUT = 200;
export const HEARTBEAT = 200;
/** The slowest call while a node serves: a dead or hung one costs at most one commandTimeout. */
export const GOAL_SLOWEST_CALL = 2 * COMMAND_TIMEOUT + 50;
/** The assertions on times allow TIME_MARGIN× the goals, for shared CI machines. */
export const TIME_MARGIN = 3;
/** Calls slower than this are kept for the slowest-call figures. */
export const SLOW_MS = 20;
const STALL_PERIOD_MS = 20;

/** The suite's dicts: prefix `chaos:`, COMMAND_TIMEOUT and HEARTBEAT, over three servers. */
export function useChaosDicts(): RingDictFixture {
  return useRingDicts({
    prefix: 'chaos:',
    commandTimeout: COMMAND_TIMEOUT,
    heartbeatInterval: HEARTBEAT,
  });
}

/** What a worker stores: who wrote it, for which of its keys, and which version. */
export interface Stored {
  w: number;
  k: number;
  v: number;
}

/** What a worker knows about one of its keys. */
interface KeyState {
  /** Version of the last acknowledged write (set or delete); 0 before any. */
  acked: number;
  /** Whether that write was a delete. */
  deleted: boolean;
  /** Versions whose set threw: they may or may not have landed. */
  maybe: Set<number>;
  /** The next version to write. */
  next: number;
}

interface Failure {
  start: number;
  end: number;
  error: unknown;
}

interface TimedEvent {
  type: string;
  node?: string;
  t: number;
}

/**
 * `workers` loops of get (50 %), set (45 %) and delete (5 %) on their own keys, checking
 * every read against what they wrote, until stop().
 */
export function startLoad(dict: RingDict<Stored>, workers: number, keysPerWorker: number) {
  const t0 = performance.now();
  const events: TimedEvent[] = [];
  dict.events$.subscribe((event) =>
    events.push({ type: event.type, node: event.node, t: performance.now() }),
  );
  const keys: KeyState[][] = Array.from({ length: workers }, () =>
    Array.from({ length: keysPerWorker }, () => ({
      acked: 0,
      deleted: false,
      maybe: new Set<number>(),
      next: 1,
    })),
  );
  const stats = {
    calls: 0,
    reads: 0,
    misses: 0,
    /** Calls slower than SLOW_MS (bounded), to tell slow calls inside and outside outages. */
    slowCalls: [] as { start: number; end: number; op: string }[],
    /** The longest the event loop was held up (sampled every STALL_PERIOD_MS). */
    worstStall: 0,
    failures: [] as Failure[],
    staleReads: [] as string[],
    neverWritten: [] as string[],
    events,
    t0,
  };
  let stopping = false;

  const lastRediscovery = (): string => {
    const last = events.findLast((e) => e.type === 'rediscovered');
    return last ? `last rediscovery: ${last.node} at ${(last.t - t0).toFixed(1)} ms` : '';
  };

  /** Checks a read of worker w's key k against what w wrote. */
  const check = (w: number, k: number, value: Stored | undefined, where: string): void => {
    stats.reads++;
    if (value === undefined) {
      stats.misses++;
      return;
    }
    const state = keys[w][k];
    const shown = () =>
      `${where} read at ${(performance.now() - t0).toFixed(1)} ms: w${w}:k${k} = ${JSON.stringify(value)}, ` +
      `acked v${state.acked}${state.deleted ? ' (deleted)' : ''}, now on ${dict.aliveHash.locate(dict.getEntry(`w${w}:k${k}`))}; ${lastRediscovery()}`;
    if (
      typeof value !== 'object' ||
      value === null ||
      value.w !== w ||
      value.k !== k ||
      !Number.isInteger(value.v) ||
      value.v <= 0 ||
      value.v >= state.next
    ) {
      stats.neverWritten.push(shown());
    } else if (value.v === state.acked && !state.deleted) {
      // The value last written: correct.
    } else if (value.v > state.acked && state.maybe.has(value.v)) {
      // A later set that threw (no node alive) may have landed all the same.
    } else if (value.v <= state.acked) {
      stats.staleReads.push(shown());
    } else {
      stats.neverWritten.push(shown());
    }
  };

  const acknowledge = (state: KeyState, v: number, deleted: boolean): void => {
    state.acked = v;
    state.deleted = deleted;
    for (const m of state.maybe) if (m < v) state.maybe.delete(m);
  };

  const worker = async (w: number): Promise<void> => {
    while (!stopping) {
      const k = Math.floor(Math.random() * keysPerWorker);
      const key = `w${w}:k${k}`;
      const state = keys[w][k];
      const dice = Math.random();
      const start = performance.now();
      let op = 'get';
      try {
        if (dice < 0.5) {
          check(w, k, await dict.get(key), 'live');
        } else if (dice < 0.95) {
          op = 'set';
          const v = state.next++;
          try {
            await dict.set(key, { w, k, v });
          } catch (error) {
            state.maybe.add(v);
            throw error;
          }
          acknowledge(state, v, false);
        } else {
          op = 'delete';
          const v = state.next++;
          await dict.delete(key);
          acknowledge(state, v, true);
        }
      } catch (error) {
        stats.failures.push({ start, end: performance.now(), error });
        // A caller that backs off: failures without I/O would otherwise spin the loop.
        await sleep(5);
      } finally {
        stats.calls++;
        const ms = performance.now() - start;
        if (ms > SLOW_MS && stats.slowCalls.length < 10_000) {
          stats.slowCalls.push({ start, end: start + ms, op });
        }
      }
    }
  };

  let tick = performance.now();
  const stallWatch = setInterval(() => {
    const now = performance.now();
    stats.worstStall = Math.max(stats.worstStall, now - tick - STALL_PERIOD_MS);
    tick = now;
  }, STALL_PERIOD_MS);
  const running = Array.from({ length: workers }, (_, w) => worker(w));
  return {
    stats,
    /** Stops the workers and waits for their last calls. */
    async stop(): Promise<void> {
      stopping = true;
      clearInterval(stallWatch);
      await Promise.all(running);
    },
    /** Reads every key once more and checks it (after stop()). */
    async verifyAll(): Promise<void> {
      await Promise.all(
        keys.map(async (states, w) => {
          for (let k = 0; k < states.length; k++) {
            check(w, k, await dict.get(`w${w}:k${k}`), 'final');
          }
        }),
      );
    },
    /** True once `node` was ejected (or rediscovered) after `after`. */
    saw(type: 'ejected' | 'rediscovered', node: string, after: number): boolean {
      return events.some((e) => e.type === type && e.node === node && e.t > after);
    },
  };
}

/** At most ten lines of a list, for assertion messages. */
export function show(list: readonly string[]): string {
  return list.slice(0, 10).join('\n');
}
