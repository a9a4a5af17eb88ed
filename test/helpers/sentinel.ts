/**
 * Starts a Redis Sentinel group for the tests: one master, one replica (`--replicaof`) and
 * three sentinels, all on free ports of 127.0.0.1, tuned to fail over in a couple of seconds
 * (`down-after-milliseconds` 500, `failover-timeout` 2000).
 *
 * The sentinels run as `redis-server <conf> --sentinel`: the very binary the other tests use
 * (the Debian `redis-sentinel` package only adds a second name for it), so nothing more needs
 * installing. Each sentinel rewrites its own config file, so each gets one in a temporary
 * directory of its own. As in redis-servers.ts, nothing here signals a process except by the
 * pid of a child spawned here, and an exit hook kills whatever is left should the run die.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { redisCommand, RedisReplyError } from './redis-command.js';
import { freePort, RedisServer, RedisServerNotFoundError } from './redis-servers.js';
import { exitedWithin, installExitHandler, liveChildren, liveDirs } from './process-registry.js';
import { sleep } from './wait.js';

const HOST = '127.0.0.1';
/** How long a fresh sentinel may take to answer PING. */
const READY_TIMEOUT_MS = 5_000;
/** How long the group may take to be fully formed: replica in sync, sentinels know each other. */
const FORMED_TIMEOUT_MS = 15_000;
const START_PORT_ATTEMPTS = 5;
const OUTPUT_TAIL_CHARS = 4_000;
const BIND_FAILURE = /Address already in use|Failed listening on port/;

/**
 * How long a test gives a failover of a group started here: Sentinel declares the master down
 * after 500 ms, and the failover then takes a few seconds.
 */
export const FAILOVER_BUDGET_MS = 25_000;

export interface StartSentinelGroupOptions {
  /** The master group's name (`sentinel monitor <name> …`), default `mymaster`. */
  name?: string;
  /** Sentinels to start, default 3 (quorum: a majority of them). */
  sentinels?: number;
  /** `sentinel down-after-milliseconds`, default 500. */
  downAfterMs?: number;
  /** `sentinel failover-timeout`, default 2000. */
  failoverTimeoutMs?: number;
  /** Password of the master and the replica (`requirepass`, `masterauth`, `sentinel auth-pass`). */
  password?: string;
  /** Password of the sentinels (their `requirepass`, which they also use between themselves). */
  sentinelPassword?: string;
}

export interface SentinelGroup {
  readonly name: string;
  /** The master as started; after a failover it is no longer the master. */
  readonly master: RedisServer;
  /** The replica as started; the one Sentinel promotes when the master dies. */
  readonly replica: RedisServer;
  readonly sentinels: readonly SentinelProcess[];
  /** `{ sentinels, name }`: a ring node's connection for this group. */
  connection(): { sentinels: { host: string; port: number }[]; name: string };
  /** The master's address as a majority of the running sentinels report it, e.g. `127.0.0.1:7001`. */
  currentMaster(): Promise<string>;
  /**
   * Waits until a majority of the running sentinels report a master other than `from`,
   * and that master answers as one (`ROLE` says `master`); answers its address.
   */
  waitForNewMaster(from: string, timeoutMs: number): Promise<string>;
  /** Stops every process of the group; safe to call twice. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Registry: no sentinel outlives the run.
// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// One sentinel.
// ---------------------------------------------------------------------------------------------

/** One `redis-server --sentinel` process. */
export class SentinelProcess {
  readonly host = HOST;
  #port = 0;
  #pid = 0;
  #exited: Promise<void> = Promise.resolve();
  #hasExited = true;
  #output = '';

  private constructor(private readonly configFile: string) {}

  /** Writes the config (with a fresh free port) and starts the sentinel; resolves once it answers. */
  static async start(
    configFile: string,
    config: (port: number) => string,
  ): Promise<SentinelProcess> {
    const sentinel = new SentinelProcess(configFile);
    for (let attempt = 1; ; attempt++) {
      sentinel.#port = await freePort();
      await writeFile(configFile, config(sentinel.#port));
      try {
        await sentinel.#launch();
        return sentinel;
      } catch (error) {
        await sentinel.stop();
        if (!BIND_FAILURE.test(sentinel.#output) || attempt >= START_PORT_ATTEMPTS) throw error;
      }
    }
  }

  get port(): number {
    return this.#port;
  }

  get pid(): number {
    return this.#pid;
  }

  get running(): boolean {
    return !this.#hasExited;
  }

  /** SIGKILLs the sentinel; resolves once it has exited. */
  async kill(): Promise<void> {
    this.#signal('SIGKILL');
    await this.#exited;
  }

  /** SIGTERM, SIGKILL after a grace period. */
  async stop(): Promise<void> {
    if (this.#hasExited) return;
    this.#signal('SIGTERM');
    if (!(await exitedWithin(this.#exited))) await this.kill();
  }

  /** The last few KB of the sentinel's log, for failure messages. */
  get output(): string {
    return this.#output;
  }

  #signal(name: NodeJS.Signals): void {
    if (this.#hasExited || !(this.#pid > 0)) return;
    try {
      process.kill(this.#pid, name);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  }

  async #launch(): Promise<void> {
    installExitHandler();
    const child = spawn('redis-server', [this.configFile, '--sentinel'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#pid = child.pid ?? 0;
    this.#hasExited = false;
    this.#output = '';
    let spawnError: Error | undefined;
    this.#exited = new Promise<void>((resolve) => {
      const finish = (): void => {
        this.#hasExited = true;
        liveChildren.delete(child);
        resolve();
      };
      child.once('exit', finish);
      child.once('error', (error: Error) => {
        spawnError =
          (error as NodeJS.ErrnoException).code === 'ENOENT'
            ? new RedisServerNotFoundError()
            : error;
        if (this.#pid === 0) finish();
      });
    });
    if (this.#pid > 0) liveChildren.add(child);
    const keepTail = (chunk: Buffer): void => {
      this.#output = (this.#output + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS);
    };
    child.stdout?.on('data', keepTail);
    child.stderr?.on('data', keepTail);

    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (spawnError) throw spawnError;
      if (this.#hasExited) {
        throw new Error(`sentinel on port ${this.#port} exited during startup:\n${this.#output}`);
      }
      try {
        await redisCommand(this.#port, 'PING');
        if (!this.#hasExited) return;
      } catch (error) {
        // -NOAUTH: a sentinel with a password answers all the same.
        if (error instanceof RedisReplyError && !this.#hasExited) return;
        await sleep(25);
      }
    }
    throw new Error(`sentinel on port ${this.#port} did not answer within ${READY_TIMEOUT_MS} ms`);
  }
}

// ---------------------------------------------------------------------------------------------
// The group.
// ---------------------------------------------------------------------------------------------

/**
 * Starts master, replica and sentinels, and resolves once the group is fully formed: the
 * replica is in sync and every sentinel knows the replica and the other sentinels, so a
 * failover can happen as soon as the master dies. All or nothing.
 */
export async function startSentinelGroup(
  options: StartSentinelGroupOptions = {},
): Promise<SentinelGroup> {
  const name = options.name ?? 'mymaster';
  const count = options.sentinels ?? 3;
  const quorum = Math.floor(count / 2) + 1;
  const auth = options.password;
  const spass = options.sentinelPassword;
  // A diskless full sync waits 5 s by default for more replicas to join: one is all there is.
  const dataArgs = ['--repl-diskless-sync-delay', '0'];
  if (auth !== undefined) dataArgs.push('--requirepass', auth, '--masterauth', auth);
  const servers: RedisServer[] = [];
  const sentinels: SentinelProcess[] = [];
  let dir: string | undefined;
  const stop = async (): Promise<void> => {
    await Promise.all([...sentinels.map((s) => s.stop()), ...servers.map((s) => s.stop())]);
    if (dir) {
      await rm(dir, { recursive: true, force: true });
      liveDirs.delete(dir);
      dir = undefined;
    }
  };
  try {
    installExitHandler();
    dir = await mkdtemp(join(tmpdir(), 'ring-redis-sentinel-'));
    liveDirs.add(dir);
    const master = await RedisServer.start({ name: `${name}-master`, extraArgs: dataArgs });
    servers.push(master);
    const replica = await RedisServer.start({
      name: `${name}-replica`,
      extraArgs: [...dataArgs, '--replicaof', HOST, String(master.port)],
    });
    servers.push(replica);
    await waitFor(`${name}: replica in sync`, FORMED_TIMEOUT_MS, async () => {
      const info = await command(replica.port, auth, 'INFO', 'replication');
      return /master_link_status:up/.test(info);
    });

    const lines = (port: number, file: number): string =>
      [
        `port ${port}`,
        `bind ${HOST}`,
        'daemonize no',
        'protected-mode no',
        'logfile ""',
        `dir ${JSON.stringify(dir)}`,
        `sentinel monitor ${name} ${HOST} ${master.port} ${quorum}`,
        `sentinel down-after-milliseconds ${name} ${options.downAfterMs ?? 500}`,
        `sentinel failover-timeout ${name} ${options.failoverTimeoutMs ?? 2000}`,
        `sentinel parallel-syncs ${name} 1`,
        ...(auth === undefined ? [] : [`sentinel auth-pass ${name} ${auth}`]),
        ...(spass === undefined ? [] : [`requirepass ${spass}`]),
        `# sentinel ${file}`,
        '',
      ].join('\n');
    const started = await Promise.allSettled(
      Array.from({ length: count }, (_, i) =>
        SentinelProcess.start(join(dir!, `sentinel-${i}.conf`), (port) => lines(port, i)),
      ),
    );
    for (const result of started) if (result.status === 'fulfilled') sentinels.push(result.value);
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;

    await waitFor(
      `${name}: sentinels know the replica and each other`,
      FORMED_TIMEOUT_MS,
      async () => {
        for (const sentinel of sentinels) {
          const peers = await command(sentinel.port, spass, 'SENTINEL', 'SENTINELS', name);
          const replicas = await command(sentinel.port, spass, 'SENTINEL', 'REPLICAS', name);
          if (countEntries(peers) < count - 1 || countEntries(replicas) < 1) return false;
        }
        return true;
      },
    );

    const majorityMaster = async (): Promise<string | undefined> => {
      const votes = new Map<string, number>();
      for (const sentinel of sentinels) {
        if (!sentinel.running) continue;
        try {
          const reply = await command(
            sentinel.port,
            spass,
            'SENTINEL',
            'GET-MASTER-ADDR-BY-NAME',
            name,
          );
          const [host, port] = reply.split('\n');
          const address = `${host}:${port}`;
          votes.set(address, (votes.get(address) ?? 0) + 1);
        } catch {
          // A sentinel that does not answer has no vote.
        }
      }
      for (const [address, n] of votes) if (n >= quorum) return address;
      return undefined;
    };

    const group: SentinelGroup = {
      name,
      master,
      replica,
      sentinels,
      connection: () => ({
        sentinels: sentinels.map((s) => ({ host: HOST, port: s.port })),
        name,
      }),
      currentMaster: async () => {
        const address = await majorityMaster();
        if (address === undefined) throw new Error(`${name}: the sentinels disagree on the master`);
        return address;
      },
      waitForNewMaster: async (from, timeoutMs) => {
        let found = '';
        await waitFor(`${name}: a master other than ${from}`, timeoutMs, async () => {
          const address = await majorityMaster();
          if (address === undefined || address === from) return false;
          const port = Number(address.split(':').pop());
          const role = await command(port, auth, 'ROLE').catch(() => '');
          if (!role.startsWith('master')) return false;
          found = address;
          return true;
        });
        return found;
      },
      stop,
      [Symbol.asyncDispose]: stop,
    };
    return group;
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * A command to one of our processes. Without a password over a raw socket, like the rest of
 * the helpers; with one, AUTH needs a connection that lives for two commands: ioredis, with
 * the reply flattened the way redisCommand does it (array items one per line).
 */
async function command(port: number, password: string | undefined, ...args: string[]) {
  if (password === undefined) return redisCommand(port, ...args);
  const client = new Redis({
    host: HOST,
    port,
    password,
    lazyConnect: true,
    retryStrategy: () => null,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: 5_000,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return flatten(await client.call(args[0], ...args.slice(1)));
  } finally {
    client.disconnect();
  }
}

function flatten(reply: unknown): string {
  if (Array.isArray(reply)) return reply.map(flatten).join('\n');
  if (reply === null) return '(nil)';
  return String(reply);
}

/** Entries of a RESP array of maps as redisCommand flattens them (one field per line). */
function countEntries(flattened: string): number {
  // Every entry of SENTINEL SENTINELS / REPLICAS starts with its "name" field.
  return flattened.split('\n').filter((line, i, all) => line === 'name' && all[i + 1] !== undefined)
    .length;
}

async function waitFor(what: string, timeoutMs: number, done: () => Promise<boolean>) {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if (await done()) return;
    } catch (error) {
      lastError = error;
    }
    await sleep(50);
  }
  const cause = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`);
}

/**
 * A Sentinel group for one suite: started before its first test, stopped (by pid) after its
 * last, whatever the outcome.
 */
export function useSentinelGroup(options: StartSentinelGroupOptions = {}): {
  readonly group: SentinelGroup;
} {
  let group: SentinelGroup | undefined;
  beforeAll(async () => {
    group = await startSentinelGroup(options);
  });
  afterAll(async () => {
    await group?.stop();
  });
  return {
    get group(): SentinelGroup {
      if (!group) throw new Error('the Sentinel group starts in beforeAll: use it inside a test');
      return group;
    },
  };
}
