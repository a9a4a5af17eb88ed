import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { Redis, type RedisOptions } from 'ioredis';
import { joinAddress, splitAddress } from '../config/address.js';
import { RingConnectionError } from './connection-errors.js';
import { DeadlineWatch } from './deadline-watch.js';
import { NodeHealth } from './node-health.js';
import type { NodeAddress } from '../config/ring-config.js';
import { SentinelWatch } from './sentinel-watch.js';

/**
 * How long after a `+switch-master` a Sentinel node refuses to reconnect to the master it was
 * moved away from, should a sentinel that has not heard of the failover yet still name it.
 */
const SWITCH_PATIENCE_MS = 30_000;

/**
 * One Redis server of the ring: its ioredis client, its health, and the only code that
 * opens its connection.
 *
 * The client never waits: no offline queue, no per-request retries, no background
 * reconnects. A dead node must fail fast so the request moves on to the next node; the
 * ring decides when to try the node again (heartbeat or probe), not ioredis.
 */
/** Redis' words for a refused password or user (AUTH, HELLO … AUTH, or none given). */
const AUTH_FAILURE = /WRONGPASS|NOAUTH|invalid password|invalid username-password/i;

export class RingNode {
  readonly health: NodeHealth;
  readonly client: Redis;
  private connecting?: Promise<void>;
  private lastErrorMessage?: string;
  private corked = false;
  /** Set by close(): no connection is opened again. */
  private closed = false;
  /** Set by drop(), cleared when a new connection is opened. */
  private dropped = false;
  /** Sentinel nodes: listens for failovers announced by the sentinels. */
  private readonly watch?: SentinelWatch;
  /** Sentinel nodes: the last announced failover, until the node has reached the new master. */
  private switching?: { from: string; to: string; until: number };
  /** Sentinel nodes: failovers announced so far (see masterSwitched). */
  private announcements = 0;
  /** Why the last 'ready' was refused, for open(). */
  private refused?: string;
  /** The deadline of the ring's requests on this node (see send()). */
  private readonly deadlines: DeadlineWatch;

  /**
   * Sentinel nodes: called when the sentinels announce that the master moved away from the
   * one this node is connected to. The ring ejects the node (its heartbeat brings it back on
   * the new master); without a handler the connection is dropped.
   */
  onMasterSwitch?: (error: RingConnectionError) => void;

  constructor(
    readonly name: string,
    readonly capacity: number,
    connection: RedisOptions | string,
    readonly address: NodeAddress,
    private readonly commandTimeout: number,
  ) {
    this.health = new NodeHealth(name, address.sentinel);
    this.deadlines = new DeadlineWatch(commandTimeout, () => this.expire());
    const forced: RedisOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      reconnectOnError: null,
      commandTimeout,
      // Our own connect timer (in open()) decides; ioredis' socket timer only backs it up.
      connectTimeout: commandTimeout * 3,
    };
    if (address.sentinel !== undefined) Object.assign(forced, sentinelOptions());
    // The ring's own watch replaces ioredis' (see SentinelWatch); `failoverDetector: false`
    // turns it off.
    const watchFailovers =
      address.sentinel !== undefined &&
      typeof connection === 'object' &&
      connection.failoverDetector !== false;
    this.client =
      typeof connection === 'string'
        ? new Redis(connection, forced)
        : new Redis({
            // A sentinel that hangs must not hold up the search for the master: half the
            // connect's budget, so the next sentinel is asked, and the master reached, in time.
            ...(address.sentinel === undefined
              ? {}
              : { sentinelCommandTimeout: Math.max(1, Math.floor(commandTimeout / 2)) }),
            ...connection,
            ...forced,
          });
    // Without a listener ioredis prints every connection error to the console.
    this.client.on('error', (error: Error) => {
      this.lastErrorMessage = this.describe(error);
    });
    if (address.sentinel !== undefined) {
      this.client.on('ready', () => this.reachedMaster());
    }
    if (watchFailovers) {
      this.watch = new SentinelWatch(connection as RedisOptions, commandTimeout, (to) =>
        this.masterSwitched(to),
      );
    }
  }

  /**
   * Sentinel nodes, on 'ready': the ready check has confirmed the server answers as a master.
   * Remember which one — unless it is the master the sentinels just announced a failover
   * away from: a sentinel that has not heard of it yet named the old master, which may still
   * take writes that its new role will throw away. Refused, the node waits for the next try.
   */
  private reachedMaster(): void {
    const master = remoteAddress(this.client);
    if (master === undefined) return;
    const switching = this.switching;
    if (switching && performance.now() < switching.until && master === switching.from) {
      this.refused = `Sentinel moved the master of "${this.address.sentinel}" from ${switching.from} to ${switching.to}; a sentinel still names ${master}`;
      this.lastErrorMessage = this.refused;
      this.client.disconnect();
      return;
    }
    this.switching = undefined;
    this.health.connectedTo(master);
  }

  /**
   * Sentinel nodes: the sentinels announced `to` as the new master. Sentinels that announce
   * host names, or a `natMap` to names, name by host the server this node reached by IP
   * (`health.master` is the socket's address): the names are resolved first, or a sentinel
   * announcing late the failover this node has already followed would eject it.
   */
  private masterSwitched(to: string): void {
    // Lookups may resolve out of order: only the latest announcement counts.
    const announcement = ++this.announcements;
    const { host, port } = splitAddress(to);
    if (isIP(host) !== 0) {
      this.switchedTo(to, [to]);
      return;
    }
    const latest = (addresses: string[]) => {
      if (announcement === this.announcements) this.switchedTo(to, addresses);
    };
    lookup(host, { all: true }).then(
      (found) => latest(found.map((a) => joinAddress(unmapped(a.address), port))),
      // Unresolvable: it cannot be the server this node is connected to.
      () => latest([to]),
    );
  }

  /** `to`, announced as the new master, is the server at any of `addresses`. */
  private switchedTo(to: string, addresses: readonly string[]): void {
    const from = this.health.master;
    if (from === undefined || addresses.includes(from)) {
      // Already there (several sentinels announce the same failover), or never connected.
      if (from !== undefined) this.switching = undefined;
      return;
    }
    // Every sentinel announces the same failover: act on the first announcement only.
    if (this.switching?.from === from && this.switching.to === to) return;
    this.switching = { from, to, until: performance.now() + SWITCH_PATIENCE_MS };
    if (this.client.status !== 'ready') return;
    const message = `Sentinel moved the master of "${this.address.sentinel}" from ${from} to ${to}`;
    this.lastErrorMessage = message;
    if (this.onMasterSwitch) this.onMasterSwitch(new RingConnectionError(message));
    else this.drop();
  }

  /** The master group's name for a Sentinel node, undefined for a plain one. */
  get sentinel(): string | undefined {
    return this.address.sentinel;
  }

  /**
   * Holds the commands written to this node until the event loop has handled the I/O of
   * its current turn, then sends them in one socket write. The ring calls it only under
   * load (some command of the ring is in flight): at 1 in flight a command goes out at once.
   * Under load, the replies that arrive together from every node start the next commands
   * together; flushing after the turn's I/O (setImmediate) rather than after the current
   * tick (nextTick) sends them as one write per node instead of one per reply that started
   * them. That wins back the batching one busy socket gets for free, without
   * auto-pipelining's per-batch overhead.
   */
  batchWrites(): void {
    if (this.corked) return;
    const stream = this.client.stream;
    if (stream === undefined || stream === null) return;
    this.corked = true;
    stream.cork();
    setImmediate(() => {
      this.corked = false;
      stream.uncork();
    });
  }

  /**
   * Sends the ring's request `op` under the node's single deadline (DeadlineWatch) instead
   * of ioredis' timer per command. `op` must send its commands at once; it gets `arg` along
   * with the client, so a command made once serves every request without a closure each.
   * The caller reports with answered() when its promise settles. Everything else sent on
   * this client (PINGs, handoff, SCAN) keeps ioredis' `commandTimeout`.
   */
  send<T, A>(op: (client: Redis, arg: A) => Promise<T>, arg: A): Promise<T> {
    const options = this.client.options;
    this.deadlines.sent();
    // ioredis reads the option as each command is sent: off for op's commands only.
    options.commandTimeout = undefined;
    try {
      return op(this.client, arg);
    } finally {
      options.commandTimeout = this.commandTimeout;
    }
  }

  /** A request sent with send() that sends its commands in rounds had one round answered. */
  progressed(): void {
    this.deadlines.progressed();
  }

  /** A request sent with send() settled. */
  answered(): void {
    this.deadlines.answered();
  }

  /** The oldest request waited `commandTimeout` in vain: the node is hung or gone. */
  private expire(): void {
    this.lastErrorMessage = `no reply within ${this.commandTimeout} ms`;
    // Every command waiting on the connection fails now, as a connection error.
    this.drop();
  }

  /**
   * True from drop() until the next connection is opened: the connection was closed on
   * purpose (no reply in time, or the ring ejected the node), not lost.
   */
  get droppedOnPurpose(): boolean {
    return this.dropped;
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
    if (this.closed) return Promise.reject(new RingConnectionError('the node is closed'));
    if (this.client.status === 'ready') return Promise.resolve();
    this.connecting ??= this.open(timeoutMs).finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private open(timeoutMs: number): Promise<void> {
    const client = this.client;
    this.watch?.start();
    return new Promise<void>((resolve, reject) => {
      const settle = (error?: Error) => {
        clearTimeout(timer);
        client.off('ready', onReady);
        client.off('end', onEnd);
        if (error) reject(error);
        else resolve();
      };
      const onReady = () => {
        // Sentinel nodes: reachedMaster() may have refused this master (see there).
        const refused = this.refused;
        this.refused = undefined;
        settle(refused === undefined ? undefined : new RingConnectionError(refused));
      };
      // False while an earlier, abandoned connection is still closing: its 'end' is not this
      // attempt's failure but the moment this attempt can start.
      let opening = false;
      const start = () => {
        opening = true;
        this.lastErrorMessage = undefined;
        this.refused = undefined;
        this.dropped = false;
        // Failures arrive as 'error' + 'end' events, handled here.
        client.connect().catch(() => undefined);
      };
      const onEnd = () => {
        if (!opening) start();
        else settle(new RingConnectionError(this.lastErrorMessage ?? 'connection closed'));
      };
      const started = performance.now();
      let stalled = false;
      const expire = () => {
        // A timer that fires far too late means this process was stalled (a slow boot, a
        // long synchronous task), not that the node is slow: give the node its time once
        // more rather than eject a healthy node for our own stall.
        if (!stalled && performance.now() - started > timeoutMs * 1.5) {
          stalled = true;
          timer = setTimeout(expire, timeoutMs);
          return;
        }
        // A hung server completes the TCP handshake in the kernel and then never answers:
        // destroy the half-open connection (drop(): a polite close would wait for the hung
        // server too), so the next attempt need not wait for it.
        this.drop();
        settle(new RingConnectionError(`no answer within ${timeoutMs} ms while connecting`));
      };
      let timer = setTimeout(expire, timeoutMs);
      client.on('ready', onReady);
      client.on('end', onEnd);
      const status = client.status;
      if (status === 'wait' || status === 'end' || status === 'close') start();
    });
  }

  /** Drops the connection at once: commands still waiting on it fail now, not at their timeout. */
  drop(): void {
    // Many in-flight requests fail together: disconnect once, not once per request (each
    // disconnect adds a listener to the socket).
    if (this.dropped || this.client.status === 'end') return;
    this.dropped = true;
    this.client.disconnect();
    // disconnect() ends the socket politely, which a hung server never acknowledges: destroy
    // it so the commands queued on it fail now instead of at their own timeouts.
    this.client.stream?.destroy();
  }

  /**
   * An error's message for health reports, with this node's credentials scrubbed should a
   * library echo them. ioredis' generic "closed"/"not writeable" become "connection closed"
   * with the socket error that caused it, which is what an operator needs to see.
   */
  describe(error: unknown): string {
    let message = error instanceof Error ? error.message : String(error);
    const noSentinel = /^All sentinels are unreachable[^.]*\.(?: Last error: (.*))?$/s.exec(
      message,
    );
    if (noSentinel) {
      // ioredis' sentinel clients report a refused connection as "Connection is closed.":
      // the addresses tried say more.
      const last = (noSentinel[1] ?? '').replace(/^Connection is closed\.$/, '');
      const tried = this.address.sentinels?.join(', ') ?? '';
      message = /No such master/i.test(last)
        ? `the sentinels (${tried}) know no master group named "${this.address.sentinel}"`
        : `no sentinel of "${this.address.sentinel}" answered (${tried}${last ? `; last error: ${last}` : ''})`;
    } else if (
      message.startsWith("Stream isn't writeable") ||
      message.startsWith('Connection is closed')
    ) {
      message = this.lastErrorMessage
        ? `connection closed (${this.lastErrorMessage})`
        : 'connection closed';
    } else if (AUTH_FAILURE.test(message) && !message.startsWith('authentication failed')) {
      message = `authentication failed (${message})`;
    }
    for (const secret of this.address.secrets) message = message.split(secret).join('***');
    return message;
  }

  /** Closes the connection politely (QUIT), or at once if the node does not answer. */
  async close(timeoutMs: number): Promise<void> {
    this.closed = true;
    this.watch?.close();
    this.deadlines.stop();
    const client = this.client;
    if (client.status === 'ready') {
      const timer = setTimeout(() => this.drop(), timeoutMs);
      try {
        await client.quit();
      } catch {
        // The node went away meanwhile: dropped below.
      } finally {
        clearTimeout(timer);
      }
    }
    // A command still waiting on a hung node fails now rather than when its socket gives up;
    // a connection still being opened is abandoned.
    this.drop();
  }
}

/**
 * What a Sentinel node's client must do on top of a plain node's. ioredis' Sentinel connector
 * asks the sentinels for the master on every connect, which is what the ring wants: the
 * heartbeat's reconnect finds the promoted replica by itself. But:
 * - by default it retries the whole sentinel list forever when none answers: the ring's
 *   connect must fail within `commandTimeout` instead, like any dead node. But one pass is not
 *   enough either: each connect starts where the previous one stopped in the list (after the
 *   sentinel that named the master), so a pass may cover only the last sentinels and then
 *   fail, claiming no sentinel answered. One immediate second pass asks each of them;
 * - its ready check (INFO) is what rejects a server that is no longer, or not yet, the master;
 * - a connection to a master that Sentinel demoted answers writes with READONLY: drop it at the
 *   first one, so the next request reconnects through the sentinels to the new master;
 * - its `failoverDetector` is replaced by the ring's own SentinelWatch.
 */
function sentinelOptions(): RedisOptions {
  return {
    sentinelRetryStrategy: (attempt: number) => (attempt === 1 ? 0 : null),
    enableReadyCheck: true,
    role: 'master',
    reconnectOnError: (error: Error) => (error.message.startsWith('READONLY') ? 1 : false),
    // Replaced by the ring's SentinelWatch.
    failoverDetector: false,
  };
}

/** `host:port` of the server at the other end of the client's socket, IPv4-mapped addresses unwrapped. */
function remoteAddress(client: Redis): string | undefined {
  const stream = client.stream as { remoteAddress?: string; remotePort?: number } | undefined;
  const host = stream?.remoteAddress;
  const port = stream?.remotePort;
  if (host === undefined || port === undefined) return undefined;
  return joinAddress(unmapped(host), port);
}

/** An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) as the IPv4 address it maps. */
function unmapped(host: string): string {
  return host.startsWith('::ffff:') && host.includes('.') ? host.slice('::ffff:'.length) : host;
}
