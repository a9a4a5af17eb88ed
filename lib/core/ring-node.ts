import { Redis, type RedisOptions } from 'ioredis';
import { RingConnectionError } from './connection-errors.js';
import { NodeHealth } from './node-health.js';
import type { NodeAddress } from './ring-config.js';

/**
 * One Redis server of the ring: its ioredis client, its health, and the only code that
 * opens its connection.
 *
 * The client never waits: no offline queue, no per-request retries, no background
 * reconnects. A dead node must fail fast so the request moves on to the next node; the
 * ring decides when to try the node again (heartbeat or probe), not ioredis.
 */
export class RingNode {
  readonly health: NodeHealth;
  readonly client: Redis;
  private connecting?: Promise<void>;
  private lastErrorMessage?: string;
  private corked = false;

  constructor(
    readonly name: string,
    readonly capacity: number,
    connection: RedisOptions | string,
    readonly address: NodeAddress,
    commandTimeout: number,
  ) {
    this.health = new NodeHealth(name);
    const forced: RedisOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      reconnectOnError: null,
      commandTimeout,
      connectTimeout: commandTimeout,
    };
    this.client =
      typeof connection === 'string'
        ? new Redis(connection, forced)
        : new Redis({ ...connection, ...forced });
    // Without a listener ioredis prints every connection error to the console.
    this.client.on('error', (error: Error) => {
      this.lastErrorMessage = this.describe(error);
    });
  }

  /** Commands sent to this node and not yet answered, counted by the ring. */
  inFlight = 0;

  /**
   * Coalesces the commands written to this node during the current tick into one socket
   * write, but only under load (another command is in flight): at 1 in flight a command
   * goes out at once, at 64 in flight spread over several nodes the node wins back the
   * batching one busy socket gets for free, without auto-pipelining's per-batch overhead.
   */
  batchWrites(): void {
    if (this.corked || this.inFlight === 0) return;
    const stream = this.client.stream;
    if (stream === undefined || stream === null) return;
    this.corked = true;
    stream.cork();
    process.nextTick(() => {
      this.corked = false;
      stream.uncork();
    });
  }

  /** True when commands can be written right now. */
  get ready(): boolean {
    return this.client.status === 'ready';
  }

  /**
   * Opens the connection if it is not open, within `timeoutMs`. Concurrent callers share
   * one attempt. Rejects with a connection-class error.
   */
  connect(timeoutMs: number): Promise<void> {
    if (this.client.status === 'ready') return Promise.resolve();
    this.connecting ??= this.open(timeoutMs).finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private open(timeoutMs: number): Promise<void> {
    const client = this.client;
    return new Promise<void>((resolve, reject) => {
      const settle = (error?: Error) => {
        clearTimeout(timer);
        client.off('ready', onReady);
        client.off('end', onEnd);
        if (error) reject(error);
        else resolve();
      };
      const onReady = () => settle();
      const onEnd = () =>
        settle(new RingConnectionError(this.lastErrorMessage ?? 'connection closed'));
      const timer = setTimeout(() => {
        // A hung server completes the TCP handshake in the kernel and then never answers:
        // drop the half-open connection rather than leave it waiting.
        client.disconnect();
        settle(new RingConnectionError(`no answer within ${timeoutMs} ms while connecting`));
      }, timeoutMs);
      client.on('ready', onReady);
      client.on('end', onEnd);
      const status = client.status;
      if (status === 'wait' || status === 'end' || status === 'close') {
        this.lastErrorMessage = undefined;
        // Failures arrive as 'error' + 'end' events, handled above.
        client.connect().catch(() => undefined);
      }
    });
  }

  /** Drops the connection at once: commands still waiting on it fail now, not at their timeout. */
  drop(): void {
    if (this.client.status !== 'end') this.client.disconnect();
  }

  /**
   * An error's message for health reports, with this node's credentials scrubbed should a
   * library echo them. ioredis' generic "closed"/"not writeable" become "connection closed"
   * with the socket error that caused it, which is what an operator needs to see.
   */
  describe(error: unknown): string {
    let message = error instanceof Error ? error.message : String(error);
    if (
      message.startsWith("Stream isn't writeable") ||
      message.startsWith('Connection is closed')
    ) {
      message = this.lastErrorMessage
        ? `connection closed (${this.lastErrorMessage})`
        : 'connection closed';
    }
    for (const secret of this.address.secrets) message = message.split(secret).join('***');
    return message;
  }

  /** Closes the connection politely (QUIT), or at once if the node does not answer. */
  async close(timeoutMs: number): Promise<void> {
    const client = this.client;
    if (client.status === 'ready') {
      const timer = setTimeout(() => client.disconnect(), timeoutMs);
      try {
        await client.quit();
      } catch {
        // The node went away meanwhile: disconnect below.
      } finally {
        clearTimeout(timer);
      }
    }
    client.disconnect();
  }
}
