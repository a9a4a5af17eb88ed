/**
 * How early the timer of a deadline fires, the rest being waited out turn by turn. Node's
 * timers count whole milliseconds from the loop's cached clock and run only when the loop next
 * reaches them: a 50 ms softTimeout answered 1–2.5 ms late at p99 (bench section 9) with a
 * plain setTimeout. Waiting the last 2 ms with setImmediate answers within a turn of the loop
 * (microseconds when it is idle), at the price of a loop that turns without sleeping for those
 * 2 ms — only for calls whose method has run past nearly all of its soft timeout.
 */
const EARLY_MS = 2;
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Calls `fire` once `performance.now()` reaches `deadline`, as close after it as the loop
 * allows; answers a function that cancels it.
 */
export function atDeadline(deadline: number, fire: () => void): () => void {
  let timer: NodeJS.Timeout | undefined;
  let turn: NodeJS.Immediate | undefined;
  const check = (): void => {
    const left = deadline - performance.now();
    if (left <= 0) fire();
    // A timer for the long part (capped: past 2^31 - 1 ms Node fires it after 1 ms instead).
    else if (left > EARLY_MS) timer = setTimeout(check, Math.min(left - EARLY_MS, MAX_TIMER_MS));
    else turn = setImmediate(check);
  };
  if (deadline - performance.now() > EARLY_MS) check();
  else turn = setImmediate(check);
  return () => {
    clearTimeout(timer);
    clearImmediate(turn);
  };
}
