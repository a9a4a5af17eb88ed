/**
 * The sample app end to end, as a user meets it: booted in-process against the three nodes it
 * starts itself, every route, then a node killed and restarted mid-suite.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSample } from '../../sample/start-sample.js';
import { redisCommand } from '../helpers/redis-command.js';
import { serverOf, type RedisFleet } from '../helpers/redis-fleet.js';
import { stopAllRedisServers } from '../helpers/redis-servers.js';
import {
  accepts,
  call,
  eventually,
  grew,
  keyOn,
  scrape,
  withNodesEnv,
  type Sample,
} from '../helpers/sample-app.js';

afterAll(async () => {
  // Safety net: whatever failed above, no redis-server started in this file survives it.
  await stopAllRedisServers();
});

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
    const server = serverOf(fleet.servers, put.body.node);
    expect(await redisCommand(server.port, 'GET', 'sample:greeting')).toBe(JSON.stringify(value));
    const pttl = Number(await redisCommand(server.port, 'PTTL', 'sample:greeting'));
    expect(pttl).toBeGreaterThan(50_000);
    expect(pttl).toBeLessThanOrEqual(60_000);

    const got = await call(base, 'GET', '/kv/greeting');
    expect(got).toEqual({ status: 200, body: { key: 'greeting', value } });

    // Without a ttl: no expiry (the sample's group has no default expire).
    expect((await call(base, 'PUT', '/kv/forever', { value: 'x' })).status).toBe(200);
    const forever = serverOf(
      fleet.servers,
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

  it('GET /metrics: Prometheus text counting exactly the requests made, no key in any label', async () => {
    const key = await keyOn(base, 'node2', (i) => `metrics-probe-${i}`);
    const missing = await keyOn(base, 'node0', (i) => `metrics-missing-${i}`);
    const before = await scrape(base);
    expect(before.contentType).toMatch(/^text\/plain/);

    expect((await call(base, 'PUT', `/kv/${key}`, { value: 'counted' })).status).toBe(200);
    expect((await call(base, 'GET', `/kv/${key}`)).status).toBe(200);
    expect((await call(base, 'GET', `/kv/${key}`)).status).toBe(200);
    expect((await call(base, 'GET', `/kv/${missing}`)).status).toBe(404);
    expect((await call(base, 'GET', '/weather/metrics-town')).body.hit).toBe(false);
    expect((await call(base, 'GET', '/weather/metrics-town')).body.hit).toBe(true);
    const after = await scrape(base);

    const ops = (node: string, operation: string, outcome: string) =>
      grew(
        before,
        after,
        `ring_redis_operations_total{group="test",node="${node}",operation="${operation}",outcome="${outcome}"}`,
      );
    expect(ops('node2', 'set', 'ok')).toBe(1);
    expect(ops('node2', 'get', 'hit')).toBe(2);
    expect(ops('node0', 'get', 'miss')).toBe(1);
    const timed = `ring_redis_operation_duration_count{group="test",node="node2",operation="get"}`;
    expect(grew(before, after, timed)).toBe(2);
    const calls = (outcome: string) =>
      grew(
        before,
        after,
        `ring_redis_cached_calls_total{group="test",method="WeatherService.forecast",outcome="${outcome}"}`,
      );
    expect([calls('miss'), calls('hit')]).toEqual([1, 1]);
    expect(after.samples.get('ring_redis_nodes_alive{group="test"}')).toBe(3);
    for (const value of after.labelValues) {
      expect(value).not.toMatch(/metrics-(probe|missing|town)|counted|sample:/);
    }
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
      // The ejection and the rediscovery, counted once each, as /metrics shows them.
      const scraped = await scrape(base);
      const moved = (type: string) =>
        scraped.samples.get(
          `ring_redis_node_transitions_total{group="test",node="node1",type="${type}"}`,
        );
      expect(moved('ejected')).toBe(before.ejections + 1);
      expect(moved('rediscovered')).toBe(before.rediscoveries + 1);

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
