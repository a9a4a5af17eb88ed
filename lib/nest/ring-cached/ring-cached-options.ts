import { RingConfigError } from '../../core/index.js';
import { checkOption, rejectUnknownOptions } from '../../core/config/option-checks.js';
import { BEHAVIOUR_OPTIONS, resolvePolicy } from './cache-policy.js';
import { CACHE_KEY_SPACE } from './cache-key.js';
import { quotedList } from '../quoted-list.js';
import type { WellFormedString } from '../../core/keys/wire.js';
import type { RingCachedMethod, RingCachedOptions } from './ring-cached.decorator.js';

const KNOWN: ReadonlySet<string> = new Set([
  'prefix',
  'group',
  'key',
  'tags',
  ...BEHAVIOUR_OPTIONS,
] satisfies (keyof RingCachedOptions)[]);

/**
 * Checks a `@RingCached` method's options at boot, as RingDict checks its own: a bad ttl or a
 * group that is not configured fails the boot with a RingConfigError naming the method and the
 * field, rather than leaving the method uncached, with a warning, on every call.
 */
export function validateRingCachedOptions(
  method: RingCachedMethod,
  groups: readonly string[],
  expireOf: (group: string) => number | undefined,
): void {
  const where = `@RingCached ${method.className}.${method.methodName}: `;
  const { options } = method;
  rejectUnknownOptions(options, KNOWN, where);
  const { prefix, key, tags, group = 'default' } = options;
  // A lone surrogate has no UTF-8 form: every key of the method would be refused at its call.
  checkOption(
    prefix === undefined ||
      (typeof prefix === 'string' && (prefix as WellFormedString).isWellFormed()),
    where,
    'prefix',
    'a well-formed string',
    prefix,
  );
  if (typeof prefix === 'string' && prefix.startsWith(CACHE_KEY_SPACE)) {
    throw new RingConfigError(
      `${where}prefix: "${CACHE_KEY_SPACE}" begins the cache's own keys (tag versions, locks)`,
    );
  }
  checkOption(key === undefined || typeof key === 'function', where, 'key', 'a function', key);
  checkOption(tags === undefined || typeof tags === 'function', where, 'tags', 'a function', tags);
  checkOption(typeof group === 'string', where, 'group', 'a group name', group);
  if (!groups.includes(group)) {
    throw new RingConfigError(
      `${where}group "${group}" is not configured; configured groups: ${quotedList(groups)}`,
    );
  }
  method.policy = resolvePolicy(options, where, expireOf(group));
  method.resilient = method.policy.resilient || tags !== undefined;
}

/** The warning for a `@RingCached` method that does not return a Promise (`where`: Class.method). */
export function notAPromiseWarning(where: string): string {
  return `${where} does not return a Promise: @RingCached calls it through uncached`;
}
