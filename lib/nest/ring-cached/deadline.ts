import { setImmediate } from 'node:timers';
import { MAX_TIMER_MS } from '../../core/config/option-checks.js';

/**
 * How early the timer of a deadline fires, the rest being waited out turn by turn. Node's
 * timers count whole milliseconds from the loop's cached clock and wake a sleeping loop late
 * (here: a 48 ms setTimeout 0.33 ms late at median, 1.3 ms at p99, 3.9 ms at worst). Waiting
 * the last 2 ms turn by turn answers within a turn of the loop (microseconds when it is idle),
 * at the price of a loop that turns without sleeping for those 2 ms — one check a turn
 * serving every call that is that close to its deadline.
 */
const EARLY_MS = 2;

/**
 * Turning without sleeping burns a core. Under a slow backend every caller past its soft
 * timeout would keep the loop turning (a thousand calls a second, each 2 ms in the last
 * stretch: a core, all the time — and a container's CPU quota spent), so turning is allowed
 * this many milliseconds a second (10 % of a core); past it, deadlines wait on timers alone
 * (about a millisecond late) until the next second.
 */
const TURN_BUDGET_MS = 100;

interface Closing {
  readonly deadline: number;
  readonly fire: () => void;
  timer?: NodeJS.Timeout;
  cancelled?: boolean;
}

/** Deadlines in their last EARLY_MS, checked together once a turn while there are any. */
const closing = new Set<Closing>();
let turning = false;
/** Time spent turning in the current second, and when it was last counted. */
const turned = { since: 0, ms: 0, countedAt: 0 };

function overBudget(now: number): boolean {
  if (now - turned.since >= 1_000) {
    turned.since = now;
    turned.ms = 0;
  }
  return turned.ms >= TURN_BUDGET_MS;
}

function checkClosing(): void {
  const now = performance.now();
  turned.ms += now - turned.countedAt;
  turned.countedAt = now;
  const over = overBudget(now);
  const due: Closing[] = [];
  for (const entry of closing) {
    if (now >= entry.deadline) {
      closing.delete(entry);
      due.push(entry);
    } else if (over) {
      closing.delete(entry);
      sleepFor(entry, entry.deadline - now);
    }
  }
  turning = closing.size > 0;
  if (turning) setImmediate(checkClosing);
  for (const entry of due) {
    // One due now may be cancelled by another's `fire`; one that throws stops no other.
    if (entry.cancelled) continue;
    try {
      entry.fire();
    } catch (error) {
      queueMicrotask(() => {
        throw error;
      });
    }
  }
}

/** Waits for `entry` on a timer, then looks again (a Node timer may fire a little early). */
function sleepFor(entry: Closing, ms: number): void {
  entry.timer = setTimeout(arm, Math.min(ms, MAX_TIMER_MS), entry);
}

function arm(entry: Closing): void {
  const now = performance.now();
  const left = entry.deadline - now;
  if (left > EARLY_MS) return sleepFor(entry, left - EARLY_MS);
  if (left > 0 && overBudget(now)) return sleepFor(entry, left);
  closing.add(entry);
  if (!turning) {
    turning = true;
    turned.countedAt = now;
    setImmediate(checkClosing);
  }
}

/**
 * Calls `fire` once `performance.now()` reaches `deadline`, as close after it as the loop
 * allows (never in this turn); answers a function that cancels it.
 */
export function atDeadline(deadline: number, fire: () => void): () => void {
  const entry: Closing = { deadline, fire };
  arm(entry);
  return () => {
    entry.cancelled = true;
    clearTimeout(entry.timer);
    closing.delete(entry);
  };
}

/**
 * `promise`'s value if it comes by `deadline` (performance.now()), else `fallback`, after
 * `late()` (the promise never rejects).
 */
export function within<T>(
  promise: Promise<T>,
  deadline: number,
  fallback: T,
  late: () => void,
): Promise<T> {
  return new Promise((resolve) => {
    const cancel = atDeadline(deadline, () => {
      late();
      resolve(fallback);
    });
    void promise.then((value) => {
      cancel();
      resolve(value);
    });
  });
}
