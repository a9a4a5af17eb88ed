/**
 * The sample app booted in-process against external nodes given in RING_REDIS_NODES: it starts
 * no server of its own, and serves and stores through the ones it was given.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSample } from '../../sample/start-sample.js';
import { redisCommand } from '../helpers/redis-command.js';
import { serverOf, startRedisServers, type RedisFleet } from '../helpers/redis-fleet.js';
import { stopAllRedisServers } from '../helpers/redis-servers.js';
import { call, eventually, withNodesEnv, type Sample } from '../helpers/sample-app.js';

afterAll(async () => {
  // Safety net: whatever failed above, no redis-server started in this file survives it.
  await stopAllRedisServers();
});

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
    const server = serverOf(fleet!.servers, put.body.node);
    expect(await redisCommand(server.port, 'GET', 'sample:external')).toBe('42');
  });

  it('has no demo routes: it cannot kill servers it does not own', async () => {
    expect((await call(sample!.url, 'POST', '/demo/nodes/node1/kill')).status).toBe(404);
    expect(fleet!.servers[1].running).toBe(true);
  });
});
