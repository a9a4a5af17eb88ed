import 'reflect-metadata';
import { Controller, Get, Query, type INestApplication } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RingRedisHealthIndicator } from '../../lib/health/index.js';
import {
  RingRedisModule,
  RingRedisService,
  type RingGroupsConfig,
  type RingRedisModuleOptions,
} from '../../lib/index.js';
import { resetFleet, startRedisServers, type RedisFleet } from '../helpers/redis-servers.js';
import { until as waitUntil } from '../helpers/wait.js';

/** What a user writes: Terminus' HealthCheckService over the ring's indicator. */
@Controller('health')
class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly ring: RingRedisHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check(@Query('minAlive') minAlive?: string, @Query('group') group?: string) {
    return this.health.check([
      () => this.ring.isHealthy('ring-redis', { minAlive: Number(minAlive ?? 1), group }),
    ]);
  }
}

const SECRET = 'health-secret-never-shown';
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
// A hung node is ejected after commandTimeout; an ejected one is PINGed every heartbeat.
const fast = { heartbeatInterval: 100, commandTimeout: 300 };

let fleet: RedisFleet;
let locked: RedisFleet;
const apps: INestApplication[] = [];

beforeAll(async () => {
  // Both starts settle before a failure is thrown, so afterAll stops whichever one started.
  const started = await Promise.allSettled([
    startRedisServers(2).then((f) => (fleet = f)),
    startRedisServers(1, { extraArgs: ['--requirepass', SECRET] }).then((f) => (locked = f)),
  ]);
  for (const result of started) if (result.status === 'rejected') throw result.reason;
});

afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
  await resetFleet(fleet);
  // No FLUSHALL there: it would need the password.
  for (const server of locked.servers) {
    if (server.isHung) server.resume();
    if (!server.running) await server.restart();
  }
});

afterAll(async () => {
  await fleet?.stop();
  await locked?.stop();
});

/** node0 and node1 plain, node2 behind a password given in its URL. */
function threeNodes(): RingGroupsConfig[string] {
  return {
    node0: { capacity: 1, connection: fleet.servers[0].url },
    node1: { capacity: 1, connection: fleet.servers[1].url },
    node2: {
      capacity: 1,
      connection: `redis://:${SECRET}@127.0.0.1:${locked.servers[0].port}`,
    },
  };
}

async function boot(
  options: RingRedisModuleOptions = { groups: { test: threeNodes() }, defaults: fast },
): Promise<INestApplication> {
  const ref = await Test.createTestingModule({
    imports: [TerminusModule, RingRedisModule.forRoot(options)],
    controllers: [HealthController],
    providers: [RingRedisHealthIndicator],
  }).compile();
  const app = ref.createNestApplication({ logger: false });
  apps.push(app);
  await app.init();
  return app;
}

async function until(condition: () => boolean | Promise<boolean>): Promise<void> {
  await waitUntil(condition, 8000);
}

interface Details {
  status: string;
  groups: Record<
    string,
    {
      alive: number;
      total: number;
      nodes: Record<string, Record<string, unknown>>;
      events: { type: string; node?: string; at: string }[];
    }
  >;
}

/** GET /health; answers the HTTP status, the ring's details and the raw body. */
async function health(app: INestApplication, query = '') {
  const response = await request(app.getHttpServer()).get(`/health${query}`);
  const details = response.body.details?.['ring-redis'] as Details;
  return { status: response.status, details, body: response.text };
}

const upNode = { alive: true, ejections: 0, rediscoveries: 0 };

describe('RingRedisHealthIndicator over HTTP (Terminus, platform-express)', () => {
  it('200 with every node up, in the documented shape', async () => {
    const app = await boot();
    const { status, details } = await health(app);
    expect(status).toBe(200);
    expect(details).toEqual({
      status: 'up',
      groups: {
        test: {
          alive: 3,
          total: 3,
          nodes: { node0: upNode, node1: upNode, node2: upNode },
          events: [],
        },
      },
    });
  });

  it('one node killed: ejected in the details, 200 with minAlive 1, 503 with minAlive 3; all killed: 503; restarted: 200', async () => {
    const app = await boot();
    const dict = app.get(RingRedisService).getOrThrow('test');
    await dict.set('warm', 1);

    await locked.servers[0].kill();
    // The closed connection (or the next request, or the heartbeat) ejects it.
    await until(() => dict.aliveHash.size === 2);
    const one = await health(app);
    expect(one.status).toBe(200);
    expect(one.details.status).toBe('up');
    const test = one.details.groups.test;
    expect(test.alive).toBe(2);
    expect(test.total).toBe(3);
    expect(test.nodes.node0).toEqual(upNode);
    expect(test.nodes.node2).toEqual({
      alive: false,
      ejectedAt: expect.stringMatching(ISO),
      ejections: 1,
      rediscoveries: 0,
      lastError: expect.stringMatching(/\S/),
    });
    expect(test.events).toEqual([
      { type: 'ejected', node: 'node2', at: expect.stringMatching(ISO) },
    ]);

    const strict = await health(app, '?minAlive=3');
    expect(strict.status).toBe(503);
    expect(strict.details.status).toBe('down');
    expect(strict.details.groups.test.alive).toBe(2);
    expect(JSON.parse(strict.body)).toMatchObject({ status: 'error', error: { 'ring-redis': {} } });

    await Promise.all(fleet.servers.map((s) => s.kill()));
    await until(() => dict.aliveHash.size === 0);
    await expect(dict.get('warm')).rejects.toThrow();
    const down = await health(app);
    expect(down.status).toBe(503);
    expect(down.details.groups.test.alive).toBe(0);
    expect(Object.values(down.details.groups.test.nodes).every((n) => n.alive === false)).toBe(
      true,
    );
    expect(down.details.groups.test.events.map((e) => e.type)).toContain('unavailable');

    await Promise.all([...fleet.servers, ...locked.servers].map((s) => s.restart()));
    await until(async () => (await health(app, '?minAlive=3')).status === 200);
    const back = await health(app);
    expect(back.status).toBe(200);
    expect(back.details.groups.test.alive).toBe(3);
    expect(back.details.groups.test.nodes.node2).toMatchObject({
      alive: true,
      ejections: 1,
      rediscoveries: 1,
    });
    const types = back.details.groups.test.events.map((e) => e.type);
    expect(types.filter((t) => t === 'ejected')).toHaveLength(3);
    expect(types.filter((t) => t === 'rediscovered')).toHaveLength(3);
    expect(types.filter((t) => t === 'unavailable')).toHaveLength(1);
  });

  it('a hung node is ejected by the next request that reaches it, and back after the heartbeat', async () => {
    const app = await boot();
    const dict = app.get(RingRedisService).getOrThrow('test');
    locked.servers[0].hang();
    // Some request lands on node2 and times out after commandTimeout; retried elsewhere.
    for (let i = 0; dict.aliveHash.size === 3 && i < 200; i++) await dict.get(`key-${i}`);
    const hung = await health(app);
    expect(hung.status).toBe(200);
    expect(hung.details.groups.test.nodes.node2).toMatchObject({
      alive: false,
      ejections: 1,
      lastError: expect.stringMatching(/\S/),
    });
    expect((await health(app, '?minAlive=3')).status).toBe(503);

    locked.servers[0].resume();
    await until(async () => (await health(app, '?minAlive=3')).status === 200);
    expect((await health(app)).details.groups.test.nodes.node2).toMatchObject({
      alive: true,
      rediscoveries: 1,
    });
  });

  it('never shows a password, a username or a connection URL, even for a refused password', async () => {
    const app = await boot({
      groups: {
        test: threeNodes(),
        refused: {
          wrong: {
            capacity: 1,
            connection: `redis://intruder:${SECRET}-wrong@127.0.0.1:${locked.servers[0].port}`,
          },
        },
      },
      defaults: fast,
    });
    const dict = app.get(RingRedisService).getOrThrow('test');
    await dict.set('k', 'v');
    await locked.servers[0].kill();
    await until(() => dict.aliveHash.size === 2);
    const bodies = [(await health(app)).body, (await health(app, '?minAlive=3')).body];
    await locked.servers[0].restart();
    await until(() => dict.aliveHash.size === 3);
    bodies.push((await health(app)).body);
    // The refused node is reported, with the server's reply but not the credential.
    expect(bodies[0]).toMatch(/"wrong":\{"alive":false/);
    for (const body of bodies) {
      expect(body).toContain('node2');
      expect(body).not.toContain(SECRET);
      expect(body).not.toContain('intruder');
      expect(body).not.toContain('redis://');
      expect(body).not.toMatch(/@127\.0\.0\.1/);
    }
  });

  it('checks one group with { group }, and every group without it', async () => {
    const app = await boot({
      groups: {
        test: threeNodes(),
        solo: { only: { capacity: 1, connection: fleet.servers[1].url } },
      },
      defaults: fast,
    });
    const solo = app.get(RingRedisService).getOrThrow('solo');
    await fleet.servers[1].kill();
    await until(() => solo.aliveHash.size === 0);

    // Every group: 'solo' has no node alive.
    const all = await health(app);
    expect(all.status).toBe(503);
    expect(Object.keys(all.details.groups)).toEqual(['test', 'solo']);
    expect(all.details.groups.solo).toMatchObject({ alive: 0, total: 1 });
    // One group at a time.
    const test = await health(app, '?group=test');
    expect(test.status).toBe(200);
    expect(Object.keys(test.details.groups)).toEqual(['test']);
    expect(test.details.groups.test.alive).toBe(2);
    expect((await health(app, '?group=solo')).status).toBe(503);

    const indicator = app.get(RingRedisHealthIndicator);
    expect(Object.keys(indicator.isHealthy())).toEqual(['ring-redis']);
    expect(indicator.isHealthy('cache', { group: 'test' }).cache.status).toBe('up');
    expect(indicator.isHealthy('cache', { group: 'nope' }).cache).toMatchObject({
      status: 'down',
      message: 'no ring group "nope"',
    });
  });

  it('keeps the most recent events only (bounded)', async () => {
    const app = await boot({
      groups: { test: { node0: { capacity: 1, connection: fleet.servers[0].url } } },
      defaults: fast,
    });
    const dict = app.get(RingRedisService).getOrThrow('test');
    // Each kill ejects the node, each restart brings it back: two events a cycle.
    const server = fleet.servers[0];
    for (let cycle = 1; cycle <= 12; cycle++) {
      await server.kill();
      await until(() => dict.nodeStates()[0].ejections === cycle);
      await server.restart();
      await until(() => dict.nodeStates()[0].rediscoveries === cycle);
    }
    const { details } = await health(app);
    expect(details.groups.test.nodes.node0).toMatchObject({ ejections: 12, rediscoveries: 12 });
    const events = details.groups.test.events;
    expect(events).toHaveLength(20);
    expect(events.at(-1)).toMatchObject({ type: 'rediscovered', node: 'node0' });
    // Oldest first.
    const times = events.map((e) => Date.parse(e.at));
    expect([...times].sort((a, b) => a - b)).toEqual(times);
  });
});
