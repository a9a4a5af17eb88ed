/**
 * Starts real `nutcracker` (twemproxy) processes for the compatibility tests, and a raw,
 * pipelined RESP client that sends keys as bytes.
 *
 * Same rules as redis-servers.ts: every process gets its own free ports on 127.0.0.1 (the
 * proxy's and its stats port, which would otherwise default to 22222 for everyone) and its
 * own temporary directory for config, log and pid file; it is only ever signalled by the
 * pid of the child spawned here; and a synchronous exit handler SIGKILLs whatever is still
 * alive if the test run dies.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exitedWithin, installExitHandler, liveChildren, liveDirs } from './process-registry.js';
import { HOST } from './resp.js';
import { sleep } from './wait.js';

/** How long a fresh nutcracker may take to accept connections. */
const READY_TIMEOUT_MS = 5_000;
/** How many fresh port pairs start tries when another process grabs one. */
const START_PORT_ATTEMPTS = 5;
/** How much of the log an error message quotes. */
const LOG_TAIL_CHARS = 4_000;

/** Thrown when there is no `nutcracker` binary to spawn. */
export class NutcrackerNotFoundError extends Error {
  readonly code = 'NUTCRACKER_NOT_FOUND';

  constructor() {
    super(
      'nutcracker was not found on PATH. Install it: apt-get install -y nutcracker (Debian/Ubuntu).',
    );
    this.name = 'NutcrackerNotFoundError';
  }
}

/** A pool option's value: rendered as a YAML scalar, or as a list for arrays. */
export type PoolOptionValue = string | number | boolean | readonly string[];

export interface StartNutcrackerOptions {
  /** The pool's name (default `'test'`). */
  pool?: string;
  /** The pool's options except `listen`, which is set to a free port; e.g. `{ redis: true, servers: [...] }`. */
  options: Record<string, PoolOptionValue>;
}

const liveProxies = new Set<Nutcracker>();

/** Renders one pool as nutcracker YAML: strings double-quoted (YAML accepts JSON strings). */
export function renderNutcrackerYaml(
  pool: string,
  options: Record<string, PoolOptionValue>,
): string {
  const scalar = (v: string | number | boolean) =>
    typeof v === 'string' ? JSON.stringify(v) : String(v);
  const lines = [`${JSON.stringify(pool)}:`];
  for (const [key, value] of Object.entries(options)) {
    if (Array.isArray(value)) {
      lines.push(`  ${key}:`);
      for (const item of value as readonly string[]) lines.push(`    - ${scalar(item)}`);
    } else {
      lines.push(`  ${key}: ${scalar(value as string | number | boolean)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** One running nutcracker. */
export class Nutcracker {
  /** The exact config file nutcracker runs with. */
  readonly yaml: string;

  private constructor(
    readonly port: number,
    readonly statsPort: number,
    readonly pid: number,
    private readonly child: ChildProcess,
    private readonly dir: string,
    yaml: string,
    private readonly exited: Promise<void>,
  ) {
    this.yaml = yaml;
  }

  /** Starts nutcracker with one pool and resolves once it accepts connections. */
  static async start(options: StartNutcrackerOptions): Promise<Nutcracker> {
    installExitHandler();
    const pool = options.pool ?? 'test';
    let lastError: unknown;
    for (let attempt = 1; attempt <= START_PORT_ATTEMPTS; attempt++) {
      const dir = await mkdtemp(join(tmpdir(), 'ring-nutcracker-'));
      liveDirs.add(dir);
      const [port, statsPort] = await Promise.all([findFreePort(), findFreePort()]);
      const yaml = renderNutcrackerYaml(pool, { listen: `${HOST}:${port}`, ...options.options });
      const configPath = join(dir, 'nutcracker.yml');
      const logPath = join(dir, 'nutcracker.log');
      await writeFile(configPath, yaml);
      const child = spawn(
        'nutcracker',
        [
          '--conf-file',
          configPath,
          '--stats-port',
          String(statsPort),
          '--stats-addr',
          HOST,
          '--output',
          logPath,
          '--pid-file',
          join(dir, 'nutcracker.pid'),
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let output = '';
      const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-LOG_TAIL_CHARS));
      child.stdout?.on('data', keep);
      child.stderr?.on('data', keep);
      let hasExited = false;
      let spawnError: Error | undefined;
      const exited = new Promise<void>((resolve) => {
        child.once('exit', () => {
          hasExited = true;
          liveChildren.delete(child);
          resolve();
        });
        child.once('error', (error: NodeJS.ErrnoException) => {
          spawnError = error.code === 'ENOENT' ? new NutcrackerNotFoundError() : error;
          if (child.pid === undefined) {
            hasExited = true;
            resolve();
          }
        });
      });
      if (child.pid !== undefined) liveChildren.add(child);
      const log = () => `${output}${readTail(logPath)}`;

      const deadline = Date.now() + READY_TIMEOUT_MS;
      let ready = false;
      while (Date.now() < deadline && !hasExited) {
        // nutcracker binds its sockets before it serves; a TCP accept is readiness.
        if (await canConnect(port)) {
          // If another process owned the port, ours fails to bind and exits: look again.
          await sleep(20);
          if (!hasExited) ready = true;
          break;
        }
        await sleep(20);
      }
      if (ready) {
        const proxy = new Nutcracker(
          port,
          statsPort,
          child.pid as number,
          child,
          dir,
          yaml,
          exited,
        );
        liveProxies.add(proxy);
        return proxy;
      }
      if (spawnError) {
        await cleanup(dir);
        throw spawnError;
      }
      if (!hasExited) {
        kill(child, 'SIGKILL');
        await exited;
      }
      const text = log();
      await cleanup(dir);
      lastError = new Error(`nutcracker did not start (config:\n${yaml}). Output:\n${text}`);
      // A port taken between our probe and nutcracker's bind: try a fresh pair.
      if (!/Address already in use/i.test(text)) break;
    }
    throw lastError;
  }

  /** The tail of nutcracker's log, for failure messages. */
  log(): string {
    return readTail(join(this.dir, 'nutcracker.log'));
  }

  /** SIGTERM (SIGKILL after a grace period), then removes the temp dir; safe to call twice. */
  async stop(): Promise<void> {
    if (!liveProxies.delete(this)) return;
    if (liveChildren.has(this.child)) {
      kill(this.child, 'SIGTERM');
      if (!(await exitedWithin(this.exited))) {
        kill(this.child, 'SIGKILL');
        await this.exited;
      }
    }
    await cleanup(this.dir);
  }
}

/** Starts one nutcracker; see {@link Nutcracker.start}. */
export function startNutcracker(options: StartNutcrackerOptions): Promise<Nutcracker> {
  return Nutcracker.start(options);
}

/** Stops every nutcracker started here and not stopped yet (an afterAll safety net). */
export async function stopAllNutcrackers(): Promise<void> {
  await Promise.all([...liveProxies].map((proxy) => proxy.stop()));
}

/** The `nutcracker --version` line, or undefined when there is no nutcracker binary. */
export function nutcrackerVersion(): Promise<string | undefined> {
  return new Promise((resolve) => {
    const child = spawn('nutcracker', ['--version'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
    child.once('error', () => resolve(undefined));
    child.once('exit', () => resolve(out.split('\n')[0]?.trim() || undefined));
  });
}

function kill(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || !liveChildren.has(child)) return;
  try {
    process.kill(child.pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

async function cleanup(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  liveDirs.delete(dir);
}

function readTail(path: string): string {
  try {
    return readFileSync(path, 'utf8').slice(-LOG_TAIL_CHARS);
  } catch {
    return '';
  }
}

function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('no port was assigned'))));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: HOST, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
