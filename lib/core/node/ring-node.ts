import { disconnectNow } from './disconnect-now.js';
import { Redis, type RedisOptions } from 'ioredis';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { NodeAddress } from '../config/ring-config.js';
import { RingConnectionError } from './connection-errors.js';
import { stallAwareTimer } from './connect-timer.js';
import { DeadlineWatch } from './deadline-watch.js';
import { describeNodeError } from './describe-error.js';
import { NodeHealth } from './node-health.js';
import { SentinelMaster, sentinelDefaults, sentinelOptions } from './sentinel-master.js';
import { ServerTrust } from './server-trust.js';

/**
 * One Redis server of the ring: its ioredis client, its health, and the only code that
 * opens its connection.
 *
 * The client never waits: no offline queue, no per-request retries, no background
 * reconnects. A dead node must fail fast so the request moves on to the next node; the
 * ring decides when to try the node again (heartbeat or probe), not ioredis.
 */
/** The trust key of a dict without a prefix (see ServerTrust). */
const DEFAULT_TRUST_KEY = '__ring-redis__:0::instance';

export interface RingNodeOptions {
  /** The key that vouches for the server's data (see ServerTrust); one per dict prefix. */
  trustKey?: string;
  /** The longest connect any caller asks for (see `connect`); ioredis' own timer backs it up. */
  connectTimeout?: number;
}

export class RingNode {
  readonly health: NodeHealth;
  readonly client: Redis;
  private connecting?: Promise<void>;
  /** When the connect under way gives up (performance.now()). */
  private connectingUntil = 0;
  private lastErrorMessage?: string;
  /** Why the ring dropped the connection: no reply in time (the server closed nothing). */
  private timedOut?: string;
  private corked = false;
  /** See greetingTimedOut. */
  private slowGreeting = false;
  /** Set by close(): no connection is opened again. */
  private closed = false;
  /** Set by drop(), cleared when a new connection is opened. */
  private dropped = false;
  /** Sentinel nodes: which master the node is on, and the failovers announced. */
  readonly sentinelMaster?: SentinelMaster;
  /** The deadline of the ring's requests on this node (see send()). */
  private readonly deadlines: DeadlineWatch;
  /** The server behind the node, across connections: restarts, earlier connections. */
  private readonly trust: ServerTrust;
  /** The current connection passed its handshake. */
  private verified = false;
  /**
   * Set when setNodes() adds the node: its entries may predate writes made elsewhere (it may
   * have been a member before), so they are cleared before it serves (see HandoffCatchUp).
   */
  mustClear = false;

  /**
   * Sentinel nodes: called when the sentinels announce that the master moved away from the
   * one this node is connected to. The ring ejects the node (its heartbeat brings it back on
   * the new master); without a handler the connection is dropped.
   */
  onMasterSwitch?: (error: RingConnectionError) => void;

  /**
   * Judges a fresh connection once the server has told who it is (`runId`): why it must not
   * be used (it is another node's server, reached by another name), or undefined.
   */
  vet?: () => string | undefined;

  constructor(
    readonly name: string,
    readonly capacity: number,
    connection: RedisOptions | string,
    readonly address: NodeAddress,
    readonly commandTimeout: number,
    { trustKey = DEFAULT_TRUST_KEY, connectTimeout = commandTimeout }: RingNodeOptions = {},
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
      connectTimeout: Math.max(commandTimeout * 3, connectTimeout),
    };
    if (address.sentinel !== undefined) Object.assign(forced, sentinelOptions());
    this.client =
      typeof connection === 'string'
        ? new Redis(connection, forced)
        : new Redis({
            ...(address.sentinel === undefined ? {} : sentinelDefaults(commandTimeout)),
            ...connection,
            ...forced,
          });
    this.trust = new ServerTrust(trustKey, this.client.options.db ?? 0);
    // Without a listener ioredis prints every connection error to the console.
    this.client.on('error', (error: Error) => {
      this.lastErrorMessage = this.describe(error);
    });
    this.client.on('end', () => {
      this.verified = false;
      this.trust.lost();
    });
    if (address.sentinel !== undefined) {
      const group = address.sentinel;
      this.sentinelMaster = new SentinelMaster(
        {
          client: this.client,
          health: this.health,
          group,
          noteError: (message) => (this.lastErrorMessage = message),
          switched: (error) => (this.onMasterSwitch ? this.onMasterSwitch(error) : this.drop()),
        },
        connection,
        commandTimeout,
      );
    }
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
    this.deadlines.sent();
    // untimed(), inlined: a closure per request would be garbage on the hot path.
    const options = this.client.options;
    options.commandTimeout = undefined;
    try {
      return op(this.client, arg);
    } finally {
      options.commandTimeout = this.commandTimeout;
    }
  }

  /**
   * Runs `send`, which sends its commands at once, without ioredis' timer per command: their
   * deadline is the caller's. ioredis' timers cannot tell a stalled process from a silent
   * server (they fire before the replies waiting in the socket are read).
   */
  private untimed<T>(send: () => T): T {
    const options = this.client.options;
    // ioredis reads the option as each command is sent: off for these commands only.
    options.commandTimeout = undefined;
    try {
      return send();
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
    this.timedOut = `${this.lastErrorMessage} (the connection was dropped)`;
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

  /** True when the ring's commands can be written right now: connected, greeted, trusted. */
  get ready(): boolean {
    return this.client.status === 'ready' && this.verified && this.trust.distrust === undefined;
  }

  /** The longest value the server accepts (see PayloadLimit); undefined before it said. */
  get maxBulkBytes(): number | undefined {
    return this.trust.maxBulkBytes;
  }

  /** The server process (`run_id`) of the last connection, if the server told it. */
  get runId(): string | undefined {
    return this.trust.serverRunId;
  }

  /**
   * Why the server's data must not be served until the dict clears it (it restarted or
   * failed over since it was vouched for), if it must not.
   */
  get distrust(): string | undefined {
    return this.trust.distrust;
  }

  /**
   * The last connect ran out of time while the server was answering it: a slow link, not a
   * node refused, unrouted, hung or behind a black hole (see NodeReviver's budgets).
   */
  get greetingTimedOut(): boolean {
    return this.slowGreeting;
  }

  /**
   * Opens the connection if it is not open, within `timeoutMs`. Concurrent callers share
   * one attempt. Rejects with a connection-class error, also when the server's data cannot be
   * trusted — unless `distrusted` is allowed: the reviver connects to clear it.
   */
  connect(timeoutMs: number, distrusted: 'allow' | 'refuse' = 'refuse'): Promise<void> {
    if (this.closed) return Promise.reject(new RingConnectionError('the node is closed'));
    if (!(this.client.status === 'ready' && this.verified)) {
      const until = performance.now() + timeoutMs;
      if (this.connecting === undefined) {
        this.connectingUntil = until;
        this.connecting = this.open(timeoutMs).finally(() => {
          this.connecting = undefined;
        });
      }
      // A caller joining a longer connect (a reconnect) does not wait past its own deadline.
      const pending =
        this.connectingUntil > until + 1
          ? withDeadline(this.connecting, timeoutMs)
          : this.connecting;
      return distrusted === 'allow' ? pending : pending.then(this.trusted);
    }
    return distrusted === 'allow' ? Promise.resolve() : this.trusted();
  }

  /** Resolves while the server's data can be served, else rejects saying why. */
  private readonly trusted = (): Promise<void> => {
    const distrust = this.trust.distrust;
    return distrust === undefined
      ? Promise.resolve()
      : Promise.reject(new RingConnectionError(distrust));
  };

  /** The dict cleared the node's entries: they are served again (see ServerTrust). */
  vouch(): Promise<void> {
    return this.trust.vouch(this.client);
  }

  /** The node left the ring: whoever adds it back clears its entries first (see ServerTrust). */
  retire(): Promise<void> {
    return this.trust.retire(this.client);
  }

  private open(timeoutMs: number): Promise<void> {
    const client = this.client;
    this.sentinelMaster?.start();
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (error?: Error) => {
        settled = true;
        client.options.commandTimeout = this.commandTimeout;
        cancelTimer();
        client.off('ready', onReady);
        client.off('end', onEnd);
        if (error) reject(error);
        else resolve();
      };
      const onReady = () => this.greet(settle);
      // False while an earlier, abandoned connection is still closing: its 'end' is not this
      // attempt's failure but the moment this attempt can start.
      let opening = false;
      const start = () => {
        opening = true;
        this.lastErrorMessage = undefined;
        this.timedOut = undefined;
        this.sentinelMaster?.takeRefusal();
        this.dropped = false;
        this.verified = false;
        this.slowGreeting = false;
        // ioredis' connect-time commands (HELLO, CLIENT SETINFO, SELECT, the ready check) are
        // under this attempt's own timer, not ioredis' per-command one: a connect may be given
        // longer than commandTimeout (connectTimeout), and the timer tells a stall apart.
        client.options.commandTimeout = undefined;
        // Failures arrive as 'error' + 'end' events, handled here.
        client.connect().catch(() => undefined);
      };
      const onEnd = () => {
        if (!opening) start();
        else settle(new RingConnectionError(this.lastErrorMessage ?? 'connection closed'));
      };
      const cancelTimer = stallAwareTimer(timeoutMs, () => {
        if (!settled) settle(this.gaveUp(timeoutMs));
      });
      client.on('ready', onReady);
      client.on('end', onEnd);
      const status = client.status;
      if (status === 'wait' || status === 'end' || status === 'close') start();
    });
  }

  /**
   * The connection is ready: greeted before any command of the ring (earlier connections
   * killed, the server judged), under open()'s own timer, which tells a stalled process from a
   * silent server; then vetted. `settle` ends the attempt.
   */
  private greet(settle: (error?: Error) => void): void {
    // Sentinel nodes: reachedMaster() may have refused this master (see there).
    const refused = this.sentinelMaster?.takeRefusal();
    if (refused !== undefined) {
      settle(new RingConnectionError(refused));
      return;
    }
    this.untimed(() => this.trust.greet(this.client)).then(
      () => {
        const refusal = this.vet?.();
        if (refusal !== undefined) {
          this.lastErrorMessage = refusal;
          this.drop();
          settle(new RingConnectionError(refusal));
          return;
        }
        this.verified = true;
        settle();
      },
      (error: Error) => {
        this.lastErrorMessage = this.describe(error);
        this.drop();
        settle(
          error instanceof RingConnectionError
            ? error
            : new RingConnectionError(this.lastErrorMessage),
        );
      },
    );
  }

  /** A connect ran out of its `timeoutMs`: noted, the connection dropped; the error to answer. */
  private gaveUp(timeoutMs: number): RingConnectionError {
    // The server answered part of it: a slow link. Silent (a hung server, a black hole that
    // kept the connection) is not. A TLS socket counts only the bytes it decrypted: its
    // server's certificate, received, is an answer too (the greeting after the handshake may
    // take the rest of the budget).
    const socket = this.client.stream as Socket | TLSSocket | undefined;
    const certified =
      socket instanceof TLSSocket && Object.keys(socket.getPeerCertificate()).length > 0;
    this.slowGreeting =
      socket !== undefined && !socket.destroyed && (socket.bytesRead > 0 || certified);
    // A hung server completes the TCP handshake in the kernel and then never answers: destroy
    // the half-open connection (drop(): a polite close would wait for the hung server too), so
    // the next attempt need not wait for it.
    this.drop();
    return new RingConnectionError(`no answer within ${timeoutMs} ms while connecting`);
  }

  /** Drops the connection at once: commands still waiting on it fail now, not at their timeout. */
  drop(): void {
    // Many in-flight requests fail together: disconnect once, not once per request (each
    // disconnect adds a listener to the socket).
    if (this.dropped || this.client.status === 'end') return;
    this.dropped = true;
    this.verified = false;
    disconnectNow(this.client);
  }

  /** An error's message for health reports, credentials scrubbed (see describeNodeError). */
  describe(error: unknown): string {
    return describeNodeError(error, this.address, {
      lastError: this.lastErrorMessage,
      timedOut: this.timedOut,
    });
  }

  /** Closes the connection politely (QUIT), or at once if the node does not answer. */
  async close(timeoutMs: number): Promise<void> {
    this.closed = true;
    this.sentinelMaster?.close();
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

/** `pending`, or a connection-class failure once `timeoutMs` have passed; `pending` goes on. */
function withDeadline(pending: Promise<void>, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new RingConnectionError(`no answer within ${timeoutMs} ms while connecting`)),
      timeoutMs,
    );
    pending.then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
