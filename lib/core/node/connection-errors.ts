import { RingError } from '../errors.js';

/**
 * Tells a connection-class failure (the node is unreachable: eject it and retry on the next
 * node) from a reply error (Redis answered "no": the caller's problem, never an ejection).
 */

/** Socket-level error codes that mean the node cannot be reached. */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ERR_SOCKET_CLOSED',
  'ERR_STREAM_DESTROYED',
]);

/** ioredis' own messages for "no usable connection". */
const CONNECTION_MESSAGES = [
  'Connection is closed.',
  "Stream isn't writeable",
  'Command timed out',
  'Redis is already connecting',
  'Socket timeout',
  'Reached the max retries per request limit',
];

/** Errors this package raises for a node it could not reach in time. */
export class RingConnectionError extends RingError {
  override name = 'RingConnectionError';
}

export function isConnectionError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  // A reply error carries Redis' own words: the node is alive and answered.
  if (error.name === 'ReplyError') return false;
  if (error instanceof RingConnectionError) return true;
  if (error.name === 'MaxRetriesPerRequestError') return true;
  const code = (error as NodeJS.ErrnoException).code;
  if (code !== undefined && CONNECTION_CODES.has(code)) return true;
  return CONNECTION_MESSAGES.some((m) => error.message.startsWith(m));
}
