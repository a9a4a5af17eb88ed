/**
 * A TCP proxy on 127.0.0.1 in front of one redis-server, so a test can break the network
 * between ONE client process and ONE node while every other process still reaches it: the
 * asymmetric faults that a SIGSTOP of the server cannot make. One proxy per (process, node).
 *
 * Modes, switched at any time by the process that owns the proxy:
 * - `cut()`: every connection is reset and new ones are reset as soon as they are accepted
 *   (the client sees ECONNRESET), as when a route disappears;
 * - `hang()`: connections stay open but nothing is forwarded either way; the bytes are held
 *   and delivered by `heal()` if both ends are still there (a client that gave up and closed
 *   its socket meanwhile loses what it had queued: its reset got through). New connections
 *   are accepted and held the same way, as a wedged path completes handshakes in the kernel;
 * - `delay(ms)`: every chunk, both ways, is forwarded `ms` after it arrived, in order;
 * - `blackhole()`: as `hang()`, but what is held is never delivered: the connections open until
 *   `heal()` stay silent for good (a stateful firewall that lost their flows), new ones pass;
 * - `deliverLate()`: what the current connections send to the server is held, and kept even
 *   after the client closed its socket; `heal()` delivers it and then closes the server's
 *   side. That is what the kernel does with an abandoned socket's unacknowledged data: it
 *   retransmits it, and it lands after the client moved on. New connections pass normally;
 * - `heal()`: everything forwarded at once again, held bytes first; `close()`: gone for good.
 *
 * Dependency-free (node:net only), like the other helpers, so it keeps working while the code
 * under test is broken.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

const HOST = '127.0.0.1';

export type ProxyMode = 'open' | 'cut' | 'hang';

/** One direction of one connection: the chunks not yet written, each with when it is due. */
interface Lane {
  to: Socket;
  queue: { chunk: Buffer; due: number }[];
  timer?: NodeJS.Timeout;
  /** The sender is done: end the receiver's side once the queue is written. */
  ended: boolean;
}

/** A client connection and its connection to the server. */
interface Pipe {
  client: Socket;
  upstream: Socket;
  toServer: Lane;
  toClient: Lane;
  /** deliverLate(): client→server bytes are held until heal(), even past the client's close. */
  late: boolean;
  /** The client ended or closed its side. */
  clientGone: boolean;
  /** blackhole(): nothing is forwarded either way, ever. */
  silent: boolean;
  clientClosed: boolean;
  upstreamClosed: boolean;
}

export interface TcpProxyStats {
  /** Connections accepted and forwarded. */
  accepted: number;
  /** Connections reset at accept (cut). */
  refused: number;
  /** Connections open now. */
  open: number;
  /** Bytes held right now (hang, deliverLate, delay), both directions. */
  heldBytes: number;
  /** Bytes delivered to the server after their client had closed (deliverLate). */
  deliveredLate: number;
  /**
   * Client→server bytes held by deliverLate() that never landed: the server closed their
   * connection first (e.g. CLIENT KILL), so they were dropped, as a kernel drops segments for
   * a closed socket.
   */
  droppedLate: number;
}

export class TcpProxy {
  #mode: ProxyMode = 'open';
  #blackholed = false;
  #delayMs = 0;
  #closed = false;
  readonly #pipes = new Set<Pipe>();
  #accepted = 0;
  #refused = 0;
  #deliveredLate = 0;
  #droppedLate = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    /** The port of the redis-server behind the proxy. */
    readonly targetPort: number,
  ) {}

  /** Listens on a free port of 127.0.0.1 and forwards to `targetPort` on 127.0.0.1. */
  static async start(targetPort: number): Promise<TcpProxy> {
    const server = createServer({ noDelay: true });
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, HOST, () => {
        server.off('error', reject);
        const address = server.address();
        resolve(typeof address === 'object' && address ? address.port : 0);
      });
    });
    const proxy = new TcpProxy(server, port, targetPort);
    server.on('connection', (socket) => proxy.#accept(socket));
    return proxy;
  }

  get mode(): ProxyMode {
    return this.#mode;
  }

  get delayMs(): number {
    return this.#delayMs;
  }

  /** `redis://127.0.0.1:<port>`: a ring node's connection through this proxy. */
  get url(): string {
    return `redis://${HOST}:${this.port}`;
  }

  stats(): TcpProxyStats {
    let heldBytes = 0;
    for (const pipe of this.#pipes) {
      for (const lane of [pipe.toServer, pipe.toClient]) {
        for (const { chunk } of lane.queue) heldBytes += chunk.length;
      }
    }
    return {
      accepted: this.#accepted,
      refused: this.#refused,
      open: this.#pipes.size,
      heldBytes,
      deliveredLate: this.#deliveredLate,
      droppedLate: this.#droppedLate,
    };
  }

  /** Resets every connection, and every new one until heal(). */
  cut(): void {
    this.#mode = 'cut';
    for (const pipe of this.#pipes) this.#destroy(pipe, true);
  }

  /** Forwards nothing either way until heal(); connections stay open. */
  hang(): void {
    this.#mode = 'hang';
  }

  /** Forwards nothing on the connections open now or opened until heal(), ever. */
  blackhole(): void {
    this.#mode = 'hang';
    this.#blackholed = true;
    for (const pipe of this.#pipes) pipe.silent = true;
  }

  /** Forwards every chunk `ms` after it arrived (0: at once). */
  delay(ms: number): void {
    if (!(ms >= 0) || !Number.isFinite(ms)) throw new RangeError(`delay: bad ms ${ms}`);
    this.#delayMs = ms;
  }

  /**
   * Holds what the current connections send to the server, until heal(), even after their
   * client closed them. Connections opened afterwards are forwarded as the mode says.
   */
  deliverLate(): void {
    for (const pipe of this.#pipes) pipe.late = true;
  }

  /** Back to normal: no delay, held bytes delivered now (late ones included). */
  heal(): void {
    this.#mode = 'open';
    this.#blackholed = false;
    this.#delayMs = 0;
    for (const pipe of this.#pipes) {
      const wasLate = pipe.late;
      pipe.late = false;
      for (const lane of [pipe.toServer, pipe.toClient]) {
        for (const item of lane.queue) item.due = 0;
      }
      if (wasLate && pipe.clientGone) {
        for (const { chunk } of pipe.toServer.queue) this.#deliveredLate += chunk.length;
        // The client is gone: after its bytes, the server sees the connection end.
        pipe.toServer.ended = true;
      }
      this.#pump(pipe, pipe.toServer);
      this.#pump(pipe, pipe.toClient);
    }
  }

  /** Closes every connection and the listener. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const pipe of this.#pipes) this.#destroy(pipe, false);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #accept(client: Socket): void {
    client.on('error', () => undefined);
    if (this.#closed || this.#mode === 'cut') {
      this.#refused++;
      client.resetAndDestroy();
      return;
    }
    this.#accepted++;
    client.setNoDelay(true);
    const upstream = createConnection({ host: HOST, port: this.targetPort, noDelay: true });
    upstream.on('error', () => undefined);
    const pipe: Pipe = {
      client,
      upstream,
      toServer: { to: upstream, queue: [], ended: false },
      toClient: { to: client, queue: [], ended: false },
      late: false,
      clientGone: false,
      silent: this.#blackholed,
      clientClosed: false,
      upstreamClosed: false,
    };
    this.#pipes.add(pipe);
    // Writes before the upstream connection is established are buffered by the socket.
    client.on('data', (chunk: Buffer) => this.#arrived(pipe, pipe.toServer, chunk));
    upstream.on('data', (chunk: Buffer) => this.#arrived(pipe, pipe.toClient, chunk));
    client.on('end', () => this.#clientGone(pipe));
    client.on('close', () => {
      pipe.clientClosed = true;
      this.#clientGone(pipe);
      this.#forgetIfDone(pipe);
    });
    const upstreamDone = (): void => {
      // Whatever the server still had to say is queued: the client's side ends after it.
      pipe.toClient.ended = true;
      this.#pump(pipe, pipe.toClient);
    };
    upstream.on('end', upstreamDone);
    upstream.on('close', () => {
      pipe.upstreamClosed = true;
      upstreamDone();
      this.#forgetIfDone(pipe);
    });
  }

  /** The client ended or closed its side. */
  #clientGone(pipe: Pipe): void {
    if (pipe.clientGone) return;
    pipe.clientGone = true;
    if (pipe.late) return; // heal() delivers what it sent, then ends the server's side
    if (this.#mode === 'hang' || pipe.silent) {
      // Its reset got through before its bytes: they are lost.
      this.#destroy(pipe, false);
      return;
    }
    // What is still delayed is on the wire: it lands, then the server sees the end.
    pipe.toServer.ended = true;
    this.#pump(pipe, pipe.toServer);
  }

  #arrived(pipe: Pipe, lane: Lane, chunk: Buffer): void {
    if (pipe.silent) return;
    lane.queue.push({ chunk, due: performance.now() + this.#delayMs });
    this.#pump(pipe, lane);
  }

  #held(pipe: Pipe, lane: Lane): boolean {
    return pipe.silent || this.#mode === 'hang' || (lane === pipe.toServer && pipe.late);
  }

  /** Writes what is due on `lane`, in order; a timer for the next chunk not due yet. */
  #pump(pipe: Pipe, lane: Lane): void {
    if (lane.timer !== undefined || !this.#pipes.has(pipe) || this.#held(pipe, lane)) return;
    const now = performance.now();
    while (lane.queue.length > 0) {
      const head = lane.queue[0];
      if (head.due > now) {
        lane.timer = setTimeout(() => {
          lane.timer = undefined;
          this.#pump(pipe, lane);
        }, head.due - now);
        return;
      }
      lane.queue.shift();
      if (!lane.to.destroyed) lane.to.write(head.chunk);
    }
    if (lane.ended && !lane.to.destroyed) lane.to.end();
  }

  /** Both sockets closed: nothing is left to forward. */
  #forgetIfDone(pipe: Pipe): void {
    if (pipe.clientClosed && pipe.upstreamClosed) this.#destroy(pipe, false);
  }

  /** Drops a pair: `reset` sends the client a RST (cut), else both sides are just destroyed. */
  #destroy(pipe: Pipe, reset: boolean): void {
    if (!this.#pipes.delete(pipe)) return;
    if (pipe.late) for (const { chunk } of pipe.toServer.queue) this.#droppedLate += chunk.length;
    for (const lane of [pipe.toServer, pipe.toClient]) {
      clearTimeout(lane.timer);
      lane.queue.length = 0;
    }
    if (reset && !pipe.client.destroyed) pipe.client.resetAndDestroy();
    else pipe.client.destroy();
    pipe.upstream.destroy();
  }
}
