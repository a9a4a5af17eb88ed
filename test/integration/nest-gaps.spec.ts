import 'reflect-metadata';
import {
  Controller,
  Get,
  Injectable,
  Logger,
  Module,
  Scope,
  type INestApplication,
  type Type,
} from '@nestjs/common';
import { ContextIdFactory } from '@nestjs/core';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RingRedisHealthIndicator } from '../../lib/health/index.js';
import {
  RingCacheService,
  RingCached,
  RingRedisModule,
  RingRedisService,
  type RingRedisModuleOptions,
} from '../../lib/index.js';
import { redisCommand, ringNodes } from '../helpers/redis-servers.js';
import { useRingFleet } from '../helpers/ring-fleet.js';
import { useSentinelGroup } from '../helpers/sentinel.js';
import { until as waitUntil } from '../helpers/wait.js';

/**
 * Behaviours of the Nest layer that no other suite pins down: the health indicator's
 * default `minAlive`, the Sentinel master in health details and events, the per-method
 * warning throttle of `@RingCached`, and what it does on a request-scoped provider.
 */

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

@Injectable()
class Throttled {
  calls = 0;

  @RingCached()
  async first(x: number): Promise<number> {
    this.calls++;
    return x + 1;
  }

  @RingCached()
  async second(x: number): Promise<number> {
    this.calls++;
    return x + 2;
  }
}

@Injectable({ scope: Scope.REQUEST })
class PerRequest {
  calls = 0;

  @RingCached()
  async load(x: number): Promise<number> {
    this.calls++;
    return x * 2;
  }
}

/** Request-scoped without saying so: it depends on a request-scoped provider. */
@Injectable()
class DependsOnPerRequest {
  calls = 0;

  constructor(readonly inner: PerRequest) {}

  @RingCached()
  async total(x: number): Promise<number> {
    this.calls++;
    return x * 3;
  }
}

@Injectable({ scope: Scope.TRANSIENT })
class PerConsumer {
  static calls = 0;

  @RingCached()
  async square(x: number): Promise<number> {
    PerConsumer.calls++;
    return x * x;
  }
}

@Injectable()
class FirstConsumer {
  constructor(readonly helper: PerConsumer) {}
}

@Injectable()
class SecondConsumer {
  constructor(readonly helper: PerConsumer) {}
}

@Injectable({ scope: Scope.REQUEST })
class RequestConsumer {
  constructor(readonly helper: PerConsumer) {}
}

/** Cached in the default group of the import that provides it. */
@Injectable()
class InFeatureA {
  calls = 0;

  @RingCached()
  async load(x: number): Promise<number> {
    this.calls++;
    return x + 100;
  }
}

/** Cached in a group only the other import declares. */
@Injectable()
class InFeatureB {
  calls = 0;

  constructor(readonly cache: RingCacheService) {}

  @RingCached({ group: 'sessions' })
  async load(x: number): Promise<number> {
    this.calls++;
    return x + 200;
  }
}

// A dead node is ejected after commandTimeout at worst; an ejected one is PINGed every heartbeat.
const fast = { heartbeatInterval: 100, commandTimeout: 300 };
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

const ring = useRingFleet(2);

afterEach(() => {
  vi.restoreAllMocks();
});

async function boot(
  options: RingRedisModuleOptions,
  { providers = [], health = false }: { providers?: Type[]; health?: boolean } = {},
): Promise<INestApplication> {
  const ref = await Test.createTestingModule({
    imports: [...(health ? [TerminusModule] : []), RingRedisModule.forRoot(options)],
    controllers: health ? [DefaultHealthController] : [],
    providers: [...(health ? [RingRedisHealthIndicator] : []), ...providers],
  }).compile();
  const app = ref.createNestApplication({ logger: false });
  ring.track(app);
  await app.init();
  return app;
}

async function until(condition: () => boolean | Promise<boolean>, ms = 8000): Promise<void> {
  await waitUntil(condition, ms);
}

/** GET /health; answers the HTTP status and the ring's details. */
async function health(app: INestApplication) {
  const response = await request(app.getHttpServer()).get('/health');
  return {
    status: response.status,
    details: response.body.details?.['ring-redis'] as {
      status: string;
      groups: Record<
        string,
        {
          alive: number;
          total: number;
          nodes: Record<string, Record<string, unknown>>;
          events: Record<string, unknown>[];
        }
      >;
    },
  };
}

describe('RingRedisHealthIndicator without options', () => {
  it('defaults minAlive to 1: up with one node alive, down with none', async () => {
    const app = await boot(
      { groups: { test: ringNodes(ring.fleet.servers) }, defaults: fast },
      {
        health: true,
      },
    );
    const dict = app.get(RingRedisService).getOrThrow('test');
    const indicator = app.get(RingRedisHealthIndicator);
    expect((await health(app)).status).toBe(200);

    // Just at the boundary: one node of two alive.
    await ring.fleet.servers[0].kill();
    await until(() => dict.aliveHash.size === 1);
    const one = await health(app);
    expect(one.status).toBe(200);
    expect(one.details.status).toBe('up');
    expect(one.details.groups.test).toMatchObject({ alive: 1, total: 2 });
    // With a group but still no minAlive, the same default.
    expect(indicator.isHealthy('cache', { group: 'test' }).cache.status).toBe('up');

    // Just past it: none alive.
    await ring.fleet.servers[1].kill();
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
      { groups: { test: ringNodes(ring.fleet.servers) }, defaults: fast },
      {
        health: true,
      },
    );
    const indicator = app.get(RingRedisHealthIndicator);
    for (const bad of [Number('abc'), -1, 1.5, Infinity]) {
      expect(indicator.isHealthy('cache', { minAlive: bad }).cache).toEqual({
        status: 'down',
        message: `minAlive must be a whole number ≥ 0, got ${String(bad)}`,
      });
    }
    expect(indicator.isHealthy('cache', { minAlive: 2 }).cache.status).toBe('up');
  });
});

describe('RingRedisHealthIndicator on a Sentinel node', () => {
  /** Sentinel declares the master down after 500 ms; a failover takes a few seconds. */
  const FAILOVER_BUDGET_MS = 25_000;
  const sentinels = useSentinelGroup({ name: 'gaps' });

  it('names the master in node details and in ejected / rediscovered events, across a failover', async () => {
    const app = await boot(
      {
        groups: {
          cache: {
            plain0: { capacity: 1, connection: ring.fleet.servers[0].url },
            ha: { capacity: 1, connection: sentinels.group.connection() },
          },
        },
        defaults: { ...fast, retryRatio: 0 },
      },
      { health: true },
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
      sentinel: 'gaps',
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
      sentinel: 'gaps',
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
      sentinel: 'gaps',
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

describe('@RingCached layers that share an explicit prefix', () => {
  it('warns at boot that a call through super would wait on itself', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    class Users {
      @RingCached({ prefix: 'users:' })
      async find(id: number): Promise<number> {
        return id;
      }
    }
    @Injectable()
    class AuditedUsers extends Users {
      @RingCached({ prefix: 'users:' })
      override async find(id: number): Promise<number> {
        return super.find(id);
      }
    }
    @Injectable()
    class MoreAuditedUsers extends AuditedUsers {}
    // Once for the pair, however many bound classes go through it.
    await boot(
      { groups: { default: ringNodes(ring.fleet.servers) }, defaults: fast },
      { providers: [AuditedUsers, MoreAuditedUsers] },
    );
    expect(warn.mock.calls.map(([m]) => String(m))).toEqual([
      'AuditedUsers.find and Users.find, which it overrides, share the prefix "users:" in group "default": a call through super would wait on its own miss; give them different prefixes',
    ]);
  });
});

describe('RingRedisModule imported twice in one app', () => {
  it('warns once that each import builds its own rings', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const options = { groups: { default: ringNodes(ring.fleet.servers) }, defaults: fast };
    @Module({ imports: [RingRedisModule.forRoot(options)] })
    class FeatureModule {}
    const ref = await Test.createTestingModule({
      imports: [RingRedisModule.forRoot(options), FeatureModule],
    }).compile();
    const app = ref.createNestApplication({ logger: false });
    ring.track(app);
    await app.init();
    expect(warn.mock.calls.map(([m]) => String(m))).toEqual([
      'RingRedisModule.forRoot/forRootAsync is imported 2 times in this app: each import builds its own rings and connections; import it once, in the root module (isGlobal: true)',
      'groups "default" are declared by more than one of those imports: @RingCached and RingCacheService use the first import\'s',
    ]);
  });

  it('@RingCached finds each group in the import that declares it, and evicts across them', async () => {
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const [one, two] = ring.fleet.servers;
    @Module({
      imports: [RingRedisModule.forRoot({ groups: { default: ringNodes([one]) }, defaults: fast })],
      providers: [InFeatureA],
    })
    class FeatureA {}
    @Module({
      imports: [
        RingRedisModule.forRoot({ groups: { sessions: ringNodes([two]) }, defaults: fast }),
      ],
      providers: [InFeatureB],
    })
    class FeatureB {}
    const ref = await Test.createTestingModule({ imports: [FeatureA, FeatureB] }).compile();
    const app = ref.createNestApplication({ logger: false });
    ring.track(app);
    await app.init();
    const a = app.get(InFeatureA);
    const b = app.get(InFeatureB);
    for (let i = 0; i < 2; i++) {
      expect(await a.load(1)).toBe(101);
      expect(await b.load(1)).toBe(201);
    }
    expect([a.calls, b.calls]).toEqual([1, 1]);
    // Each on its own import's server.
    const entry = (type: Function) => `${type.name}.load:[1]`;
    expect(await redisCommand(one.port, 'EXISTS', entry(InFeatureA))).toBe('1');
    expect(await redisCommand(two.port, 'EXISTS', entry(InFeatureB))).toBe('1');
    expect(await redisCommand(one.port, 'EXISTS', entry(InFeatureB))).toBe('0');
    // FeatureB's cache service evicts FeatureA's call, from FeatureA's server.
    expect(await b.cache.evict(InFeatureA, 'load', 1)).toBe(true);
    expect(await redisCommand(one.port, 'EXISTS', entry(InFeatureA))).toBe('0');
  });

  it('a group both imports declare: @RingCached uses the first import, and says so', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const [one, two] = ring.fleet.servers;
    @Module({
      imports: [RingRedisModule.forRoot({ groups: { default: ringNodes([one]) }, defaults: fast })],
    })
    class FeatureA {}
    @Module({
      imports: [RingRedisModule.forRoot({ groups: { default: ringNodes([two]) }, defaults: fast })],
      providers: [InFeatureA],
    })
    class FeatureB {}
    const ref = await Test.createTestingModule({ imports: [FeatureA, FeatureB] }).compile();
    const app = ref.createNestApplication({ logger: false });
    ring.track(app);
    await app.init();
    expect(warn.mock.calls.map(([m]) => String(m))).toContain(
      'groups "default" are declared by more than one of those imports: @RingCached and RingCacheService use the first import\'s',
    );
    const cached = app.get(InFeatureA);
    expect(await cached.load(2)).toBe(102);
    expect(await cached.load(2)).toBe(102);
    expect(cached.calls).toBe(1);
    // Cached, and evicted, on the first import's server, whichever module's service asks.
    const entry = 'InFeatureA.load:[2]';
    expect(await redisCommand(one.port, 'EXISTS', entry)).toBe('1');
    expect(await redisCommand(two.port, 'EXISTS', entry)).toBe('0');
    expect(await app.get(RingCacheService).evict(InFeatureA, 'load', 2)).toBe(true);
    expect(await redisCommand(one.port, 'EXISTS', entry)).toBe('0');
  });

  it('says nothing for one import, nor for two apps with one each', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const options = { groups: { default: ringNodes(ring.fleet.servers) }, defaults: fast };
    await boot(options);
    await boot(options);
    expect(warn).not.toHaveBeenCalled();
  });
});

describe('@RingCached warnings', () => {
  it('warns once per method per 10 s window while the ring fails, not once per call', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const app = await boot(
      { groups: { default: ringNodes(ring.fleet.servers) }, defaults: fast },
      {
        providers: [Throttled],
      },
    );
    const service = app.get(Throttled);
    const dict = app.get(RingRedisService).getOrThrow('default');
    await Promise.all(ring.fleet.servers.map((s) => s.kill()));
    await until(() => dict.aliveHash.size === 0);
    const warnings = (method: string) =>
      warn.mock.calls.map(([m]) => String(m)).filter((m) => m.startsWith(`Throttled.${method}:`));
    // The clock the throttle reads, stopped, so the test decides when the window ends.
    // Whole milliseconds: (start + 10 000) - start must be exactly 10 000, not 9 999.99….
    const start = Math.ceil(performance.now());
    let elapsed = 0;
    vi.spyOn(performance, 'now').mockImplementation(() => start + elapsed);

    for (let i = 0; i < 5; i++) expect(await service.first(i)).toBe(i + 1);
    expect(warnings('first')).toHaveLength(1);
    expect(warnings('first')[0]).toMatch(/^Throttled\.first: cache read failed \(.+\)/);

    // Another method has a throttle of its own.
    for (let i = 0; i < 3; i++) expect(await service.second(i)).toBe(i + 2);
    expect(warnings('second')).toHaveLength(1);
    expect(warnings('first')).toHaveLength(1);

    elapsed = 9_999;
    expect(await service.first(10)).toBe(11);
    expect(warnings('first')).toHaveLength(1);

    // A new window: one more warning, then quiet again.
    elapsed = 10_000;
    for (let i = 0; i < 3; i++) expect(await service.first(i)).toBe(i + 1);
    expect(warnings('first')).toHaveLength(2);
    expect(warnings('second')).toHaveLength(1);
    expect(service.calls).toBe(12);
  });

  it('gives two classes of the same name a throttle each', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const twin = (offset: number) => {
      @Injectable()
      class Twin {
        @RingCached({ prefix: `twin${offset}:` })
        async load(x: number): Promise<number> {
          return x + offset;
        }
      }
      return Twin;
    };
    const [One, Two] = [twin(1), twin(2)];
    const app = await boot(
      { groups: { default: ringNodes(ring.fleet.servers) }, defaults: fast },
      { providers: [One, Two] },
    );
    const dict = app.get(RingRedisService).getOrThrow('default');
    await Promise.all(ring.fleet.servers.map((s) => s.kill()));
    await until(() => dict.aliveHash.size === 0);
    expect(await app.get(One).load(1)).toBe(2);
    expect(await app.get(Two).load(1)).toBe(3);
    const said = warn.mock.calls.map(([m]) => String(m));
    expect(said.filter((m) => m.startsWith('Twin.load: cache read failed'))).toHaveLength(2);
  });

  it('caches a transient provider in every consumer it is injected into, without a warning', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const app = await boot(
      { groups: { default: ringNodes(ring.fleet.servers) }, defaults: fast },
      { providers: [PerConsumer, FirstConsumer, SecondConsumer] },
    );
    expect(warn).not.toHaveBeenCalled();
    const first = app.get(FirstConsumer).helper;
    const second = app.get(SecondConsumer).helper;
    expect(first).not.toBe(second);
    PerConsumer.calls = 0;
    expect(await first.square(7)).toBe(49);
    expect(await first.square(7)).toBe(49);
    expect(await second.square(7)).toBe(49);
    expect(PerConsumer.calls).toBe(1);
    const dict = app.get(RingRedisService).getOrThrow('default');
    expect(await dict.has(app.get(RingCacheService).keyFor(PerConsumer, 'square', 7))).toBe(true);
  });

  it('warns at boot that a transient provider injected into a request-scoped one is uncached there', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const app = await boot(
      { groups: { default: ringNodes(ring.fleet.servers) }, defaults: fast },
      { providers: [PerConsumer, FirstConsumer, RequestConsumer] },
    );
    expect(warn.mock.calls.map(([m]) => String(m))).toEqual([
      'PerConsumer is transient and injected into request-scoped RequestConsumer: its @RingCached methods are called uncached there',
    ]);
    const { helper } = await app.resolve(RequestConsumer, ContextIdFactory.create());
    PerConsumer.calls = 0;
    expect(await helper.square(3)).toBe(9);
    expect(await helper.square(3)).toBe(9);
    expect(PerConsumer.calls).toBe(2);
    // The singleton consumer's instance is cached as before.
    expect(await app.get(FirstConsumer).helper.square(3)).toBe(9);
    expect(await app.get(FirstConsumer).helper.square(3)).toBe(9);
    expect(PerConsumer.calls).toBe(3);
  });

  it('warns at boot that a request-scoped provider is called uncached, and calls it through', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const app = await boot(
      { groups: { default: ringNodes(ring.fleet.servers) }, defaults: fast },
      {
        providers: [PerRequest, DependsOnPerRequest, Throttled],
      },
    );
    const said = warn.mock.calls.map(([m]) => String(m));
    expect(said).toContain(
      'PerRequest is request-scoped: its @RingCached methods are called uncached',
    );
    expect(said).toContain(
      'DependsOnPerRequest is request-scoped: its @RingCached methods are called uncached',
    );
    // A singleton next to them is not warned about.
    expect(said.filter((m) => m.includes('Throttled'))).toEqual([]);

    const contextId = ContextIdFactory.create();
    const perRequest = await app.resolve(PerRequest, contextId);
    const outer = await app.resolve(DependsOnPerRequest, contextId);
    expect(await perRequest.load(2)).toBe(4);
    expect(await perRequest.load(2)).toBe(4);
    expect(await outer.total(2)).toBe(6);
    expect(await outer.total(2)).toBe(6);
    expect(perRequest.calls).toBe(2);
    expect(outer.calls).toBe(2);
    // Nothing was written to the ring.
    const dict = app.get(RingRedisService).getOrThrow('default');
    const cache = app.get(RingCacheService);
    expect(await dict.has(cache.keyFor(PerRequest, 'load', 2))).toBe(false);
    expect(await dict.has(cache.keyFor(DependsOnPerRequest, 'total', 2))).toBe(false);
    expect(await dict.size()).toBe(0);
  });
});
