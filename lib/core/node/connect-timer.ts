/**
 * Calls `expired` once `timeoutMs` have passed, judged after the turn's I/O (timers run before
 * it: the answer may be waiting unread). A timer that fires far too late means this process
 * was stalled (a slow boot, a long synchronous task), not that the node is slow: the node gets
 * its time once more rather than be ejected for our own stall. Answers the cancel.
 */
export function stallAwareTimer(timeoutMs: number, expired: () => void): () => void {
  const started = performance.now();
  let stalled = false;
  const expire = () => {
    if (!stalled && performance.now() - started > timeoutMs * 1.5) {
      stalled = true;
      timer = setTimeout(expire, timeoutMs);
      return;
    }
    setImmediate(expired);
  };
  let timer = setTimeout(expire, timeoutMs);
  return () => clearTimeout(timer);
}
