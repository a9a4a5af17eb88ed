/** Polls `condition` every 5 ms until it holds; answers how long that took (ms). */
export async function until(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
): Promise<number> {
  const start = performance.now();
  while (!(await condition())) {
    if (performance.now() - start > timeoutMs) {
      throw new Error(`condition not met within ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return performance.now() - start;
}
