import 'reflect-metadata';
import { Controller, Get, Injectable, Query, type LoggerService } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RingRedisHealthIndicator } from '../../lib/health/index.js';
import { RingRedisModule, RingRedisService, type RingNodesConfig } from '../../lib/index.js';
import { fast, useNestApps } from '../helpers/nest-apps.js';
import { startRedisServers, type RedisFleet } from '../helpers/redis-fleet.js';
import { until } from '../helpers/wait.js';

/**
 * The health check's `ping` option: every node PINGed in parallel before the answer, so a
 * hung node (SIGSTOP) shows with no traffic at all; a `down` result says why in `message`,
 * and what Terminus logs on failure stays short.
 */

/** Terminus' logger: what it writes on a failed check. */
@Injectable()
class TerminusLog implements LoggerService {
  static lines: string[] = [];
  log(): void {}
  warn(): void {}
  error(message: unknown): void {
    TerminusLog.lines.push(String(message));
  }
}

@Controller('health')
class PingHealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly ring: RingRedisHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check(@Query('minAlive') minAlive?: string, @Query('timeout') timeout?: string) {
    return this.health.check([
      () =>
        this.ring.isHealthy('ring-redis', {
          minAlive: Number(minAlive ?? 1),
          ping: timeout === undefined ? true : { timeout: Number(timeout) },
        }),
    ]);
  }
}

const SECRET = 'ping-secret-never-shown';
const apps = useNestApps({ servers: 3 });
let locked: RedisFleet;
beforeAll(async () => {
  locked = await startRedisServers(1, { extraArgs: ['--requirepass', SECRET] });
});
afterAll(() => locked?.stop());

async function boot(nodes: RingNodesConfig = apps.nodes()) {
  TerminusLog.lines = [];
  const app = await apps.boot({
    imports: [
      RingRedisModule.forRoot({ groups: { test: nodes }, defaults: fast, isGlobal: true }),
      TerminusModule.forRoot({ logger: TerminusLog }),
    ],
    controllers: [PingHealthController],
    providers: [RingRedisHealthIndicator],
  });
  // Every node connected before the test hangs or kills one: not ejected while connecting.
  const dict = app.get(RingRedisService).getOrThrow('test');
  await Promise.all(Array.from({ length: 30 }, (_, i) => dict.get(`warm${i}`)));
  return { app, server: app.getHttpServer(), indicator: app.get(RingRedisHealthIndicator) };
}

describe('isHealthy({ ping })', () => {
  // A closed (or closing) dict's ping rejected, taken for no PINGs at all: every node counted
  // alive, up, while Nest was shutting down.
  it('with the group closed, no node answered: down', async () => {
    const { app, indicator } = await boot();
    await app.get(RingRedisService).getOrThrow('test').close();
    const result = await indicator.isHealthy('ring-redis', { minAlive: 1, ping: true });
    const details = result['ring-redis'] as unknown as {
      status: string;
      groups: { test: { alive: number; nodes: Record<string, { ping?: { ok: boolean } }> } };
    };
    expect(details.status).toBe('down');
    expect(details.groups.test.alive).toBe(0);
    expect(details.groups.test.nodes.node0.ping).toMatchObject({ ok: false });
  });

  it('PINGs every node and reports each answer', async () => {
    const { server } = await boot();
    const { body } = await request(server).get('/health?minAlive=3').expect(200);
    const group = body.details['ring-redis'].groups.test;
    expect(group.alive).toBe(3);
    for (const node of ['node0', 'node1', 'node2']) {
      expect(group.nodes[node].ping).toEqual({ ok: true, ms: expect.any(Number) });
      expect(group.nodes[node].ping.ms).toBeLessThan(500);
    }
  });

  it('sees a hung node with no traffic at all: down, saying which node and why', async () => {
    const { server, indicator } = await boot();
    await request(server).get('/health?minAlive=3').expect(200);
    apps.fleet.servers[1].hang();
    // Without ping nothing has noticed: the ring had no request for the node.
    expect(indicator.isHealthy('ring-redis', { minAlive: 3 })['ring-redis'].status).toBe('up');
    const started = performance.now();
    const { body } = await request(server).get('/health?minAlive=3&timeout=300').expect(503);
    expect(performance.now() - started).toBeLessThan(1500);
    const result = body.error['ring-redis'];
    expect(result.status).toBe('down');
    // A node that does not answer the PING is ejected, as a request would have it.
    expect(result.message).toBe(
      'group "test": 2 of 3 nodes alive, minAlive 3 (node1: ejected (no answer to PING within 300 ms))',
    );
    expect(result.groups.test.nodes.node1).toMatchObject({
      alive: false,
      ping: { ok: false, error: 'no answer to PING within 300 ms' },
    });
    expect(result.groups.test.nodes.node0.ping.ok).toBe(true);
    // Up again with minAlive 2: the hung node is reported, the group still serves.
    await request(server).get('/health?minAlive=2&timeout=300').expect(200);
  });

  it('PINGs in parallel: two hung nodes cost one timeout, not two', async () => {
    const { indicator } = await boot();
    apps.fleet.servers[0].hang();
    apps.fleet.servers[2].hang();
    const started = performance.now();
    // 400 ms asked, but the nodes' commandTimeout (300 ms) bounds every PING.
    const result = await indicator.isHealthy('ring', { minAlive: 2, ping: { timeout: 400 } });
    const took = performance.now() - started;
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(550);
    expect(result.ring.status).toBe('down');
    expect(result.ring.message).toMatch(
      /^group "test": 1 of 3 nodes alive, minAlive 2 \(node0: ejected \(no answer to PING within 300 ms\); node2: ejected/,
    );
  });

  it('names a dead node as the ring saw it, with its PING failing too', async () => {
    const { indicator, app } = await boot();
    const dict = app.get(RingRedisService).getOrThrow('test');
    await apps.fleet.servers[2].kill();
    // A closed connection is noticed without traffic; a hang is not (above).
    await until(() => !dict.nodeStates()[2].alive);
    const result = await indicator.isHealthy('ring', { minAlive: 3, ping: true });
    expect(result.ring.message).toMatch(
      /^group "test": 2 of 3 nodes alive, minAlive 3 \(node2: ejected \(.*ECONNREFUSED.*\)\)$/,
    );
    expect(result.ring.groups.test.nodes.node2.ping).toEqual({
      ok: false,
      error: expect.stringMatching(/^connect ECONNREFUSED 127\.0\.0\.1:\d+$/),
    });
  });

  it('a node setNodes replaces during the PINGs is not blamed for the old server', async () => {
    const spare = await startRedisServers(1);
    apps.track({ close: () => spare.stop() });
    const { app, indicator } = await boot();
    apps.fleet.servers[2].hang();
    try {
      const checked = indicator.isHealthy('ring-redis', { minAlive: 3, ping: { timeout: 600 } });
      await new Promise((resolve) => setTimeout(resolve, 50));
      // node2 is another server from now on.
      const nodes = {
        ...apps.nodes(0, 2),
        node2: { capacity: 1, connection: spare.servers[0].url },
      };
      await app.get(RingRedisService).setNodes(nodes, 'test');
      const result = (await checked)['ring-redis'] as unknown as {
        status: string;
        groups: { test: { nodes: Record<string, { alive: boolean; ping?: object }> } };
      };
      // The hung server's silence was reported as node2's: down, "no answer to PING".
      expect(result.status).toBe('up');
      expect(result.groups.test.nodes.node2).toMatchObject({ alive: true });
      expect(result.groups.test.nodes.node2.ping).toBeUndefined();
      expect(result.groups.test.nodes.node0.ping).toMatchObject({ ok: true });
    } finally {
      apps.fleet.servers[2].resume();
    }
  });

  it("connects with the group's configuration, credentials included, and shows none", async () => {
    const [server] = locked.servers;
    const { indicator } = await boot({
      a: { connection: { host: '127.0.0.1', port: server.port, password: SECRET } },
      b: `redis://:wrong-${SECRET}@127.0.0.1:${server.port}/1`,
    });
    const result = await indicator.isHealthy('ring', { minAlive: 2, ping: true });
    const { nodes } = result.ring.groups.test;
    expect(nodes.a.ping).toEqual({ ok: true, ms: expect.any(Number) });
    expect(nodes.b.ping.ok).toBe(false);
    expect(JSON.stringify(result)).not.toContain(SECRET);
  });

  it('keeps what Terminus logs on failure short: no stack, no undefined, a few events', async () => {
    const { server, app } = await boot();
    const dict = app.get(RingRedisService).getOrThrow('test');
    const rings = app.get(RingRedisService);
    // Twenty events: ten ejections and rediscoveries of node2.
    for (let cycle = 0; cycle < 10; cycle++) {
      await apps.fleet.servers[2].kill();
      await until(async () => {
        for (let i = 0; i < 10; i++) await dict.get(`k${i}`);
        return !dict.nodeStates()[2].alive;
      });
      await apps.fleet.servers[2].restart();
      await until(() => dict.nodeStates()[2].alive);
    }
    expect(rings.recentEvents('test')).toHaveLength(20);
    apps.fleet.servers[2].hang();
    await request(server).get('/health?minAlive=3&timeout=300').expect(503);
    expect(TerminusLog.lines).toHaveLength(1);
    const [line] = TerminusLog.lines;
    expect(line).toMatch(/^Health Check has failed! /);
    expect(line).toContain('"message":"group \\"test\\": 2 of 3 nodes alive, minAlive 3');
    expect(line).not.toMatch(/\n\s+at |undefined/);
    expect(line.length).toBeLessThan(1000);
    const logged = JSON.parse(line.replace('Health Check has failed! ', ''));
    expect(logged['ring-redis'].groups.test.events).toHaveLength(3);
  });

  it.each<[unknown, string]>([
    [{ timeout: 0 }, 'ping.timeout must be a whole number of milliseconds > 0, got 0'],
    [{ timeout: 1.5 }, 'ping.timeout must be a whole number of milliseconds > 0, got 1.5'],
    // setTimeout's limit: a longer timer fires after 1 ms.
    [
      { timeout: 2 ** 31 },
      'ping.timeout must be at most 2147483647 ms (about 24.8 days), got 2147483648',
    ],
    [{ timout: 10 }, 'ping: unknown option "timout"; the option is timeout'],
    ['yes', 'ping must be true, false or { timeout }, got "yes"'],
  ])('reports down for ping %j, naming the value', async (ping, message) => {
    const { indicator } = await boot();
    const result = indicator.isHealthy('ring', { ping: ping as boolean });
    expect(await result).toEqual({ ring: { status: 'down', message } });
  });
});
