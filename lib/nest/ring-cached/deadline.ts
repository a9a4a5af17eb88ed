import { setImmediate } from 'node:timers';
import { MAX_TIMER_MS } from '../../core/config/option-checks.js';

/**
 * How early the timer of a deadline fires, the rest being waited out turn by turn. Node's
 * timers count whole milliseconds from the loop's cached clock and run only when the loop next
 * reaches them: a 50 ms softTimeout answered 1–2.5 ms late at p99 (bench section 9) with a
 * plain setTimeout. Waiting the last 2 ms turn by turn answers within a turn of the loop
 * (microseconds when it is idle), at the price of a loop that turns without sleeping for those
 * 2 ms — only while some call's method has run past nearly all of its soft timeout, and one
 * check a turn serves every such call.
 */
const EARLY_MS = 2;

interface Closing {
  deadline: number;
  fire: () => void;
}

/** Deadlines in their last EARLY_MS, checked together once a turn while there are any. */
const closing = new Set<Closing>();
let turning = false;

function checkClosing(): void {
  const now = performance.now();
  const due: Closing[] = [];
  for (const entry of closing) {
    if (now >= entry.deadline) {
      closing.delete(entry);
      due.push(entry);
    }
  }
  // The next turn is set up before any `fire` runs: one that throws stops no other deadline.
  turning = closing.size > 0;
  if (turning) setImmediate(checkClosing);
  for (const entry of due) entry.fire();
}

/**
 * Calls `fire` once `performance.now()` reaches `deadline`, as close after it as the loop
 * allows (never in this turn); answers a function that cancels it.
 */
export function atDeadline(deadline: number, fire: () => void): () => void {
  const entry: Closing = { deadline, fire };
  let timer: NodeJS.Timeout | undefined;
  const wait = (): void => {
    const left = deadline - performance.now();
    if (left > EARLY_MS) {
      timer = setTimeout(wait, Math.min(left - EARLY_MS, MAX_TIMER_MS));
      return;
    }
    closing.add(entry);
    if (!turning) {
      turning = true;
      setImmediate(checkClosing);
    }
  };
  wait();
  return () => {
    clearTimeout(timer);
    closing.delete(entry);
  };
}
