/**
 * How early the timer of a deadline fires, the rest being waited out turn by turn. Node's
 * timers count whole milliseconds from the loop's cached clock and run only when the loop next
 * reaches them: a 50 ms softTimeout answered 1–2.5 ms late at p99 (bench section 9) with a
 * plain setTimeout. Waiting the last 2 ms with setImmediate answers within a turn of the loop
 * (microseconds when it is idle), at the price of a loop that turns without sleeping for those
 * 2 ms — only for calls whose method has run past nearly all of its soft timeout.
 */
const EARLY_MS = 2;

/**
 * Calls `fire` once `performance.now()` reaches `deadline`, as close after it as the loop
 * allows; answers a function that cancels it.
 */
export function atDeadline(deadline: number, fire: () => void): () => void {
  let timer: NodeJS.Timeout | undefined;
  let turn: NodeJS.Immediate | undefined;
  const check = (): void => {
    if (performance.now() >= deadline) fire();
    else turn = setImmediate(check);
  };
  const wait = deadline - performance.now() - EARLY_MS;
  if (wait > 0) timer = setTimeout(check, wait);
  else turn = setImmediate(check);
  return () => {
    clearTimeout(timer);
    clearImmediate(turn);
  };
}
