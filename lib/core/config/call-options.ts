import { RingArgumentError } from '../errors.js';
import { describeKey } from '../keys/entry-keys.js';
import { validateTtl } from './ring-dict-options.js';

export interface RingSetOptions {
  /** Time to live in SECONDS (fractions allowed); overrides the dict's `expire`. */
  ttl?: number;
}

export interface RingClearOptions {
  /** Needed to clear a dict whose prefix is empty, i.e. every key of every node. */
  force?: boolean;
}

/** `options.ttl` of a call of `method`, checked, else `expire` (the dict's default). */
export function ttlOption(
  method: string,
  options: RingSetOptions | undefined,
  expire: number | undefined,
): number | undefined {
  // `set(key, value, 60)` would otherwise store the value with no TTL at all.
  const { ttl } = callOptions(method, options, ['ttl'], '{ ttl: 60 }');
  return ttl === undefined ? expire : validateTtl(ttl, `${method}: ttl`);
}

/** `options.force` of `clear`, checked. */
export function forceOption(options: RingClearOptions | undefined): boolean {
  const { force = false } = callOptions('clear', options, ['force'], '{ force: true }');
  if (typeof force !== 'boolean') {
    throw new RingArgumentError(`clear: force must be true or false, got ${describeKey(force)}`);
  }
  return force;
}

/**
 * The options argument of a call of `method`: undefined (or null) as none, else an object
 * with no field but `known`; anything else is a RingArgumentError naming what was given
 * (`example` shows a good one). A misspelt option would otherwise be ignored.
 */
export function callOptions<T extends object>(
  method: string,
  options: T | undefined,
  known: readonly (keyof T & string)[],
  example: string,
): Partial<T> {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object') {
    throw new RingArgumentError(
      `${method}: options must be an object such as ${example}, got ${describeKey(options)}`,
    );
  }
  for (const field in options) {
    if (!(known as readonly string[]).includes(field)) {
      throw new RingArgumentError(
        `${method}: unknown option "${field}"; the option${known.length > 1 ? 's are' : ' is'} ${known.join(', ')}`,
      );
    }
  }
  return options;
}
