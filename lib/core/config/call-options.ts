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
  if (options === undefined || options === null) return expire;
  if (typeof options !== 'object') {
    // `set(key, value, 60)` would otherwise store the value with no TTL at all.
    throw new RingArgumentError(
      `${method}: options must be an object such as { ttl: 60 }, got ${describeKey(options)}`,
    );
  }
  for (const field in options) {
    if (field !== 'ttl') {
      throw new RingArgumentError(`${method}: unknown option "${field}"; the option is ttl`);
    }
  }
  return options.ttl === undefined ? expire : validateTtl(options.ttl, `${method}: ttl`);
}
