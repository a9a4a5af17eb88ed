import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Real redis-server processes for tests, the sample app and benchmarks, on free
 * 127.0.0.1 ports. Only processes started here are ever signalled, by their own pid;
 * a process-exit hook kills whatever is still running, so a crashed run leaks nothing.
 */

const HOST = '127.0.0.1';
const live = new Set<RedisServer>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const server of live) server.killNow();
  });
}

/** A free TCP port on 127.0.0.1, as the kernel hands one out. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.unref();
    probe.on('error', reject);
    probe.listen(0, HOST, () => {
      const address = probe.address();
      probe.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port'));
      });
    });
  });
}

/**
 * Sends one command over a raw socket and answers the reply as text: simple strings and
 * bulk strings as they are, integers as digits, nil as null, errors as `-ERR …`, arrays
 * as their elements joined by newlines. Dependency-free on purpose.
 */
export function redisCommand(port: number, ...args: string[]): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: HOST, port });
    let buffer = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`redis on port ${port} did not answer ${args[0]} within 2 s`));
    }, 2000);
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      const parsed = parseReply(buffer, 0);
      if (parsed === undefined) return;
      clearTimeout(timer);
      socket.end();
      resolve(parsed.value);
    });
    let request = `*${args.length}\r\n`;
    for (const arg of args) request += `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`;
    socket.write(request);
  });
}

type Parsed = { value: string | null; end: number } | undefined;

function parseReply(buf: Buffer, start: number): Parsed {
  const lineEnd = buf.indexOf('\r\n', start);
  if (lineEnd === -1) return undefined;
  const type = String.fromCharCode(buf[start]);
  const line = buf.toString('utf8', start + 1, lineEnd);
  if (type === '+' || type === ':') return { value: line, end: lineEnd + 2 };
  if (type === '-') return { value: `-${line}`, end: lineEnd + 2 };
  if (type === '$') {
    const length = Number(line);
    if (length < 0) return { value: null, end: lineEnd + 2 };
    if (buf.length < lineEnd + 2 + length + 2) return undefined;
    return {
      value: buf.toString('utf8', lineEnd + 2, lineEnd + 2 + length),
      end: lineEnd + 4 + length,
    };
  }
  if (type === '*') {
    const count = Number(line);
    const items: string[] = [];
    let at = lineEnd + 2;
    for (let i = 0; i < count; i++) {
      const item = parseReply(buf, at);
      if (item === undefined) return undefined;
      items.push(item.value ?? '');
      at = item.end;
    }
    return { value: count < 0 ? null : items.join('\n'), end: at };
  }
  return { value: line, end: lineEnd + 2 };
}

export class RedisNotFoundError extends Error {
  readonly code = 'REDIS_SERVER_NOT_FOUND';
  constructor() {
    super(
      'redis-server was not found on PATH. Install it: apt-get install -y redis-server (Debian/Ubuntu) or brew install redis (macOS).',
    );
  }
}

/** One redis-server process on 127.0.0.1. */
export class RedisServer {
  readonly host = HOST;
  private child?: ChildProcess;
  private exited?: Promise<void>;
  private output = '';
  private hung = false;
  private readonly dir: string;

  constructor(
    readonly port: number,
    private readonly extraArgs: readonly string[] = [],
  ) {
    this.dir = mkdtempSync(join(tmpdir(), 'ring-redis-'));
  }

  get url(): string {
    return `redis://${HOST}:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  get isHung(): boolean {
    return this.hung;
  }

  /** Starts the process and resolves once it answers on its port. */
  async start(timeoutMs = 5000): Promise<void> {
    if (this.child) return;
    installExitHook();
    const args = [
      '--port',
      String(this.port),
      '--bind',
      HOST,
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'no',
      '--protected-mode',
      'no',
      '--dir',
      this.dir,
      '--logfile',
      '',
      ...this.extraArgs,
    ];
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.output = '';
    const keep = (chunk: Buffer) => (this.output = (this.output + chunk.toString()).slice(-4000));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.child = child;
    this.hung = false;
    live.add(this);
    const spawned = new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (error: NodeJS.ErrnoException) =>
        reject(error.code === 'ENOENT' ? new RedisNotFoundError() : error),
      );
    });
    this.exited = new Promise((resolve) => {
      child.once('exit', () => {
        if (this.child === child) {
          this.child = undefined;
          live.delete(this);
        }
        resolve();
      });
    });
    try {
      await spawned;
    } catch (error) {
      this.child = undefined;
      live.delete(this);
      throw error;
    }
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.child !== child) {
        throw new Error(`redis-server on port ${this.port} exited at start:\n${this.output}`);
      }
      try {
        await redisCommand(this.port, 'PING');
        return;
      } catch {
        if (Date.now() > deadline) {
          await this.stop();
          throw new Error(
            `redis-server on port ${this.port} did not start in ${timeoutMs} ms:\n${this.output}`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  }

  /** SIGKILL: the server dies at once, as in a crash. Resolves when it has exited. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill('SIGKILL');
    await this.exited;
    this.hung = false;
  }

  /** SIGSTOP: the server keeps its sockets open and answers nothing, as a hung host. */
  hang(): void {
    if (!this.child || this.hung) return;
    this.child.kill('SIGSTOP');
    this.hung = true;
  }

  /** SIGCONT after hang(). */
  resume(): void {
    if (!this.child || !this.hung) return;
    this.child.kill('SIGCONT');
    this.hung = false;
  }

  /** Starts it again on the same port (after kill() or stop()). The port may linger briefly. */
  async restart(): Promise<void> {
    if (this.child) await this.kill();
    const deadline = Date.now() + 3000;
    for (;;) {
      try {
        await this.start();
        return;
      } catch (error) {
        if (error instanceof RedisNotFoundError || Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  /** SIGTERM, then SIGKILL after 2 s; removes its directory. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child) {
      if (this.hung) this.resume();
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
      await this.exited;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Synchronous last resort for the process-exit hook. */
  killNow(): void {
    const pid = this.child?.pid;
    if (pid === undefined) return;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

export interface RedisFleet extends AsyncDisposable {
  readonly servers: RedisServer[];
  stop(): Promise<void>;
}

/** Starts `count` servers on free ports; a port taken meanwhile is retried on another. */
export async function startRedisServers(
  count: number,
  options: { extraArgs?: string[] } = {},
): Promise<RedisFleet> {
  const servers: RedisServer[] = [];
  const stop = () => Promise.all(servers.map((s) => s.stop())).then(() => undefined);
  try {
    for (let i = 0; i < count; i++) {
      for (let attempt = 0; ; attempt++) {
        const server = new RedisServer(await freePort(), options.extraArgs);
        try {
          await server.start();
          servers.push(server);
          break;
        } catch (error) {
          await server.stop();
          if (error instanceof RedisNotFoundError || attempt >= 4) throw error;
        }
      }
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { servers, stop, [Symbol.asyncDispose]: stop };
}

/** Stops every server this process started and has not stopped yet: a safety net for afterAll. */
export async function stopAllRedisServers(): Promise<void> {
  await Promise.all([...live].map((server) => server.stop()));
}
