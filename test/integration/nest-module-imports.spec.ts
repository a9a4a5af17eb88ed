import 'reflect-metadata';
import { Injectable, Logger, Module } from '@nestjs/common';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RingCacheService, RingCached, RingRedisModule } from '../../lib/index.js';
import { fast, useNestApps } from '../helpers/nest-apps.js';
import { redisCommand } from '../helpers/redis-command.js';
import { ringNodes } from '../helpers/redis-fleet.js';

/**
 * RingRedisModule imported more than once in one app: the app is told that each import builds
 * its own rings, and @RingCached and RingCacheService find each group in the import that
 * declares it (the first, for a group more than one declares).
 */

const nest = useNestApps({ logged: true });

afterEach(() => {
  vi.restoreAllMocks();
});

// ------------------------------------------------------------------ consumers of the tests

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

describe('RingRedisModule imported twice in one app', () => {
  it('warns once that each import builds its own rings', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const options = { groups: { default: nest.nodes(0, 2) }, defaults: fast };
    @Module({ imports: [RingRedisModule.forRoot(options)] })
    class FeatureModule {}
    await nest.boot({ imports: [RingRedisModule.forRoot(options), FeatureModule] });
    expect(warn.mock.calls.map(([m]) => String(m))).toEqual([
      'RingRedisModule.forRoot/forRootAsync is imported 2 times in this app: each import builds its own rings and connections; import it once, in the root module (isGlobal: true)',
      'groups "default" are declared by more than one of those imports: @RingCached and RingCacheService use the first import\'s',
    ]);
  });

  it('@RingCached finds each group in the import that declares it, and evicts across them', async () => {
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const [one, two] = nest.fleet.servers;
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
    const app = await nest.boot({ imports: [FeatureA, FeatureB] });
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
    const [one, two] = nest.fleet.servers;
    @Module({
      imports: [RingRedisModule.forRoot({ groups: { default: ringNodes([one]) }, defaults: fast })],
    })
    class FeatureA {}
    @Module({
      imports: [RingRedisModule.forRoot({ groups: { default: ringNodes([two]) }, defaults: fast })],
      providers: [InFeatureA],
    })
    class FeatureB {}
    const app = await nest.boot({ imports: [FeatureA, FeatureB] });
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
    const options = { groups: { default: nest.nodes(0, 2) }, defaults: fast };
    await nest.boot({ imports: [RingRedisModule.forRoot(options)] }, { logged: false });
    await nest.boot({ imports: [RingRedisModule.forRoot(options)] }, { logged: false });
    expect(warn).not.toHaveBeenCalled();
  });
});
