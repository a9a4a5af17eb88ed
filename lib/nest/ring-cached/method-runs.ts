/** How the cache runs a cached method and reads a call's tags. */

/** `fn` applied, as a Promise: a synchronous throw rejects it. */
export function runSafely(
  fn: (...args: unknown[]) => unknown,
  self: unknown,
  args: unknown[],
): Promise<unknown> {
  try {
    return Promise.resolve(fn.apply(self, args));
  } catch (error) {
    return Promise.reject(error);
  }
}

/** A call's tags: what the tags function answers, checked, without repeats. */
export function tagsOf(fn: (...args: unknown[]) => unknown, args: unknown[]): readonly string[] {
  const tags = fn(...args);
  if (!Array.isArray(tags) || !tags.every((tag) => typeof tag === 'string')) {
    throw new TypeError(`expected an array of strings, got ${typeof tags}`);
  }
  return tags.length < 2 ? tags : [...new Set(tags)];
}
