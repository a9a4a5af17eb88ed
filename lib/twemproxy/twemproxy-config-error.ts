import { RingConfigError } from '../core/errors.js';

/** A nutcracker config that cannot be imported: bad YAML, unknown pool, invalid value. */
export class TwemproxyConfigError extends RingConfigError {
  override name = 'TwemproxyConfigError';
}
