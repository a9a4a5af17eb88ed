import { disconnectNow } from '../node/disconnect-now.js';
import { Redis, type RedisOptions } from 'ioredis';
import { fromWire } from '../keys/wire.js';
import type { RingNode } from '../node/ring-node.js';
import type { NearSource, NearStore } from './near-store.js';

/** The channel Redis publishes invalidations on for clients that redirect them (RESP2). */
const INVALIDATE = '__redis__:invalidate';

/** How long after a failed attempt the channel is opened again on demand. */
const REOPEN_AFTER_MS = 1_000;

/** How long after a refused CLIENT TRACKING (an ACL) it is asked again. */
const TRACKING_RETRY_MS = 10_000;

export interface ChannelTiming {
  commandTimeout: number;
  /** How often an open channel is PINGed to tell a hung or cut link (ms). */
  pingInterval: number;
}

/**
 * One node's invalidation channel: a subscriber connection on `__redis__:invalidate`, and
 * `CLIENT TRACKING ON REDIRECT <its id>` on the node's data connection, so that Redis tells
 * this process about every change — by anyone — of a key the data connection read.
 *
 * Redis' default tracking mode, not BCAST: the server sends an invalidation only for keys
 * this very connection read, once per read. Measured on loopback (Redis 7.0, 2 cores at load
 * 7, 3000 write-then-see rounds), both modes deliver an invalidation as fast: p50 0.10-0.15 ms
 * and p99 2.2-3.4 ms by default, p50 0.15-0.16 ms and p99 3.3-3.5 ms with BCAST PREFIX. What
 * differs is the traffic: with BCAST every process hears of every write under the prefix —
 * 10 000 writes of keys it never read sent each process all 10 000 keys (in 20 messages),
 * against none in the default mode, whose price, a table of the keys read on the server, is
 * bounded by Redis' `tracking-table-max-keys` (Redis invalidates keys to stay within it).
 *
 * ioredis 6 ignores RESP3 `invalidate` pushes, so the subscriber speaks RESP2, where
 * redirected invalidations arrive as Pub/Sub messages.
 *
 * `epoch` is raised whenever an invalidation may have been missed — the subscriber or the data
 * connection lost or replaced, the server flushed, the node ejected — which makes every entry
 * read from this node unservable at once (see NearStore).
 */
export class InvalidationChannel implements NearSource {
  epoch = 0;
  private subscriber?: Redis;
  private subscriberId?: string;
  private subscriberRunId?: string;
  private opening = false;
  private lastAttempt = Number.NEGATIVE_INFINITY;
  /** The data connection's generation: raised each time it ends. */
  private connection = 0;
  /** The generation CLIENT TRACKING was sent on (for the current subscriber), and confirmed on. */
  private trackingSent = -1;
  private trackingOn = -1;
  private trackingRefusedUntil = 0;
  private pinger?: NodeJS.Timeout;
  private retry?: NodeJS.Timeout;
  private pinging = false;
  private closed = false;

  constructor(
    readonly node: RingNode,
    private readonly store: NearStore,
    private readonly timing: ChannelTiming,
  ) {
    node.health.invalidation = 'down';
    node.client.on('end', this.dataLost);
    node.client.on('ready', this.dataReady);
    if (node.client.status === 'ready') this.openSoon(true);
  }

  /** True while invalidations of this node reach this process. */
  get up(): boolean {
    return this.subscriber !== undefined;
  }

  /**
   * Called on the data connection just before a read is sent on it: the epoch the read may be
   * stored under, or undefined when it may not (the channel is down, or on another server).
   * Sends CLIENT TRACKING first when this connection has not had it: the read, sent after it
   * on the same connection, is tracked.
   */
  prepare(client: Redis): number | undefined {
    if (this.subscriber === undefined) {
      this.openSoon(false);
      return undefined;
    }
    if (this.trackingSent !== this.connection) {
      if (performance.now() < this.trackingRefusedUntil || !this.sameServer()) return undefined;
      this.track(client);
    }
    return this.epoch;
  }

  /**
   * True when a read prepared under `epoch` may be stored now that it is answered. Not from an
   * ejected node (a rediscovery probe): its keys are served by other nodes meanwhile, whose
   * writes it never sees.
   */
  holds(epoch: number): boolean {
    return (
      epoch === this.epoch &&
      this.trackingOn === this.connection &&
      this.up &&
      this.node.health.alive
    );
  }

  /**
   * Every entry of this node stops being served; with `close`, the subscriber closes too (an
   * ejected node: it reopens once the node is back).
   */
  drop(close = false): void {
    this.epoch++;
    if (close) this.lose();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retry);
    this.node.client.off('end', this.dataLost);
    this.node.client.off('ready', this.dataReady);
    this.lose();
  }

  private readonly dataLost = (): void => {
    // Redis forgets what the connection read: no invalidation for it will ever come. The
    // subscriber goes too, and a new one is opened with the next data connection: a Sentinel
    // node's next connection may be on another server.
    this.connection++;
    this.epoch++;
    this.lose();
  };

  private readonly dataReady = (): void => this.openSoon(true);

  private track(client: Redis): void {
    const generation = this.connection;
    const target = this.subscriberId!;
    this.trackingSent = generation;
    client.call('CLIENT', 'TRACKING', 'ON', 'REDIRECT', target).then(
      () => {
        if (this.connection !== generation) return;
        // Pointed at a subscriber replaced meanwhile: sent again to the new one.
        if (this.subscriberId === target) this.trackingOn = generation;
        else this.trackingSent = -1;
      },
      (error: unknown) => {
        if (this.connection !== generation) return;
        this.trackingSent = -1;
        // A reply error (an ACL without CLIENT): no near cache on this node for a while.
        if (error instanceof Error && !/closed|writeable|timeout/i.test(error.message)) {
          this.trackingRefusedUntil = performance.now() + TRACKING_RETRY_MS;
          this.node.health.invalidationError = error.message;
        }
      },
    );
  }

  /**
   * The subscriber reached the server the data connection is on: a Sentinel node's data
   * connection follows the master, and a redirect to a client id of another server would
   * send the invalidations to whatever client has that id there.
   */
  private sameServer(): boolean {
    const runId = this.node.runId;
    if (runId !== undefined && this.subscriberRunId !== undefined) {
      if (runId === this.subscriberRunId) return true;
    } else if (remoteOf(this.node.client) === remoteOf(this.subscriber)) return true;
    this.lose();
    this.openSoon(true);
    return false;
  }

  /**
   * Opens the subscriber unless it is open or opening: at once when `now`, else not within
   * REOPEN_AFTER_MS of the last attempt. Only while the data connection is ready: its 'ready'
   * opens the channel otherwise. A failed attempt is tried again after REOPEN_AFTER_MS.
   */
  private openSoon(now: boolean): void {
    if (this.closed || this.opening || this.subscriber !== undefined) return;
    if (!now && performance.now() - this.lastAttempt < REOPEN_AFTER_MS) return;
    if (this.node.client.status !== 'ready') return;
    this.opening = true;
    this.lastAttempt = performance.now();
    this.open().then(
      () => (this.opening = false),
      () => {
        this.opening = false;
        this.retryLater();
      },
    );
  }

  private retryLater(): void {
    if (this.closed || this.retry !== undefined) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.openSoon(true);
    }, REOPEN_AFTER_MS);
    this.retry.unref();
  }

  /** Opens the subscriber: CLIENT ID and the server's run_id, then SUBSCRIBE. */
  private async open(): Promise<void> {
    const generation = this.connection;
    const subscriber = new Redis(subscriberOptions(this.node, this.timing.commandTimeout));
    subscriber.on('error', () => undefined);
    try {
      await subscriber.connect();
      const [[, id], [, info]] = ((await subscriber
        .pipeline()
        .client('ID')
        .info('server')
        .exec()) ?? []) as [Error | null, unknown][];
      subscriber.on('messageBuffer', this.invalidated);
      await subscriber.subscribe(INVALIDATE);
      // The data connection it was opened for is gone: the next one opens its own.
      if (this.closed || id === undefined || this.connection !== generation) {
        throw new Error('closed');
      }
      this.subscriberId = String(id);
      this.subscriberRunId = /run_id:(\w+)/.exec(String(info))?.[1];
    } catch (error) {
      disconnectNow(subscriber);
      throw error;
    }
    subscriber.once('end', () => {
      if (this.subscriber === subscriber) this.lose();
    });
    this.subscriber = subscriber;
    // From now on the channel's PINGs are judged by ping(), not by ioredis' timer.
    subscriber.options.commandTimeout = undefined;
    // Tracking is pointed at the new id before anything is stored.
    this.trackingSent = -1;
    this.epoch++;
    this.node.health.invalidation = 'up';
    this.node.health.invalidationError = undefined;
    this.pinger = setInterval(() => this.ping(subscriber), this.timing.pingInterval);
    this.pinger.unref();
  }

  /**
   * A link that hangs loses no connection: a PING unanswered within commandTimeout closes
   * the channel. Judged by a timer of its own, after the turn's I/O, and given its time again
   * when the timer fired far too late: ioredis' timer per command fires before replies waiting
   * in the socket are read, so this process's own stall (a long synchronous task, or a loop of
   * hits that never yields) would look like a hung server.
   */
  private ping(subscriber: Redis): void {
    if (this.pinging) return;
    this.pinging = true;
    let answered = false;
    const lost = () => {
      this.pinging = false;
      if (this.subscriber === subscriber) this.lose();
    };
    subscriber.ping().then(() => {
      answered = true;
      this.pinging = false;
    }, lost);
    const timeout = this.timing.commandTimeout;
    let due = performance.now() + timeout;
    const judge = () => {
      if (answered) return;
      if (performance.now() - due > timeout / 2) {
        due = performance.now() + timeout;
        setTimeout(judge, timeout).unref();
        return;
      }
      setImmediate(() => {
        if (!answered) lost();
      });
    };
    setTimeout(judge, timeout).unref();
  }

  /** The subscriber is gone or given up on: invalidations may be lost from now on. */
  private lose(): void {
    this.epoch++;
    clearInterval(this.pinger);
    this.pinger = undefined;
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    this.subscriberId = undefined;
    this.pinging = false;
    this.trackingSent = -1;
    this.trackingOn = -1;
    this.node.health.invalidation = 'down';
    if (subscriber !== undefined) disconnectNow(subscriber);
    if (subscriber !== undefined) this.retryLater();
  }

  /** An invalidation: the keys that changed, or null when the server flushed its data. */
  private readonly invalidated = (_channel: Buffer, keys: Buffer[] | Buffer | null): void => {
    if (!Array.isArray(keys)) {
      this.epoch++;
      return;
    }
    for (const key of keys) this.store.invalidate(fromWire(key));
  };
}

/** `host:port` at the other end of a client's socket. */
function remoteOf(client: Redis | undefined): string | undefined {
  const stream = client?.stream as { remoteAddress?: string; remotePort?: number } | undefined;
  return stream?.remoteAddress === undefined
    ? undefined
    : `${stream.remoteAddress}:${stream.remotePort}`;
}

/**
 * The data connection's options for the subscriber: the same server, credentials and TLS,
 * RESP2, and no retries (the channel reopens on demand). A Sentinel node's subscriber goes to
 * the master the data connection is on, not to whichever the sentinels name next.
 */
function subscriberOptions(node: RingNode, commandTimeout: number): RedisOptions {
  const { sentinels: _sentinels, name: _name, ...options } = node.client.options;
  const forced: RedisOptions = {
    protocol: 2,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    reconnectOnError: null,
    autoResubscribe: false,
    enableReadyCheck: false,
    commandTimeout,
    connectionName: undefined,
  };
  if (node.sentinel !== undefined) {
    const stream = node.client.stream as
      { remoteAddress?: string; remotePort?: number } | undefined;
    forced.host = stream?.remoteAddress;
    forced.port = stream?.remotePort;
  }
  return { ...options, ...forced };
}
