import { Redis, type RedisOptions } from 'ioredis';
import { nodeAddress } from '../core/config/node-address.js';
import { caFromUrl } from '../core/config/tls-ca-url.js';
import type { RingNodeConfig } from '../core/index.js';

/** A node's answer to the health check's PING. */
export type NodePing = { ok: true; ms: number } | { ok: false; error: string };

/**
 * PINGs one node over a connection of its own, opened for this PING and closed after it:
 * connecting, the ready check and the PING must all be done within `timeoutMs`. A hung
 * server accepts the TCP connection in its kernel and then never answers, which is exactly
 * what this is for. Errors are scrubbed of the node's credentials.
 */
export async function pingNode(
  node: RingNodeConfig | string,
  timeoutMs: number,
): Promise<NodePing> {
  const given = typeof node === 'string' ? node : node.connection;
  let connection: RedisOptions | string;
  try {
    // A rediss:// URL with ?ca=: the same options the ring's own client was given.
    connection = caFromUrl(given, 'node');
  } catch (error) {
    return { ok: false, error: scrub((error as Error).message, given) };
  }
  const forced: RedisOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    reconnectOnError: null,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    connectionName: 'ring-redis-health',
  };
  const client =
    typeof connection === 'string'
      ? new Redis(connection, forced)
      : new Redis({ ...connection, ...forced });
  let lastError: string | undefined;
  // Without a listener ioredis prints every connection error to the console.
  client.on('error', (error: Error) => (lastError = error.message));
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer to PING within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    await Promise.race([client.connect().then(() => client.ping()), expired]);
    return { ok: true, ms: Math.round((performance.now() - started) * 10) / 10 };
  } catch (error) {
    const message = (error as Error).message;
    const detail =
      /Connection is closed|Stream isn't writeable/.test(message) && lastError
        ? lastError
        : message;
    return { ok: false, error: scrub(detail, connection) };
  } finally {
    clearTimeout(timer);
    client.disconnect();
    // A hung server never acknowledges the close: let the socket go at once.
    client.stream?.destroy();
  }
}

/** `message` without the passwords and user names of `connection`. */
function scrub(message: string, connection: RedisOptions | string): string {
  let secrets: readonly string[] = [];
  try {
    secrets = nodeAddress(connection, 'node').secrets;
  } catch {
    // The dict refused a connection it could not read: it never got this far.
  }
  for (const secret of secrets) message = message.split(secret).join('***');
  return message;
}
