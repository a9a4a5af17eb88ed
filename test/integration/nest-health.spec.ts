import 'reflect-metadata';
import { Controller, Get, Query, type INestApplication, type Type } from '@nestjs/common';
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
import {
  resetFleet,
  ringNodes,
  startRedisServers,
  type RedisFleet,
} from '../helpers/redis-fleet.js';
import { fast } from '../helpers/nest-apps.js';
import { FAILOVER_BUDGET_MS, useSentinelGroup } from '../helpers/sentinel.js';
import { until } from '../helpers/wait.js';

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

/** What a user writes when the defaults will do: no options at all. */
@Controller('health')
class DefaultHealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly ring: RingRedisHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([() => this.ring.isHealthy()]);
  }
}

const SECRET = 'health-secret-never-shown';
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

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
  controller: Type = HealthController,
): Promise<INestApplication> {
  const ref = await Test.createTestingModule({
    imports: [TerminusModule, RingRedisModule.forRoot(options)],
    controllers: [controller],
    providers: [RingRedisHealthIndicator],
  }).compile();
  const app = ref.createNestApplication({ logger: false });
  apps.push(app);
  await app.init();
  return app;
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

describe('RingRedisHealthIndicator without options', () => {
  it('defaults minAlive to 1: up with one node alive, down with none', async () => {
    const app = await boot(
      { groups: { test: ringNodes(fleet.servers) }, defaults: fast },
      DefaultHealthController,
    );
    const dict = app.get(RingRedisService).getOrThrow('test');
    const indicator = app.get(RingRedisHealthIndicator);
    expect((await health(app)).status).toBe(200);

    // Just at the boundary: one node of two alive.
    await fleet.servers[0].kill();
    await until(() => dict.aliveHash.size === 1);
    const one = await health(app);
    expect(one.status).toBe(200);
    expect(one.details.status).toBe('up');
    expect(one.details.groups.test).toMatchObject({ alive: 1, total: 2 });
    // With a group but still no minAlive, the same default.
    expect(indicator.isHealthy('cache', { group: 'test' }).cache.status).toBe('up');

    // Just past it: none alive.
    await fleet.servers[1].kill();
    await until(() => dict.aliveHash.size === 0);
    const none = await health(app);
    expect(none.status).toBe(503);
    expect(none.details.status).toBe('down');
    expect(none.details.groups.test).toMatchObject({ alive: 0, total: 2 });
    expect(indicator.isHealthy('cache', { group: 'test' }).cache.status).toBe('down');
    // 0: the details without a verdict.
    expect(indicator.isHealthy('cache', { minAlive: 0 }).cache.status).toBe('up');
  });

  it('reports down, naming it, for a minAlive that is not a whole number ≥ 0', async () => {
    const app = await boot(
      { groups: { test: ringNodes(fleet.servers) }, defaults: fast },
      DefaultHealthController,
    );
    const indicator = app.get(RingRedisHealthIndicator);
    for (const bad of [Number('abc'), -1, 1.5, Infinity]) {
      expect(indicator.isHealthy('cache', { minAlive: bad }).cache).toEqual({
        status: 'down',
        message: `minAlive must be a whole number ≥ 0, got ${String(bad)}`,
      });
    }
    expect(indicator.isHealthy('cache', { minAlive: 2 }).cache.status).toBe('up');
    // A string read "got 1", which looks right.
    expect(indicator.isHealthy('cache', { minAlive: '1' as never }).cache.message).toBe(
      'minAlive must be a whole number ≥ 0, got "1"',
    );
  });

  it('reports down for a misspelt option; null options are none', async () => {
    const app = await boot(
      { groups: { test: ringNodes(fleet.servers) }, defaults: fast },
      DefaultHealthController,
    );
    const indicator = app.get(RingRedisHealthIndicator);
    // Ignored, the check was up with minAlive 1 where 5 was meant.
    expect(indicator.isHealthy('cache', { minAlvie: 5 } as { ping?: false }).cache).toEqual({
      status: 'down',
      message: 'unknown option "minAlvie"; the options are group, minAlive, ping',
    });
    // A TypeError (destructuring null) before.
    expect(indicator.isHealthy('cache', null as unknown as undefined).cache.status).toBe('up');
    // A field left undefined (a spread, a DTO) is none; options that are no object say so.
    const spread = { minAlive: 1, timeout: undefined } as { ping?: false };
    expect(indicator.isHealthy('cache', spread).cache.status).toBe('up');
    expect(indicator.isHealthy('cache', 'x' as unknown as undefined).cache.message).toBe(
      'options must be an object such as { minAlive: 2 }, got "x"',
    );
  });
});

describe('RingRedisHealthIndicator on a Sentinel node', () => {
  const sentinels = useSentinelGroup({ name: 'health' });

  it('names the master in node details and in ejected / rediscovered events, across a failover', async () => {
    const app = await boot(
      {
        groups: {
          cache: {
            plain0: { capacity: 1, connection: fleet.servers[0].url },
            ha: { capacity: 1, connection: sentinels.group.connection() },
          },
        },
        defaults: { ...fast, retryRatio: 0 },
      },
      DefaultHealthController,
    );
    const dict = app.get(RingRedisService).getOrThrow('cache');
    const ha = () => dict.nodeStates().find((s) => s.name === 'ha')!;
    const from = `127.0.0.1:${sentinels.group.master.port}`;
    const to = `127.0.0.1:${sentinels.group.replica.port}`;
    await until(() => ha().master === from, 5000);

    const before = (await health(app)).details.groups.cache;
    expect(before.nodes.ha).toEqual({
      alive: true,
      ejections: 0,
      rediscoveries: 0,
      sentinel: 'health',
      master: from,
      failovers: 0,
    });
    expect(before.events).toEqual([]);

    await sentinels.group.master.kill();
    await until(() => !ha().alive, 5000);
    // Ejected: the details keep naming the last master, and so does the event.
    const out = await health(app);
    expect(out.status).toBe(200);
    expect(out.details.groups.cache.nodes.ha).toMatchObject({
      alive: false,
      ejectedAt: expect.stringMatching(ISO),
      ejections: 1,
      sentinel: 'health',
      master: from,
      failovers: 0,
    });
    expect(out.details.groups.cache.events).toEqual([
      { type: 'ejected', node: 'ha', at: expect.stringMatching(ISO), master: from },
    ]);

    await until(() => ha().alive, FAILOVER_BUDGET_MS);
    const back = (await health(app)).details.groups.cache;
    expect(back.nodes.ha).toMatchObject({
      alive: true,
      ejections: 1,
      rediscoveries: 1,
      sentinel: 'health',
      master: to,
      failovers: 1,
      lastFailover: { from, to, at: expect.stringMatching(ISO) },
    });
    expect(back.events).toEqual([
      { type: 'ejected', node: 'ha', at: expect.stringMatching(ISO), master: from },
      {
        type: 'rediscovered',
        node: 'ha',
        at: expect.stringMatching(ISO),
        master: to,
        failover: { from, to },
      },
    ]);
  }, 45_000);
});
