import 'reflect-metadata';
import { Injectable, Logger, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  getRingDictToken,
  InjectRingDict,
  RingCacheService,
  RingCached,
  RingConfigError,
  RingDict,
  RingRedisModule,
  RingRedisService,
  type RingRedisModuleOptions,
  type RingRedisOptionsFactory,
} from '../../lib/index.js';
import { fast, useNestApps } from '../helpers/nest-apps.js';
import { redisCommand } from '../helpers/redis-command.js';
import { ringNodes } from '../helpers/redis-fleet.js';
import { until } from '../helpers/wait.js';

/**
 * RingRedisModule: forRoot and forRootAsync make each group a RingDict provider, an app that
 * imports the module more than once is told what that does, and apps in one process stay
 * apart (a user test can replace a dict).
 */

const nest = useNestApps({ logged: true });

afterEach(() => {
  vi.restoreAllMocks();
});

// ------------------------------------------------------------------ consumers of the tests

@Injectable()
class TwoGroups {
  constructor(
    @InjectRingDict('test') readonly test: RingDict,
    @InjectRingDict('sessions') readonly sessions: RingDict,
  ) {}
}

@Injectable()
class DefaultUser {
  constructor(@InjectRingDict() readonly dict: RingDict) {}
}

@Injectable()
class PropertyUser {
  @InjectRingDict('test') readonly dict!: RingDict;
}

/** Stands for @nestjs/config's ConfigService: values arrive asynchronously. */
@Injectable()
class AppConfig {
  readonly reads: string[] = [];
  async get<T>(key: string, value: () => T): Promise<T> {
    this.reads.push(key);
    await new Promise((resolve) => setTimeout(resolve, 10));
    return value();
  }
}

@Module({ providers: [AppConfig], exports: [AppConfig] })
class AppConfigModule {}

@Injectable()
class RingOptions implements RingRedisOptionsFactory {
  constructor(private readonly config: AppConfig) {}
  async createRingRedisOptions(): Promise<RingRedisModuleOptions> {
    return {
      groups: await this.config.get('RING_GROUPS', () => ({
        test: nest.nodes(),
        sessions: nest.nodes(0, 2),
      })),
      defaults: { ...fast, prefix: 'class:' },
    };
  }
}

@Module({ imports: [AppConfigModule], providers: [RingOptions], exports: [RingOptions] })
class RingOptionsModule {}

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

describe('RingRedisModule.forRoot', () => {
  it('makes each group a RingDict provider; two groups injected into one service stay apart', async () => {
    const app = await nest.boot({
      imports: [
        RingRedisModule.forRoot({
          groups: { test: nest.nodes(), sessions: nest.nodes(0, 2) },
          defaults: { ...fast, prefix: 'app:', expire: 60 },
          groupOptions: { sessions: { prefix: 'sess:' } },
        }),
      ],
      providers: [TwoGroups, PropertyUser],
    });
    const { test, sessions } = app.get(TwoGroups);
    expect(test).toBeInstanceOf(RingDict);
    expect(sessions).toBeInstanceOf(RingDict);
    expect(test).not.toBe(sessions);
    expect(app.get(getRingDictToken('test'))).toBe(test);
    expect(app.get(PropertyUser).dict).toBe(test);
    expect([test.name, sessions.name]).toEqual(['test', 'sessions']);
    expect(test.totalHash.nodes).toEqual(['node0', 'node1', 'node2']);
    expect(sessions.totalHash.nodes).toEqual(['node0', 'node1']);

    // defaults apply to every group, groupOptions override them for one.
    expect(test.getEntry('k')).toBe('app:k');
    expect(sessions.getEntry('k')).toBe('sess:k');
    expect(test.expire).toBe(60);
    expect(sessions.expire).toBe(60);

    await test.set('k', 'only in test');
    expect(await test.get('k')).toBe('only in test');
    expect(await sessions.get('k')).toBeUndefined();
    expect(await sessions.has('k')).toBe(false);
    await sessions.set('s', { user: 1 });
    expect(await test.has('s')).toBe(false);
    expect(await test.size()).toBe(1);
    expect(await sessions.size()).toBe(1);
    // The expire default reached Redis.
    const ttl = Number(await test.visitRedis('ttl', 'k'));
    expect(ttl).toBeGreaterThan(50);
    expect(ttl).toBeLessThanOrEqual(60);

    const rings = app.get(RingRedisService);
    expect(rings.names()).toEqual(['test', 'sessions']);
    expect(rings.get('test')).toBe(test);
    expect(rings.getOrThrow('sessions')).toBe(sessions);
    // Typed as DESIGN writes it (`npm run typecheck` checks this line): RingDict<V>.
    const typed: RingDict<{ user: number }> = rings.getOrThrow<{ user: number }>('sessions');
    expect((await typed.get('s'))?.user).toBe(1);
    expect(rings.get('nope')).toBeUndefined();
    expect(() => rings.getOrThrow('nope')).toThrow(RingConfigError);
    expect(() => rings.getOrThrow('nope')).toThrow(
      'no group "nope"; configured groups: "test", "sessions"',
    );
  });

  it("@InjectRingDict() injects the 'default' group", async () => {
    const app = await nest.boot({
      imports: [RingRedisModule.forRoot({ groups: { default: nest.nodes() }, defaults: fast })],
      providers: [DefaultUser],
    });
    const { dict } = app.get(DefaultUser);
    expect(dict.name).toBe('default');
    expect(dict).toBe(app.get(getRingDictToken()));
    await dict.set('d', 1);
    expect(await dict.get('d')).toBe(1);
  });

  it('isGlobal: a feature module injects a dict without importing RingRedisModule', async () => {
    @Module({ providers: [DefaultUser], exports: [DefaultUser] })
    class FeatureModule {}
    const app = await nest.boot({
      imports: [
        RingRedisModule.forRoot({
          groups: { default: nest.nodes() },
          defaults: fast,
          isGlobal: true,
        }),
        FeatureModule,
      ],
    });
    expect(app.get(DefaultUser).dict).toBe(app.get(RingRedisService).get('default'));

    // Without isGlobal, the same feature module cannot see it.
    @Module({ providers: [DefaultUser] })
    class IsolatedFeatureModule {}
    await expect(
      nest.boot({
        imports: [
          RingRedisModule.forRoot({ groups: { default: nest.nodes() }, defaults: fast }),
          IsolatedFeatureModule,
        ],
      }),
    ).rejects.toThrow(/DefaultUser/);
  });
});

describe('RingRedisModule: replicas', () => {
  it("passes a group's `replicas` to its dict, and refuses more than the group's nodes at boot", async () => {
    const app = await nest.boot({
      imports: [
        RingRedisModule.forRoot({
          groups: { test: nest.nodes(), sessions: nest.nodes(0, 2) },
          defaults: fast,
          groupOptions: { test: { replicas: 2, prefix: 'repl:' } },
        }),
      ],
      providers: [TwoGroups],
    });
    const { test, sessions } = app.get(TwoGroups);
    await test.set('k', 1);
    const copies = test.nodesOf('k');
    expect(copies).toEqual(test.totalHash.locateAll(test.getEntry('k'), 2));
    for (const [i, server] of nest.fleet.servers.entries()) {
      const held = await redisCommand(server.port, 'EXISTS', 'repl:k');
      expect(held, `node${i}`).toBe(copies.includes(`node${i}`) ? '1' : '0');
    }
    expect(sessions.nodesOf('k')).toHaveLength(1);
    await expect(
      nest.boot({
        imports: [
          RingRedisModule.forRoot({
            groups: { sessions: nest.nodes(0, 2) },
            defaults: { ...fast, replicas: 3 },
          }),
        ],
      }),
    ).rejects.toThrow(
      /group "sessions": replicas: expected an integer from 1 to the node count \(2\), got 3/,
    );
  });
});

describe('RingRedisModule.forRootAsync', () => {
  it('useFactory: an async factory reads the config from an injected provider', async () => {
    const app = await nest.boot({
      imports: [
        RingRedisModule.forRootAsync({
          imports: [AppConfigModule],
          inject: [AppConfig],
          useFactory: async (config: AppConfig): Promise<RingRedisModuleOptions> => ({
            groups: await config.get('RING_GROUPS', () => ({
              test: nest.nodes(),
              sessions: nest.nodes(1, 3),
            })),
            defaults: await config.get('RING_DEFAULTS', () => ({ ...fast, prefix: 'async:' })),
            groupOptions: { sessions: { prefix: 'async-s:' } },
          }),
          groups: ['test', 'sessions'],
        }),
      ],
      providers: [TwoGroups],
    });
    expect(app.get(AppConfig).reads).toEqual(['RING_GROUPS', 'RING_DEFAULTS']);
    const { test, sessions } = app.get(TwoGroups);
    expect(test.getEntry('x')).toBe('async:x');
    expect(sessions.getEntry('x')).toBe('async-s:x');
    expect(sessions.totalHash.nodes).toEqual(['node1', 'node2']);
    await test.set('x', 1);
    expect(await test.get('x')).toBe(1);
    expect(await sessions.get('x')).toBeUndefined();
  });

  it('useClass: Nest builds the options factory and calls createRingRedisOptions()', async () => {
    const app = await nest.boot({
      imports: [
        RingRedisModule.forRootAsync({
          imports: [AppConfigModule],
          useClass: RingOptions,
          groups: ['test', 'sessions'],
        }),
      ],
      providers: [TwoGroups],
    });
    const { test, sessions } = app.get(TwoGroups);
    expect(test.getEntry('x')).toBe('class:x');
    expect(sessions.totalHash.size).toBe(2);
    await sessions.set('y', 'yes');
    expect(await sessions.get('y')).toBe('yes');
  });

  it('useExisting: reuses an options factory exported by an imported module', async () => {
    const app = await nest.boot({
      imports: [
        RingRedisModule.forRootAsync({
          imports: [RingOptionsModule],
          useExisting: RingOptions,
          groups: ['test'],
        }),
      ],
      providers: [PropertyUser],
    });
    expect(app.get(PropertyUser).dict.getEntry('x')).toBe('class:x');
  });

  it('a configured group that is not declared is reachable through RingRedisService', async () => {
    const app = await nest.boot({
      imports: [
        RingRedisModule.forRootAsync({
          useFactory: () => ({
            groups: { test: nest.nodes(), extra: nest.nodes(0, 1) },
            defaults: fast,
          }),
          groups: ['test'],
        }),
      ],
    });
    const rings = app.get(RingRedisService);
    expect(rings.names()).toEqual(['test', 'extra']);
    const extra = rings.getOrThrow('extra');
    await extra.set('e', 1);
    expect(await extra.get('e')).toBe(1);
    // It has no provider of its own: only declared groups do.
    expect(() => app.get(getRingDictToken('extra'))).toThrow();
  });

  it('declares the group "default" when `groups` is left out, so @InjectRingDict() works', async () => {
    const app = await nest.boot({
      imports: [
        RingRedisModule.forRootAsync({
          useFactory: () => ({ groups: { default: nest.nodes() }, defaults: fast }),
        }),
      ],
      providers: [DefaultUser],
    });
    const { dict } = app.get(DefaultUser);
    expect(dict).toBe(app.get(RingRedisService).getOrThrow('default'));
    await dict.set('d', 1);
    expect(await dict.get('d')).toBe(1);
  });

  it('without `groups` and without a "default" group: a boot error that says what to write', async () => {
    await expect(
      nest.boot({
        imports: [
          RingRedisModule.forRootAsync({
            useFactory: () => ({ groups: { sessions: nest.nodes() }, defaults: fast }),
          }),
        ],
      }),
    ).rejects.toThrow(
      /group\(s\) "default" are declared in `groups` \("default"\) but missing from the resolved configuration \("sessions"\); forRootAsync's `groups` is \["default"\] when left out: list the groups you configure, or \[\] for none/,
    );
    // `groups: []` declares none: the groups are reached through RingRedisService.
    const app = await nest.boot({
      imports: [
        RingRedisModule.forRootAsync({
          useFactory: () => ({ groups: { sessions: nest.nodes() }, defaults: fast }),
          groups: [],
        }),
      ],
    });
    expect(app.get(RingRedisService).names()).toEqual(['sessions']);
    expect(() => app.get(getRingDictToken())).toThrow();
  });

  it('rejects a call without useFactory, useClass or useExisting, and a malformed groups list', () => {
    expect(() => RingRedisModule.forRootAsync({ groups: ['test'] })).toThrow(
      /give one of useFactory, useClass or useExisting/,
    );
    expect(() =>
      RingRedisModule.forRootAsync({
        useFactory: () => ({ groups: {} }),
        groups: 'test' as unknown as string[],
      }),
    ).toThrow(/groups must be an array of group names, got "test"/);
  });
});

describe('RingRedisModule imported twice in one app', () => {
  it('warns once that each import builds its own rings', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const options = { groups: { default: nest.nodes(0, 2) }, defaults: fast };
    @Module({ imports: [RingRedisModule.forRoot(options)] })
    class FeatureModule {}
    const ref = await Test.createTestingModule({
      imports: [RingRedisModule.forRoot(options), FeatureModule],
    }).compile();
    const app = ref.createNestApplication({ logger: false });
    nest.track(app);
    await app.init();
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
    const ref = await Test.createTestingModule({ imports: [FeatureA, FeatureB] }).compile();
    const app = ref.createNestApplication({ logger: false });
    nest.track(app);
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
    const ref = await Test.createTestingModule({ imports: [FeatureA, FeatureB] }).compile();
    const app = ref.createNestApplication({ logger: false });
    nest.track(app);
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
    const options = { groups: { default: nest.nodes(0, 2) }, defaults: fast };
    await nest.boot({ imports: [RingRedisModule.forRoot(options)] }, { logged: false });
    await nest.boot({ imports: [RingRedisModule.forRoot(options)] }, { logged: false });
    expect(warn).not.toHaveBeenCalled();
  });
});

describe('isolation and testing', () => {
  it('two apps in one process with different configs do not share state', async () => {
    const a = await nest.boot({
      imports: [
        RingRedisModule.forRoot({
          groups: { test: nest.nodes(0, 2) },
          defaults: { ...fast, prefix: 'a:' },
        }),
      ],
      providers: [PropertyUser],
    });
    const b = await nest.boot({
      imports: [
        RingRedisModule.forRoot({
          groups: { test: nest.nodes(2, 3) },
          defaults: { ...fast, prefix: 'b:' },
        }),
      ],
      providers: [PropertyUser],
    });
    const da = a.get(PropertyUser).dict;
    const db = b.get(PropertyUser).dict;
    expect(a.get(RingRedisService)).not.toBe(b.get(RingRedisService));
    expect(da).not.toBe(db);
    expect(da.totalHash.nodes).toEqual(['node0', 'node1']);
    expect(db.totalHash.nodes).toEqual(['node2']);
    await da.set('k', 'from a');
    await db.set('k', 'from b');
    expect(await da.get('k')).toBe('from a');
    expect(await db.get('k')).toBe('from b');

    // A's node dies: only A sees it.
    await nest.fleet.servers[0].kill();
    await until(() => da.aliveHash.size === 1);
    expect(db.nodeStates().every((s) => s.alive && s.ejections === 0)).toBe(true);
    expect(a.get(RingRedisService).recentEvents('test')).toHaveLength(1);
    expect(b.get(RingRedisService).recentEvents('test')).toHaveLength(0);

    // Closing A leaves B working.
    await nest.closeNow(a);
    expect(await db.get('k')).toBe('from b');
  });

  it('a user test replaces a dict with overrideProvider(getRingDictToken(name))', async () => {
    const store = new Map<string, unknown>([['greeting', 'from the fake']]);
    const fake = {
      get: async (key: string) => store.get(key),
      set: async (key: string, value: unknown) => void store.set(key, value),
    };
    @Injectable()
    class Greeter {
      constructor(@InjectRingDict('test') private readonly dict: RingDict<string>) {}
      async greet(): Promise<string | undefined> {
        return this.dict.get('greeting');
      }
    }
    const app = await nest.boot(
      {
        imports: [RingRedisModule.forRoot({ groups: { test: nest.nodes() }, defaults: fast })],
        providers: [Greeter],
      },
      { configure: (builder) => builder.overrideProvider(getRingDictToken('test')).useValue(fake) },
    );
    expect(await app.get(Greeter).greet()).toBe('from the fake');
    expect(app.get(getRingDictToken('test'))).toBe(fake);
  });
});
