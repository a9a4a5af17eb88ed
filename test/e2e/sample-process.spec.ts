/**
 * `npm run sample` as the real child process: it prints where it listens, serves, and on
 * SIGTERM exits by itself and stops the nodes it started; without redis-server it says so.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/redis-servers.js';
import { accepts, call, eventually } from '../helpers/sample-app.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** Direct children of `pid` (Linux /proc); empty elsewhere. */
async function childPids(pid: number): Promise<number[]> {
  const children: number[] = [];
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return children;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) children.push(Number(entry));
    } catch {
      // Gone while we looked.
    }
  }
  return children;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Waits for a child to exit; resolves with its code and signal, or 'timeout'. */
function exitOf(
  child: ChildProcess,
  timeoutMs: number,
): Promise<{ code: number | null; signal: NodeJS.Signals | null } | 'timeout'> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('timeout'), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

/** The environment of a child sample: never the caller's RING_REDIS_NODES. */
function sampleEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  delete env.RING_REDIS_NODES;
  // Colours would only get in the way of matching the output.
  env.NO_COLOR = '1';
  delete env.FORCE_COLOR;
  return env;
}

describe('npm run sample (child process)', () => {
  const children: ChildProcess[] = [];
  /** redis-server pids seen under a sample child, killed in afterAll if they outlive it. */
  const grandchildren = new Set<number>();
  const dirs: string[] = [];

  afterAll(async () => {
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null && child.pid) {
        // Found under it while it lived: gather them before the parent can no longer stop them.
        for (const pid of await childPids(child.pid)) grandchildren.add(pid);
        child.kill('SIGKILL');
        await exitOf(child, 5_000);
      }
    }
    for (const pid of grandchildren) {
      if (isAlive(pid)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Exited meanwhile.
        }
      }
    }
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  function startChild(
    env: NodeJS.ProcessEnv,
    script = '.run/sample/main.js',
  ): { child: ChildProcess; output: () => string } {
    const child = spawn(process.execPath, ['--enable-source-maps', script], {
      cwd: repoRoot,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    return { child, output: () => output };
  }

  it('prints its URL and nodes, serves, and on SIGTERM exits by itself and stops its nodes', async () => {
    // Started through a path with a space that is a symlink to the repository, as for a
    // clone in "~/My Projects": the sample must still see that it is the main module.
    const linkDir = await mkdtemp(join(tmpdir(), 'ring-redis-sample-'));
    dirs.push(linkDir);
    const link = join(linkDir, 'my clone');
    await symlink(repoRoot, link, 'dir');
    const port = await freePort();
    const { child, output } = startChild(
      sampleEnv({ PORT: String(port) }),
      join(link, '.run/sample/main.js'),
    );

    const ready = await eventually(
      async () => /listening on http\S+[\s\S]*nodes: \S+/.test(output()) || child.exitCode !== null,
      20_000,
    );
    expect(ready && child.exitCode === null, `sample did not start:\n${output()}`).toBe(true);
    const url = /listening on (http\S+)/.exec(output())![1];
    expect(url).toBe(`http://127.0.0.1:${port}`);
    const nodesLine = /nodes: (\S+)/.exec(output())![1];
    const nodePorts = [...nodesLine.matchAll(/node\d=redis:\/\/127\.0\.0\.1:(\d+)/g)].map((m) =>
      Number(m[1]),
    );
    expect(nodePorts).toHaveLength(3);
    expect(nodePorts).not.toContain(6379);
    expect(output()).toContain(`curl ${url}/weather/paris`);

    const redisPids = (await childPids(child.pid!)).filter((pid) => pid !== child.pid);
    for (const pid of redisPids) grandchildren.add(pid);
    if (process.platform === 'linux') expect(redisPids).toHaveLength(3);

    const health = await call(url, 'GET', '/health');
    expect(health.status).toBe(200);
    const settled = await eventually(
      async () =>
        (await call(url, 'GET', '/health')).body.details['ring-redis'].groups.test.alive === 3,
      10_000,
    );
    expect(settled, 'three nodes alive').toBe(true);
    expect((await call(url, 'GET', '/weather/lima')).status).toBe(200);
    for (const nodePort of nodePorts) expect(await accepts(nodePort)).toBe(true);

    const started = performance.now();
    child.kill('SIGTERM');
    const exit = await exitOf(child, 5_000);
    const stopMs = Math.round(performance.now() - started);
    expect(exit, `no exit within 5 s of SIGTERM:\n${output()}`).not.toBe('timeout');
    expect(exit).toEqual({ code: 0, signal: null });
    expect(output()).toContain('SIGTERM: stopping');
    expect(stopMs).toBeLessThan(5_000);

    for (const nodePort of nodePorts) {
      expect(await accepts(nodePort), `port ${nodePort} still accepts`).toBe(false);
    }
    for (const pid of redisPids) expect(isAlive(pid), `redis-server pid ${pid}`).toBe(false);
    expect(await accepts(port)).toBe(false);
  }, 40_000);

  it('says clearly when its port is taken, before anything about its nodes', async () => {
    const taken = createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => taken.listen(port, '127.0.0.1', resolve));
    try {
      const { child, output } = startChild(sampleEnv({ PORT: String(port) }));
      const exit = await exitOf(child, 20_000);
      expect(exit, output()).toEqual({ code: 1, signal: null });
      expect(output()).toContain(`Port ${port} of 127.0.0.1 is taken (listen EADDRINUSE`);
      expect(output()).toContain('PORT=0 picks a free one');
      // The app is closed before its servers are stopped: no node seen failing on the way out.
      expect(output()).not.toMatch(/ejected|no node is alive/);
      expect(output()).not.toMatch(/^\s+at /m);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  it('says clearly, without a stack trace, when redis-server is not installed', async () => {
    const emptyPath = await mkdtemp(join(tmpdir(), 'ring-redis-nopath-'));
    dirs.push(emptyPath);
    const port = await freePort();
    const { child, output } = startChild(sampleEnv({ PORT: String(port), PATH: emptyPath }));
    const exit = await exitOf(child, 20_000);
    expect(exit, output()).toEqual({ code: 1, signal: null });
    expect(output()).toContain('redis-server was not found on PATH');
    expect(output()).toMatch(/apt-get install|brew install/);
    expect(output()).not.toMatch(/^\s+at /m);
  });
});
