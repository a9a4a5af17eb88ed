/**
 * The sample app end to end, as a user meets it: booted in-process against the three nodes it
 * starts itself (every route, then a node killed and restarted mid-suite), against external
 * nodes given in RING_REDIS_NODES, and as the real `npm run sample` child process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSample } from '../../sample/start-sample.js';
import {
  freePort,
  redisCommand,
  startRedisServers,
  stopAllRedisServers,
  type RedisFleet,
} from '../helpers/redis-servers.js';

type Sample = Awaited<ReturnType<typeof startSample>>;

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------------------------

interface Reply<T = any> {
  status: number;
  body: T;
}

/** One HTTP call; JSON in and out. `body: 'raw:...'` sends the text as is. */
async function call<T = any>(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Reply<T>> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (typeof body === 'string' && body.startsWith('raw:')) {
    init.body = body.slice(4);
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] = 'application/json';
  }
  const response = await fetch(base + path, { ...init, signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not JSON: keep the text for the assertion message.
  }
  return { status: response.status, body: parsed as T };
}

/** Polls `check` until it returns true or `timeoutMs` runs out; returns whether it did. */
async function eventually(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(100);
  }
}

/** Runs `body` with RING_REDIS_NODES set to `value` (or unset), restoring it afterwards. */
async function withNodesEnv<T>(value: string | undefined, body: () => Promise<T>): Promise<T> {
  const saved = process.env.RING_REDIS_NODES;
  if (value === undefined) delete process.env.RING_REDIS_NODES;
  else process.env.RING_REDIS_NODES = value;
  try {
    return await body();
  } finally {
    if (saved === undefined) delete process.env.RING_REDIS_NODES;
    else process.env.RING_REDIS_NODES = saved;
  }
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    const done = (result: boolean) => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(1_000, () => done(true)); // Accepted but silent still counts as alive.
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

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

/** The i-th server of a fleet by the sample's node name (`node1` → servers[1]). */
function serverOf(fleet: RedisFleet, node: string) {
  const server = fleet.servers[Number(/^node(\d)$/.exec(node)?.[1])];
  if (!server) throw new Error(`no server for node ${node}`);
  return server;
}

/** A key (with the given template) that the ring places on `node`, found via /ring/locate. */
async function keyOn(
  base: string,
  node: string,
  template: (i: number) => string,
  ring: 'aliveNode' | 'totalNode' = 'aliveNode',
): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const key = template(i);
    const { body } = await call(base, 'GET', `/ring/locate/${encodeURIComponent(key)}`);
    if (body[ring] === node) return key;
  }
  throw new Error(`no key placed on ${node} in 200 tries`);
}

afterAll(async () => {
  // Safety net: whatever failed above, no redis-server started in this file survives it.
  await stopAllRedisServers();
});

// ---------------------------------------------------------------------------------------------
// In process, with the three nodes the sample starts itself.
// ---------------------------------------------------------------------------------------------

describe('sample app with its own three nodes (in process)', () => {
  let sample: Sample | undefined;
  let base = '';
  let fleet: RedisFleet;
  let envDuringBoot: string | undefined;

  beforeAll(async () => {
    const envBefore = process.env.RING_REDIS_NODES;
    sample = await withNodesEnv(undefined, async () => {
      const started = await startSample(0);
      envDuringBoot = process.env.RING_REDIS_NODES;
      return started;
    });
    expect(process.env.RING_REDIS_NODES).toBe(envBefore);
    // The boot log is enough; ejection warnings below are expected and would only be noise.
    sample.app.useLogger(['error']);
    base = sample.url;
    if (!sample.fleet) throw new Error('the sample started no nodes of its own');
    fleet = sample.fleet;
    // On a loaded machine the boot itself can stall the event loop past the sample's 300 ms
    // commandTimeout, and the ring then ejects nodes whose connect did answer (they come back
    // with the next heartbeat). The suite starts from a settled ring.
    const settled = await eventually(
      async () => (await call(base, 'GET', '/ring/nodes')).body.alive === 3,
      10_000,
    );
    if (!settled) throw new Error('the three nodes were not all alive within 10 s of boot');
  });

  afterAll(async () => {
    await sample?.stop();
  });

  it('starts three local nodes on free ports (never 6379) and listens on 127.0.0.1', () => {
    expect(fleet.servers).toHaveLength(3);
    for (const server of fleet.servers) {
      expect(server.running).toBe(true);
      expect(server.port).not.toBe(6379);
    }
    expect(envDuringBoot).toBe(fleet.servers.map((s, i) => `node${i}=${s.url}`).join(','));
    expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('GET /health: 200 with three nodes up', async () => {
    const { status, body } = await call(base, 'GET', '/health');
    expect(status).toBe(200);
    expect(body.status).toBe('ok');
    const ring = body.details['ring-redis'];
    expect(ring.status).toBe('up');
    expect(ring.groups.test).toMatchObject({ alive: 3, total: 3 });
    expect(Array.isArray(ring.groups.test.events)).toBe(true);
    for (const node of ['node0', 'node1', 'node2']) {
      expect(ring.groups.test.nodes[node]).toMatchObject({
        alive: true,
        ejections: expect.any(Number),
        rediscoveries: expect.any(Number),
      });
    }
    // Never an address, let alone credentials.
    expect(JSON.stringify(body)).not.toMatch(/redis:\/\/|127\.0\.0\.1/);
  });

  it('GET /ring/nodes: three nodes, all alive', async () => {
    const { status, body } = await call(base, 'GET', '/ring/nodes');
    expect(status).toBe(200);
    expect(body.alive).toBe(3);
    expect(body.total).toBe(3);
    expect(body.nodes.map((n: { name: string }) => n.name).sort()).toEqual([
      'node0',
      'node1',
      'node2',
    ]);
    for (const node of body.nodes) expect(node.alive).toBe(true);
  });

  it('GET /weather/:city: a slow miss, then a hit from the same entry and node', async () => {
    const started = performance.now();
    const miss = await call(base, 'GET', '/weather/paris');
    const missMs = performance.now() - started;
    expect(miss.status).toBe(200);
    expect(miss.body.hit).toBe(false);
    expect(missMs).toBeGreaterThanOrEqual(250);
    expect(miss.body.entry).toBe('sample:weather:["paris"]');
    expect(['node0', 'node1', 'node2']).toContain(miss.body.node);
    expect(miss.body.forecast.city).toBe('paris');
    expect(miss.body.forecast.days).toHaveLength(3);

    const hit = await call(base, 'GET', '/weather/paris');
    expect(hit.status).toBe(200);
    expect(hit.body.hit).toBe(true);
    expect(hit.body.entry).toBe(miss.body.entry);
    expect(hit.body.node).toBe(miss.body.node);
    // The very same forecast (computedAt included): it came from Redis, not a recomputation.
    expect(hit.body.forecast).toEqual(miss.body.forecast);

    // The entry really is on the node the JSON names, and on no other.
    for (const [i, server] of fleet.servers.entries()) {
      const exists = await redisCommand(server.port, 'EXISTS', miss.body.entry);
      expect(exists, `node${i}`).toBe(`node${i}` === miss.body.node ? '1' : '0');
    }
  });

  it('GET /ring/locate/:key agrees with the entry and node /weather reported', async () => {
    const weather = await call(base, 'GET', '/weather/paris');
    const { status, body } = await call(
      base,
      'GET',
      `/ring/locate/${encodeURIComponent('weather:["paris"]')}`,
    );
    expect(status).toBe(200);
    expect(body).toEqual({
      key: 'weather:["paris"]',
      entry: weather.body.entry,
      aliveNode: weather.body.node,
      totalNode: weather.body.node,
    });
  });

  it('PUT, GET and DELETE /kv/:key store JSON through the injected RingDict', async () => {
    const value = { hello: 'world', n: [1, 2, 3] };
    const put = await call(base, 'PUT', '/kv/greeting', { value, ttl: 60 });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ key: 'greeting', entry: 'sample:greeting' });

    const located = await call(base, 'GET', '/ring/locate/greeting');
    expect(located.body.entry).toBe('sample:greeting');
    expect(located.body.aliveNode).toBe(put.body.node);
    expect(located.body.totalNode).toBe(put.body.node);

    // Stored as plain JSON with the TTL, on the node the reply named.
    const server = serverOf(fleet, put.body.node);
    expect(await redisCommand(server.port, 'GET', 'sample:greeting')).toBe(JSON.stringify(value));
    const pttl = Number(await redisCommand(server.port, 'PTTL', 'sample:greeting'));
    expect(pttl).toBeGreaterThan(50_000);
    expect(pttl).toBeLessThanOrEqual(60_000);

    const got = await call(base, 'GET', '/kv/greeting');
    expect(got).toEqual({ status: 200, body: { key: 'greeting', value } });

    // Without a ttl: no expiry (the sample's group has no default expire).
    expect((await call(base, 'PUT', '/kv/forever', { value: 'x' })).status).toBe(200);
    const forever = serverOf(
      fleet,
      (await call(base, 'GET', '/ring/locate/forever')).body.aliveNode,
    );
    expect(await redisCommand(forever.port, 'PTTL', 'sample:forever')).toBe('-1');

    // Falsy values are values.
    for (const falsy of [0, '', false, null]) {
      expect((await call(base, 'PUT', '/kv/falsy', { value: falsy })).status).toBe(200);
      expect((await call(base, 'GET', '/kv/falsy')).body).toEqual({ key: 'falsy', value: falsy });
    }

    const deleted = await call(base, 'DELETE', '/kv/greeting');
    expect(deleted).toEqual({ status: 200, body: { key: 'greeting', deleted: true } });
    expect(await redisCommand(server.port, 'EXISTS', 'sample:greeting')).toBe('0');
    expect((await call(base, 'GET', '/kv/greeting')).status).toBe(404);
  });

  it('PUT /kv/:key answers 400 with a message for bad bodies, and stores nothing', async () => {
    const bad: [string, unknown, Record<string, string>?][] = [
      ['no body', undefined],
      ['empty object', {}],
      ['no value', { ttl: 10 }],
      ['an array', [1, 2]],
      ['ttl a string', { value: 1, ttl: '10' }],
      ['ttl zero', { value: 1, ttl: 0 }],
      ['ttl negative', { value: 1, ttl: -5 }],
      ['ttl null', { value: 1, ttl: null }],
      ['ttl under a millisecond', { value: 1, ttl: 0.0001 }],
      ['malformed JSON', 'raw:{"value":', { 'content-type': 'application/json' }],
      ['not JSON at all', 'raw:hello', { 'content-type': 'text/plain' }],
    ];
    for (const [label, body, headers] of bad) {
      const reply = await call(base, 'PUT', '/kv/bad', body, headers);
      expect(reply.status, label).toBe(400);
      expect(typeof reply.body.message, label).toBe('string');
      expect(reply.body.message.length, label).toBeGreaterThan(0);
    }
    expect((await call(base, 'GET', '/kv/bad')).status).toBe(404);
  });

  it('GET and DELETE /kv/:key answer 404 for a missing key', async () => {
    const get = await call(base, 'GET', '/kv/never-set');
    expect(get.status).toBe(404);
    expect(get.body.message).toContain('never-set');
    const del = await call(base, 'DELETE', '/kv/never-set');
    expect(del.status).toBe(404);
    expect(del.body.message).toContain('never-set');
  });

  it('POST /demo/nodes/:name/* answers 404 for a node it does not have', async () => {
    expect((await call(base, 'POST', '/demo/nodes/node9/kill')).status).toBe(404);
    expect((await call(base, 'POST', '/demo/nodes/bogus/restart')).status).toBe(404);
  });

  describe('with node1 killed mid-suite', () => {
    let cityOnNode1 = '';
    let cityElsewhere = '';
    let elsewhereNode = '';
    let kvKeyOnNode1 = '';
    /** node1's counters before the kill (a loaded boot may already have bumped them). */
    let before = { ejections: 0, rediscoveries: 0 };
    let killedAt = 0;

    const eventAfterKill = (type: string) => ({
      type,
      node: 'node1',
      at: expect.toSatisfy((at: string) => Date.parse(at) >= killedAt - 5),
    });

    beforeAll(async () => {
      // Before the kill: one cached forecast on node1, one on another node, and a kv key
      // whose home is node1.
      cityOnNode1 = await keyOn(base, 'node1', (i) => `weather:["city${i}"]`);
      cityOnNode1 = JSON.parse(cityOnNode1.slice('weather:'.length))[0];
      const first = await call(base, 'GET', `/weather/${cityOnNode1}`);
      expect(first.body.node).toBe('node1');
      for (let i = 0; !cityElsewhere; i++) {
        const reply = await call(base, 'GET', `/weather/town${i}`);
        if (reply.body.node !== 'node1') {
          cityElsewhere = `town${i}`;
          elsewhereNode = reply.body.node;
        }
      }
      kvKeyOnNode1 = await keyOn(base, 'node1', (i) => `user:${i}`);
      const nodes = await call(base, 'GET', '/ring/nodes');
      expect(nodes.body.alive).toBe(3);
      before = nodes.body.nodes.find((n: { name: string }) => n.name === 'node1');
    });

    it('POST /demo/nodes/node1/kill stops the process', async () => {
      killedAt = Date.now();
      const { status, body } = await call(base, 'POST', '/demo/nodes/node1/kill');
      expect(status).toBe(201);
      expect(body).toEqual({ node: 'node1', running: false });
      expect(fleet.servers[1].running).toBe(false);
      expect(await accepts(fleet.servers[1].port)).toBe(false);
    });

    it('GET /weather keeps answering: entries of node1 move, the others stay hits', async () => {
      const moved = await call(base, 'GET', `/weather/${cityOnNode1}`);
      expect(moved.status).toBe(200);
      expect(moved.body.forecast.city).toBe(cityOnNode1);
      expect(moved.body.node).not.toBe('node1');
      expect(['node0', 'node2']).toContain(moved.body.node);

      const stayed = await call(base, 'GET', `/weather/${cityElsewhere}`);
      expect(stayed.status).toBe(200);
      expect(stayed.body.hit).toBe(true);
      expect(stayed.body.node).toBe(elsewhereNode);

      const fresh = await call(base, 'GET', '/weather/reykjavik');
      expect(fresh.status).toBe(200);
    });

    it('PUT and GET /kv keep answering for a key whose home is node1', async () => {
      const put = await call(base, 'PUT', `/kv/${kvKeyOnNode1}`, { value: 'survives' });
      expect(put.status).toBe(200);
      expect(put.body.node).not.toBe('node1');
      const got = await call(base, 'GET', `/kv/${kvKeyOnNode1}`);
      expect(got).toEqual({ status: 200, body: { key: kvKeyOnNode1, value: 'survives' } });
      expect((await call(base, 'DELETE', `/kv/${kvKeyOnNode1}`)).status).toBe(200);
    });

    it('GET /health stays 200 and reports node1 ejected, with the event', async () => {
      const { status, body } = await call(base, 'GET', '/health');
      expect(status).toBe(200);
      expect(body.status).toBe('ok');
      const group = body.details['ring-redis'].groups.test;
      expect(group.alive).toBe(2);
      expect(group.total).toBe(3);
      expect(group.nodes.node1).toMatchObject({
        alive: false,
        ejections: before.ejections + 1,
        rediscoveries: before.rediscoveries,
      });
      expect(Date.parse(group.nodes.node1.ejectedAt)).not.toBeNaN();
      expect(typeof group.nodes.node1.lastError).toBe('string');
      expect(group.nodes.node0.alive).toBe(true);
      expect(group.nodes.node2.alive).toBe(true);
      expect(group.events).toContainEqual(eventAfterKill('ejected'));
      expect(JSON.stringify(body)).not.toMatch(/redis:\/\//);
    });

    it('GET /ring/nodes and /ring/locate show node1 out of the alive ring only', async () => {
      const nodes = await call(base, 'GET', '/ring/nodes');
      expect(nodes.status).toBe(200);
      expect(nodes.body.alive).toBe(2);
      expect(nodes.body.total).toBe(3);
      const node1 = nodes.body.nodes.find((n: { name: string }) => n.name === 'node1');
      expect(node1).toMatchObject({ alive: false, ejections: before.ejections + 1 });

      const located = await call(base, 'GET', `/ring/locate/${kvKeyOnNode1}`);
      expect(located.body.totalNode).toBe('node1');
      expect(['node0', 'node2']).toContain(located.body.aliveNode);
    });

    it('POST /demo/nodes/node1/restart: the heartbeat rediscovers it', async () => {
      const { status, body } = await call(base, 'POST', '/demo/nodes/node1/restart');
      expect(status).toBe(201);
      expect(body).toEqual({ node: 'node1', running: true });

      const back = await eventually(
        async () => (await call(base, 'GET', '/ring/nodes')).body.alive === 3,
        10_000,
      );
      expect(back, 'node1 rediscovered within 10 s').toBe(true);

      const health = await call(base, 'GET', '/health');
      expect(health.status).toBe(200);
      const group = health.body.details['ring-redis'].groups.test;
      expect(group.alive).toBe(3);
      expect(group.nodes.node1).toMatchObject({
        alive: true,
        ejections: before.ejections + 1,
        rediscoveries: before.rediscoveries + 1,
      });
      expect(group.events).toContainEqual(eventAfterKill('rediscovered'));

      // Its keys come home.
      const located = await call(base, 'GET', `/ring/locate/${kvKeyOnNode1}`);
      expect(located.body.aliveNode).toBe('node1');
      const put = await call(base, 'PUT', `/kv/${kvKeyOnNode1}`, { value: 'home again' });
      expect(put.body.node).toBe('node1');
      expect(await redisCommand(fleet.servers[1].port, 'GET', `sample:${kvKeyOnNode1}`)).toBe(
        '"home again"',
      );
    });
  });
});

// ---------------------------------------------------------------------------------------------
// In process, with external nodes from RING_REDIS_NODES.
// ---------------------------------------------------------------------------------------------

describe('sample app with RING_REDIS_NODES (in process)', () => {
  let fleet: RedisFleet | undefined;
  let sample: Sample | undefined;
  let nodesEnv = '';
  let envAfterBoot: string | undefined;

  beforeAll(async () => {
    fleet = await startRedisServers(3);
    nodesEnv = fleet.servers.map((s, i) => `node${i}=${s.url}`).join(',');
    sample = await withNodesEnv(nodesEnv, async () => {
      const started = await startSample(0);
      envAfterBoot = process.env.RING_REDIS_NODES;
      return started;
    });
    sample.app.useLogger(['error']);
  });

  afterAll(async () => {
    await sample?.stop();
    await fleet?.stop();
  });

  it('starts no redis-server of its own and leaves RING_REDIS_NODES alone', () => {
    expect(sample!.fleet).toBeUndefined();
    expect(envAfterBoot).toBe(nodesEnv);
  });

  it('serves /ring/nodes and /health over the given nodes', async () => {
    // Settled first: a stall at boot on a loaded machine may eject nodes for a heartbeat.
    const settled = await eventually(
      async () => (await call(sample!.url, 'GET', '/ring/nodes')).body.alive === 3,
      10_000,
    );
    expect(settled).toBe(true);
    const nodes = await call(sample!.url, 'GET', '/ring/nodes');
    expect(nodes.status).toBe(200);
    expect(nodes.body.alive).toBe(3);
    expect(nodes.body.total).toBe(3);
    expect(nodes.body.nodes.map((n: { name: string }) => n.name).sort()).toEqual([
      'node0',
      'node1',
      'node2',
    ]);
    const health = await call(sample!.url, 'GET', '/health');
    expect(health.status).toBe(200);
    expect(health.body.details['ring-redis'].groups.test).toMatchObject({ alive: 3, total: 3 });
  });

  it('stores into the given servers', async () => {
    const put = await call(sample!.url, 'PUT', '/kv/external', { value: 42 });
    expect(put.status).toBe(200);
    const server = serverOf(fleet!, put.body.node);
    expect(await redisCommand(server.port, 'GET', 'sample:external')).toBe('42');
  });

  it('has no demo routes: it cannot kill servers it does not own', async () => {
    expect((await call(sample!.url, 'POST', '/demo/nodes/node1/kill')).status).toBe(404);
    expect(fleet!.servers[1].running).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// `npm run sample` as a real process.
// ---------------------------------------------------------------------------------------------

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
