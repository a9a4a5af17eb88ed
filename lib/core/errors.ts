/**
 * Every error this package throws on its own account extends {@link RingError}, so callers
 * can tell "the ring said no" from a Redis reply error, which is passed through unchanged.
 */
export class RingError extends Error {
  override name = 'RingError';
}

/** Invalid configuration: the message names the group, node and field that is wrong. */
export class RingConfigError extends RingError {
  override name = 'RingConfigError';
}

/** No node of the ring is alive, and no `onFail` was given to answer instead. */
export class RingClusterUnavailableError extends RingError {
  override name = 'RingClusterUnavailableError';
  /** The last connection error seen, when there was one. */
  declare readonly lastError?: Error;

  constructor(message: string, lastError?: Error) {
    super(message, lastError ? { cause: lastError } : undefined);
    // Only when there is one: a logged error shows no `lastError: undefined`.
    if (lastError) Object.defineProperty(this, 'lastError', { value: lastError, enumerable: true });
  }
}

/** A method was given an argument of the wrong kind (not a key list, not a command); nothing was sent. */
export class RingArgumentError extends RingError {
  override name = 'RingArgumentError';
}

/** A key that is not one (see the default `key`), or a `key` function that returned no string. */
export class RingKeyError extends RingArgumentError {
  override name = 'RingKeyError';
}

/** The codec could not encode a value (nothing was written) or decode a stored one. */
export class RingCodecError extends RingError {
  override name = 'RingCodecError';
  constructor(
    message: string,
    /** The Redis key involved, when there is one. */
    readonly entry?: string,
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
  }
}
