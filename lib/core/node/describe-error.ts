import type { NodeAddress } from '../config/ring-config.js';

/** Redis' words for a refused password or user (AUTH, HELLO … AUTH, or none given). */
const AUTH_FAILURE = /WRONGPASS|NOAUTH|invalid password|invalid username-password/i;

/** What a node knows of why its connection went. */
export interface ConnectionHistory {
  /** The socket error seen last, if any. */
  lastError?: string;
  /** Set when the ring dropped the connection for want of a reply (the server closed nothing). */
  timedOut?: string;
}

/**
 * An error's message for health reports, with the node's credentials scrubbed should a
 * library echo them. ioredis' generic "closed"/"not writeable" become "connection closed"
 * with the socket error that caused it, which is what an operator needs to see; a node
 * that did not answer in time says so, as a hung server closes nothing.
 */
export function describeNodeError(
  error: unknown,
  address: NodeAddress,
  history: ConnectionHistory,
): string {
  let message = error instanceof Error ? error.message : String(error);
  const noSentinel = /^All sentinels are unreachable[^.]*\.(?: Last error: (.*))?$/s.exec(message);
  if (noSentinel) {
    // ioredis' sentinel clients report a refused connection as "Connection is closed.":
    // the addresses tried say more.
    const last = (noSentinel[1] ?? '').replace(/^Connection is closed\.$/, '');
    const tried = address.sentinels?.join(', ') ?? '';
    message = /No such master/i.test(last)
      ? `the sentinels (${tried}) know no master group named "${address.sentinel}"`
      : `no sentinel of "${address.sentinel}" answered (${tried}${last ? `; last error: ${last}` : ''})`;
  } else if (
    message.startsWith("Stream isn't writeable") ||
    message.startsWith('Connection is closed')
  ) {
    if (history.timedOut !== undefined) message = history.timedOut;
    else if (history.lastError) message = `connection closed (${history.lastError})`;
    else message = 'connection closed';
  } else if (AUTH_FAILURE.test(message) && !message.startsWith('authentication failed')) {
    message = `authentication failed (${message})`;
  }
  for (const secret of address.secrets) message = message.split(secret).join('***');
  return message;
}
