import { RingConfigError } from '../../core/index.js';
import { checkOption, validateTtl } from '../../core/ring-dict-options.js';
import type { RingCachedMethod, RingCachedOptions } from './ring-cached.decorator.js';

const KNOWN: readonly (keyof RingCachedOptions)[] = [
  'prefix',
  'ttl',
  'group',
  'key',
  'cacheNullish',
];

/**
 * Checks a `@RingCached` method's options at boot, as RingDict checks its own: a bad ttl or a
 * group that is not configured fails the boot with a RingConfigError naming the method and the
 * field, rather than leaving the method uncached, with a warning, on every call.
 */
export function validateRingCachedOptions(
  method: RingCachedMethod,
  groups: readonly string[],
): void {
  const where = `@RingCached ${method.className}.${method.methodName}: `;
  const { options } = method;
  for (const field of Object.keys(options)) {
    if (!(KNOWN as readonly string[]).includes(field)) {
      throw new RingConfigError(
        `${where}unknown option "${field}"; known options: ${KNOWN.join(', ')}`,
      );
    }
  }
  if (options.ttl !== undefined) validateTtl(options.ttl, `${where}ttl`);
  const { prefix, key, cacheNullish, group = 'default' } = options;
  checkOption(
    prefix === undefined || typeof prefix === 'string',
    where,
    'prefix',
    'a string',
    prefix,
  );
  checkOption(key === undefined || typeof key === 'function', where, 'key', 'a function', key);
  checkOption(
    cacheNullish === undefined || typeof cacheNullish === 'boolean',
    where,
    'cacheNullish',
    'a boolean',
    cacheNullish,
  );
  checkOption(typeof group === 'string', where, 'group', 'a group name', group);
  if (!groups.includes(group)) {
    throw new RingConfigError(
      `${where}group "${group}" is not configured; configured groups: ${groups.map((g) => `"${g}"`).join(', ') || 'none'}`,
    );
  }
}
