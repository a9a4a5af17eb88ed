/**
 * Polls `condition` every 5 ms until it holds; answers how long that took (ms). The default
 * is generous: a loaded machine may take seconds to restart a server or answer a heartbeat.
 * `what` names the condition in the error, should it not be met.
 */
export async function until(
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 8_000,
  what = 'condition',
): Promise<number> {
  const start = performance.now();
  while (!(await condition())) {
    if (performance.now() - start > timeoutMs) {
      throw new Error(`${what} not met within ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return performance.now() - start;
}

/** Resolves after `ms` milliseconds (at once, in a timer's turn, for `ms` ≤ 0). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}
