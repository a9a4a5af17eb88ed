import { RingArgumentError } from './errors.js';
import type { WellFormedString } from './keys/wire.js';

/**
 * `raw` when Redis stores it as it is: a Buffer, or a string with a UTF-8 form. A lone
 * surrogate has none: it would be stored as U+FFFD, the value changed without a word. The
 * check, measured: 6–13 ns for a one-byte string whatever its length (JSON of Latin-1 text is
 * one), about 1 ns a character for a two-byte one (76–112 µs for 100 k), the order of what its
 * UTF-8 encoding on the way to the socket costs.
 */
export function storable(raw: unknown, what: string): string | Buffer {
  if (Buffer.isBuffer(raw)) return raw;
  if (typeof raw !== 'string') {
    throw new TypeError(`${what} ${typeof raw}, expected a string or a Buffer`);
  }
  if (!(raw as WellFormedString).isWellFormed()) {
    throw new TypeError(`${what} a string with a lone surrogate, which has no UTF-8 form`);
  }
  return raw;
}

/** setRaw's payload: the value as it is, whatever the codec, if Redis can store it so. */
export function rawPayload(_codec: unknown, raw: string | Buffer, entry: string): string | Buffer {
  try {
    return storable(raw, 'got');
  } catch (error) {
    throw new RingArgumentError(
      `setRaw: the value for "${entry}": ${(error as Error).message}. Nothing was written.`,
    );
  }
}
