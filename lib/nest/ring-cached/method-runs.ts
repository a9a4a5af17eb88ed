/** How the cache runs a cached method and reads a call's tags. */
import { shown } from '../../core/config/option-checks.js';

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
  if (!isStringArray(tags)) throw new TypeError(`expected an array of strings, got ${shown(tags)}`);
  return tags.length < 2 ? tags : [...new Set(tags)];
}

/** True for an array of strings only (a loop: a call's tags are checked on every hit). */
export function isStringArray(tags: unknown): tags is readonly string[] {
  if (!Array.isArray(tags)) return false;
  for (const tag of tags) if (typeof tag !== 'string') return false;
  return true;
}
