import { createConnection, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { redisCommand } from '../helpers/redis-command.js';
import { RedisServer } from '../helpers/redis-servers.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { sleep } from '../helpers/wait.js';

/**
 * The proxy that the cross-process chaos harness puts between each process and each node:
 * every mode does what it says to a real redis-server, seen from a raw client socket
 * (inline commands, so what goes over the wire is exactly what the test wrote).
 */

/** How long "nothing arrives" is watched for: well past a loopback round trip. */
const QUIET_MS = 300;

/** A raw connection: what it received so far, and whether the other end closed or reset it. */
class RawClient {
  received = '';
  closed = false;
  error?: NodeJS.ErrnoException;
  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => (this.received += chunk.toString()));
    socket.on('error', (error: NodeJS.ErrnoException) => (this.error = error));
    socket.on('close', () => (this.closed = true));
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve) => {
      const socket = createConnection({ host: '127.0.0.1', port });
      const client = new RawClient(socket);
      // Resolves on connect, or once a refused connection is known to be closed.
      socket.once('connect', () => resolve(client));
      socket.once('close', () => resolve(client));
    });
  }

  send(line: string): void {
    this.socket.write(`${line}\r\n`);
  }

  /** Waits until `text` has arrived; fails after `timeoutMs`. */
  async waitFor(text: string, timeoutMs = 2_000): Promise<number> {
    const started = performance.now();
    while (!this.received.includes(text)) {
      if (performance.now() - started > timeoutMs) {
        throw new Error(`"${text}" not received within ${timeoutMs} ms (got ${this.received})`);
      }
      await sleep(2);
    }
    return performance.now() - started;
  }

  async waitClosed(timeoutMs = 2_000): Promise<void> {
    const started = performance.now();
    while (!this.closed) {
      if (performance.now() - started > timeoutMs) throw new Error('connection still open');
      await sleep(2);
    }
  }

  destroy(): void {
    this.socket.destroy();
  }
}

let server: RedisServer;
let proxy: TcpProxy;
const clients: RawClient[] = [];

async function client(): Promise<RawClient> {
  const raw = await RawClient.connect(proxy.port);
  clients.push(raw);
  return raw;
}

beforeAll(async () => {
  server = await RedisServer.start({ name: 'proxied' });
});

afterAll(async () => {
  await server?.stop();
});

afterEach(async () => {
  for (const raw of clients.splice(0)) raw.destroy();
  await proxy?.close();
  await redisCommand(server.port, 'FLUSHALL');
});

async function freshProxy(): Promise<TcpProxy> {
  proxy = await TcpProxy.start(server.port);
  return proxy;
}

describe('TcpProxy', () => {
  it('forwards both ways while open', async () => {
    await freshProxy();
    const raw = await client();
    raw.send('SET k through');
    await raw.waitFor('+OK');
    raw.send('GET k');
    await raw.waitFor('through');
    expect(await redisCommand(server.port, 'GET', 'k')).toBe('through');
    expect(proxy.url).toBe(`redis://127.0.0.1:${proxy.port}`);
    expect(proxy.stats()).toMatchObject({ accepted: 1, refused: 0, open: 1 });
  });

  it('cut resets the open connections and every new one, until heal', async () => {
    await freshProxy();
    const before = await client();
    before.send('PING');
    await before.waitFor('PONG');
    proxy.cut();
    await before.waitClosed();
    expect(before.error?.code).toBe('ECONNRESET');

    const during = await client();
    during.send('SET k during');
    await during.waitClosed();
    expect(during.received).toBe('');
    expect(await redisCommand(server.port, 'GET', 'k')).toBe('(nil)');
    expect(proxy.stats()).toMatchObject({ refused: 1, open: 0 });

    proxy.heal();
    const after = await client();
    after.send('PING');
    await after.waitFor('PONG');
  });

  it('hang holds the bytes to the server and heal delivers them', async () => {
    await freshProxy();
    const raw = await client();
    raw.send('PING');
    await raw.waitFor('PONG');
    proxy.hang();
    raw.send('INCR n');
    await sleep(QUIET_MS);
    expect(raw.received).not.toContain(':1');
    expect(raw.closed).toBe(false);
    // The server never saw it.
    expect(await redisCommand(server.port, 'GET', 'n')).toBe('(nil)');
    expect(proxy.stats().heldBytes).toBeGreaterThan(0);
    proxy.heal();
    await raw.waitFor(':1');
    expect(await redisCommand(server.port, 'GET', 'n')).toBe('1');
  });

  it('hang holds the bytes to the client too', async () => {
    await freshProxy();
    const raw = await client();
    raw.send('SUBSCRIBE ch');
    await raw.waitFor('subscribe');
    proxy.hang();
    expect(await redisCommand(server.port, 'PUBLISH', 'ch', 'held-message')).toBe('1');
    await sleep(QUIET_MS);
    expect(raw.received).not.toContain('held-message');
    proxy.heal();
    await raw.waitFor('held-message');
  });

  it('a connection opened during a hang is held as well', async () => {
    await freshProxy();
    proxy.hang();
    const raw = await client();
    raw.send('PING');
    await sleep(QUIET_MS);
    expect(raw.received).toBe('');
    expect(raw.closed).toBe(false);
    proxy.heal();
    await raw.waitFor('PONG');
  });

  it('what a client sent before closing during a hang is lost', async () => {
    await freshProxy();
    const raw = await client();
    raw.send('PING');
    await raw.waitFor('PONG');
    proxy.hang();
    raw.send('SET lost yes');
    await sleep(50);
    raw.destroy();
    await sleep(50);
    proxy.heal();
    await sleep(QUIET_MS);
    expect(await redisCommand(server.port, 'GET', 'lost')).toBe('(nil)');
    expect(proxy.stats()).toMatchObject({ open: 0, deliveredLate: 0 });
  });

  it('delay forwards every chunk after the delay, both ways, in order', async () => {
    await freshProxy();
    const raw = await client();
    raw.send('PING');
    await raw.waitFor('PONG');
    proxy.delay(150);
    raw.received = '';
    raw.send('INCR d');
    raw.send('INCR d');
    raw.send('INCR d');
    // 150 ms to the server, 150 ms back.
    const delayed = await raw.waitFor(':3');
    // At least the two delays; an undelayed round trip is no yardstick on a loaded machine.
    expect(delayed).toBeGreaterThanOrEqual(290);
    expect(raw.received).toBe(':1\r\n:2\r\n:3\r\n');
    proxy.heal();
    raw.received = '';
    raw.send('PING');
    expect(await raw.waitFor('PONG')).toBeLessThan(100);
  });

  it('deliverLate: bytes whose connection the server closed meanwhile never land', async () => {
    await freshProxy();
    const old = await client();
    old.send('PING');
    await old.waitFor('PONG');
    proxy.deliverLate();
    old.send('SET dropped old');
    await sleep(50);
    old.destroy(); // the client gave up on this connection
    // The server closes it (as the ring does with CLIENT KILL before a node rejoins).
    expect(
      Number(await redisCommand(server.port, 'CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes')),
    ).toBeGreaterThan(0);
    const deadline = performance.now() + 2_000;
    while (proxy.stats().droppedLate === 0) {
      if (performance.now() > deadline) throw new Error('the held bytes were not dropped');
      await sleep(10);
    }
    proxy.heal();
    await sleep(QUIET_MS);
    expect(await redisCommand(server.port, 'GET', 'dropped')).toBe('(nil)');
    expect(proxy.stats()).toMatchObject({ deliveredLate: 0, open: 0 });
  });

  it('deliverLate lands the bytes of a closed connection after heal; new connections pass', async () => {
    await freshProxy();
    const old = await client();
    old.send('PING');
    await old.waitFor('PONG');
    proxy.deliverLate();
    old.send('SET k old');
    await sleep(50);
    expect(old.received).not.toContain('+OK');
    old.destroy(); // the client gave up on this connection
    const fresh = await client();
    fresh.send('SET k new');
    await fresh.waitFor('+OK');
    expect(await redisCommand(server.port, 'GET', 'k')).toBe('new');
    await sleep(QUIET_MS);
    expect(await redisCommand(server.port, 'GET', 'k')).toBe('new');

    proxy.heal();
    const deadline = performance.now() + 2_000;
    while ((await redisCommand(server.port, 'GET', 'k')) !== 'old') {
      if (performance.now() > deadline) throw new Error('the late bytes never landed');
      await sleep(10);
    }
    expect(proxy.stats().deliveredLate).toBeGreaterThan(0);
    // Its server side is closed once they are delivered; the fresh connection stays.
    const closedDeadline = performance.now() + 2_000;
    while (proxy.stats().open > 1) {
      if (performance.now() > closedDeadline) throw new Error('the late connection stayed open');
      await sleep(10);
    }
  });

  it('close drops every connection and refuses new ones', async () => {
    await freshProxy();
    const raw = await client();
    raw.send('PING');
    await raw.waitFor('PONG');
    await proxy.close();
    await raw.waitClosed();
    const after = await RawClient.connect(proxy.port);
    expect(after.closed).toBe(true);
    expect(after.error?.code).toBe('ECONNREFUSED');
  });
});
