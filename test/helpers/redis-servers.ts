/**
 * Starts real `redis-server` processes for the tests, the sample app and the benchmarks.
 *
 * The ring is about what happens when individual Redis servers die, hang and come back, so
 * the tests need servers they own outright: each one gets its own free port on 127.0.0.1 and
 * its own temporary directory, and can be killed, frozen (SIGSTOP), resumed and restarted on
 * the same port. Nothing here ever touches a Redis it did not start (in particular not the
 * one on 6379), and nothing signals a process except by the pid of a child spawned here.
 *
 * Commands to a server go over redis-command.ts; fleets of servers and the ring's node
 * configuration over them are in redis-fleet.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exitedWithin, installExitHandler, liveChildren, liveDirs } from './process-registry.js';
import { HOST, probe } from './redis-command.js';
import { sleep } from './wait.js';

/** How long a fresh process may take to answer its first command. */
const READY_TIMEOUT_MS = 5_000;
/** How long restart() keeps retrying the same port while the old socket lingers. */
const RESTART_BIND_WINDOW_MS = 3_000;
/** How many fresh ports start() tries when another process grabs the one it picked. */
const START_PORT_ATTEMPTS = 5;
/** How much of the process's output an error message quotes. */
const OUTPUT_TAIL_CHARS = 4_000;
/** redis-server's own words when its port is taken. */
const BIND_FAILURE = /Address already in use|Failed listening on port/;

export interface StartRedisServerOptions {
  /** Appended after the defaults, so they can override them, e.g. `['--maxmemory', '1mb']`. */
  extraArgs?: string[];
  /** A label for error messages only. */
  name?: string;
}

/** Thrown when there is no `redis-server` binary to spawn. */
export class RedisServerNotFoundError extends Error {
  readonly code = 'REDIS_SERVER_NOT_FOUND';

  constructor() {
    super(
      'redis-server was not found on PATH. Install it: apt-get install -y redis-server ' +
        '(Debian/Ubuntu) or brew install redis (macOS).',
    );
    this.name = 'RedisServerNotFoundError';
  }
}

/** Internal: the port was taken by someone else; the caller picks another or waits. */
class PortInUseError extends Error {}

// ---------------------------------------------------------------------------------------------
// Registry: whatever happens to the test run, no redis-server outlives it.
// ---------------------------------------------------------------------------------------------

/** Servers started and not yet stop()ped, for stopAllRedisServers(). */
const liveServers = new Set<RedisServer>();

/** Stops every server started by this module and not stopped yet (an afterAll safety net). */
export async function stopAllRedisServers(): Promise<void> {
  await Promise.all([...liveServers].map((server) => server.stop()));
}

// ---------------------------------------------------------------------------------------------
// One process.
// ---------------------------------------------------------------------------------------------

/** One spawned redis-server process and what we know about its life. */
interface Incarnation {
  child: ChildProcess;
  /** 0 if the spawn failed (then there is nothing to signal). */
  pid: number;
  /** Resolves once the process has exited (or failed to spawn). */
  exited: Promise<void>;
  hasExited: boolean;
  spawnError?: Error;
  /** The last few KB of stdout and stderr, interleaved, for error messages. */
  output: string;
}

export class RedisServer {
  readonly host = HOST;
  readonly name?: string;
  readonly extraArgs: readonly string[];

  #port = 0;
  #dir: string | undefined;
  #current: Incarnation | undefined;
  #hung = false;
  #lastPid = 0;

  private constructor(options: StartRedisServerOptions) {
    this.name = options.name;
    this.extraArgs = [...(options.extraArgs ?? [])];
  }

  /** Starts one server on a free port and resolves once it answers commands. */
  static async start(options: StartRedisServerOptions = {}): Promise<RedisServer> {
    const server = new RedisServer(options);
    installExitHandler();
    liveServers.add(server);
    try {
      await server.#ensureDir();
      for (let attempt = 1; ; attempt++) {
        server.#port = await freePort();
        try {
          await server.#launch();
          return server;
        } catch (error) {
          // Someone took the port between our probe and redis binding it: pick another.
          if (!(error instanceof PortInUseError) || attempt >= START_PORT_ATTEMPTS) throw error;
        }
      }
    } catch (error) {
      await server.stop();
      throw error;
    }
  }

  get port(): number {
    return this.#port;
  }

  get url(): string {
    return `redis://${HOST}:${this.#port}`;
  }

  /** The pid of the current process, or of the last one once it has been killed or stopped. */
  get pid(): number {
    return this.#lastPid;
  }

  /** Whether a process is alive on the port (true while hung: it is alive, just frozen). */
  get running(): boolean {
    return this.#current !== undefined && !this.#current.hasExited;
  }

  /** Whether the process is frozen by hang() and not yet resume()d. */
  get isHung(): boolean {
    return this.running && this.#hung;
  }

  /** SIGKILLs the process (a crash, no clean shutdown); resolves once it has exited. */
  async kill(): Promise<void> {
    const current = this.#current;
    if (!current || current.hasExited) return;
    signal(current, 'SIGKILL');
    await current.exited;
    this.#hung = false;
  }

  /**
   * SIGSTOPs the process: the kernel still accepts connections for it, but nothing is ever
   * answered, which is what a wedged or partitioned server looks like to a client.
   */
  hang(): void {
    const current = this.#requireRunning();
    signal(current, 'SIGSTOP');
    this.#hung = true;
  }

  /** SIGCONTs a hung process; it then answers everything that queued up meanwhile. */
  resume(): void {
    const current = this.#requireRunning();
    signal(current, 'SIGCONT');
    this.#hung = false;
  }

  /**
   * Starts a new process on the same port with the same arguments and resolves once it
   * answers. Kills the current process first if there is one; also works after stop(). The
   * old listening socket can linger for a moment, so binding is retried for a few seconds.
   */
  async restart(): Promise<void> {
    await this.kill();
    liveServers.add(this);
    await this.#ensureDir();
    const deadline = Date.now() + RESTART_BIND_WINDOW_MS;
    for (;;) {
      try {
        await this.#launch();
        return;
      } catch (error) {
        if (!(error instanceof PortInUseError) || Date.now() >= deadline) throw error;
        await sleep(100);
      }
    }
  }

  /**
   * Shuts the server down cleanly (SIGTERM, SIGKILL after a grace period) and removes its
   * directory. Safe to call on a killed, hung or already stopped server.
   */
  async stop(): Promise<void> {
    const current = this.#current;
    if (current && !current.hasExited) {
      // A stopped process would not act on SIGTERM until continued.
      signal(current, 'SIGCONT');
      signal(current, 'SIGTERM');
      if (!(await exitedWithin(current.exited))) {
        signal(current, 'SIGKILL');
        await current.exited;
      }
    }
    this.#hung = false;
    liveServers.delete(this);
    const dir = this.#dir;
    this.#dir = undefined;
    if (dir) {
      await rm(dir, { recursive: true, force: true });
      liveDirs.delete(dir);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  #label(): string {
    return `redis-server ${this.name ? `${this.name} ` : ''}on port ${this.#port}`;
  }

  #requireRunning(): Incarnation {
    const current = this.#current;
    if (!current || current.hasExited) throw new Error(`${this.#label()} is not running`);
    return current;
  }

  async #ensureDir(): Promise<void> {
    // A fresh directory per server, so nothing (dump files, a stray config) leaks between runs.
    if (this.#dir) return;
    this.#dir = await mkdtemp(join(tmpdir(), 'ring-redis-'));
    liveDirs.add(this.#dir);
  }

  #args(dir: string): string[] {
    return [
      '--port',
      String(this.#port),
      '--bind',
      HOST,
      // A cache under test needs no persistence, and saving would only slow shutdowns down.
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'no',
      '--protected-mode',
      'no',
      // Log to stdout, of which we keep a tail for error messages.
      '--logfile',
      '',
      '--dir',
      dir,
      ...this.extraArgs,
    ];
  }

  /** Spawns a process on this.#port and waits until it answers; PortInUseError if taken. */
  async #launch(): Promise<void> {
    if (!this.#dir) throw new Error(`${this.#label()} has no directory`);
    const incarnation = spawnRedis(this.#args(this.#dir));
    this.#current = incarnation;
    this.#hung = false;
    if (incarnation.pid > 0) this.#lastPid = incarnation.pid;

    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (incarnation.spawnError) throw incarnation.spawnError;
      if (incarnation.hasExited) {
        if (BIND_FAILURE.test(incarnation.output)) {
          throw new PortInUseError(`port ${this.#port} is in use`);
        }
        throw new Error(
          `${this.#label()} exited during startup (code ${String(incarnation.child.exitCode)}, ` +
            `signal ${String(incarnation.child.signalCode)}). Output:\n${incarnation.output}`,
        );
      }
      const answered = await probe(this.#port, 250);
      // If another server holds the port, ours fails to bind and exits: do not take the other
      // server's answer for ours.
      if (answered && !incarnation.hasExited && !BIND_FAILURE.test(incarnation.output)) return;
      if (!answered) await sleep(25);
    }

    // Never leave a half-started process behind.
    if (!incarnation.hasExited) {
      signal(incarnation, 'SIGKILL');
      await incarnation.exited;
    }
    throw new Error(
      `${this.#label()} did not answer within ${READY_TIMEOUT_MS} ms. Output:\n${incarnation.output}`,
    );
  }
}

/** Sends a signal to one of our own children, by its own pid, and only while it is alive. */
function signal(incarnation: Incarnation, name: NodeJS.Signals): void {
  // pid 0 would mean "our whole process group": a child that never spawned has none to signal.
  if (incarnation.hasExited || !(incarnation.pid > 0)) return;
  try {
    process.kill(incarnation.pid, name);
  } catch (error) {
    // ESRCH: it died between our check and the signal; its 'exit' event is on its way.
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

function spawnRedis(args: string[]): Incarnation {
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let markExited = (): void => {};
  const incarnation: Incarnation = {
    child,
    pid: child.pid ?? 0,
    exited: new Promise<void>((resolve) => {
      markExited = resolve;
    }),
    hasExited: false,
    output: '',
  };
  const finish = (): void => {
    incarnation.hasExited = true;
    liveChildren.delete(child);
    markExited();
  };
  if (incarnation.pid > 0) liveChildren.add(child);

  const keepTail = (chunk: Buffer): void => {
    incarnation.output = (incarnation.output + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stdout?.on('data', keepTail);
  child.stderr?.on('data', keepTail);
  child.once('exit', finish);
  child.once('error', (error: Error) => {
    const notFound = (error as NodeJS.ErrnoException).code === 'ENOENT';
    incarnation.spawnError = notFound ? new RedisServerNotFoundError() : error;
    // A failed spawn may never emit 'exit'.
    if (incarnation.pid === 0) finish();
  });
  return incarnation;
}

/** A free port on 127.0.0.1 as the kernel hands one out (redis may still lose a race for it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no port was assigned'))));
    });
  });
}
