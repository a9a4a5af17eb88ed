import 'reflect-metadata';
import { Controller, Get, Query, type INestApplication } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RingRedisHealthIndicator } from '../../lib/health/index.js';
import { RingRedisModule, RingRedisService } from '../../lib/index.js';
import { startRedisServers, type RedisFleet } from '../helpers/redis-servers.js';
import { until } from '../helpers/wait.js';

@Controller('health')
class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly ring: RingRedisHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check(@Query('minAlive') minAlive?: string) {
    return this.health.check([
      () => this.ring.isHealthy('ring-redis', { minAlive: Number(minAlive ?? 1) }),
    ]);
  }
}

const SECRET = 'hunter2-very-secret';
let fleet: RedisFleet;
let locked: RedisFleet;
let app: INestApplication;

beforeAll(async () => {
  fleet = await startRedisServers(2);
  locked = await startRedisServers(1, { extraArgs: ['--requirepass', SECRET] });
});

afterEach(async () => {
  await app?.close();
  for (const server of [...fleet.servers, ...locked.servers]) {
    if (!server.running) await server.restart();
  }
});

afterAll(async () => {
  await fleet?.stop();
  await locked?.stop();
});

async function boot(): Promise<INestApplication> {
  const ref = await Test.createTestingModule({
    imports: [
      TerminusModule,
      RingRedisModule.forRoot({
        groups: {
          test: {
            node0: { capacity: 1, connection: fleet.servers[0].url },
            node1: { capacity: 1, connection: fleet.servers[1].url },
            node2: {
              capacity: 1,
              connection: `redis://:${SECRET}@127.0.0.1:${locked.servers[0].port}`,
            },
          },
        },
        defaults: { commandTimeout: 1000, heartbeatInterval: 100 },
      }),
    ],
    controllers: [HealthController],
    providers: [RingRedisHealthIndicator],
  }).compile();
  app = ref.createNestApplication({ logger: false });
  await app.init();
  return app;
}

describe('RingRedisHealthIndicator over HTTP', () => {
  it('reports up, a killed node, all down, and the rediscovery', async () => {
    await boot();
    const http = app.getHttpServer();
    const dict = app.get(RingRedisService).getOrThrow('test');
    await dict.set('warm', 1);

    const healthy = await request(http).get('/health').expect(200);
    expect(healthy.body.details['ring-redis']).toMatchObject({
      status: 'up',
      groups: {
        test: {
          alive: 3,
          total: 3,
          nodes: { node0: { alive: true, ejections: 0, rediscoveries: 0 } },
          events: [],
        },
      },
    });

    await locked.servers[0].kill();
    // The next request or the closed connection ejects it.
    await dict.get('anything');
    await until(async () => dict.aliveHash.size === 2, 2000);
    const one = await request(http).get('/health').expect(200);
    const details = one.body.details['ring-redis'].groups.test;
    expect(details.alive).toBe(2);
    expect(details.nodes.node2).toMatchObject({
      alive: false,
      ejections: 1,
      ejectedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      lastError: expect.any(String),
    });
    expect(details.events).toEqual([{ type: 'ejected', node: 'node2', at: expect.any(String) }]);
    const strict = await request(http).get('/health?minAlive=3').expect(503);
    expect(strict.body.details['ring-redis'].status).toBe('down');

    await Promise.all(fleet.servers.map((s) => s.kill()));
    await until(async () => dict.aliveHash.size === 0, 2000);
    await request(http).get('/health').expect(503);

    await Promise.all([...fleet.servers, ...locked.servers].map((s) => s.restart()));
    await until(async () => (await request(http).get('/health?minAlive=3')).status === 200, 3000);
    const back = await request(http).get('/health').expect(200);
    const nodes = back.body.details['ring-redis'].groups.test.nodes;
    expect(nodes.node2).toMatchObject({ alive: true, ejections: 1, rediscoveries: 1 });
    const types = back.body.details['ring-redis'].groups.test.events.map(
      (e: { type: string }) => e.type,
    );
    expect(types).toContain('unavailable');
    expect(types.filter((t: string) => t === 'rediscovered')).toHaveLength(3);
  });

  it('never shows a password, a username or a connection URL', async () => {
    await boot();
    const dict = app.get(RingRedisService).getOrThrow('test');
    await locked.servers[0].kill();
    await dict.get('x');
    await until(async () => dict.aliveHash.size === 2, 2000);
    const body = JSON.stringify((await request(app.getHttpServer()).get('/health')).body);
    expect(body).not.toContain(SECRET);
    expect(body).not.toContain('redis://');
    expect(body).not.toMatch(/@127\.0\.0\.1/);
  });

  it('checks one group with the group option, and reports an unknown group as down', async () => {
    await boot();
    const indicator = app.get(RingRedisHealthIndicator);
    const result = indicator.isHealthy('cache', { group: 'test' });
    expect(result.cache.status).toBe('up');
    expect(indicator.isHealthy('cache', { group: 'nope' }).cache).toMatchObject({
      status: 'down',
      message: 'no ring group "nope"',
    });
  });
});
