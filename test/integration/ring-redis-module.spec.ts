import 'reflect-metadata';
import { Injectable, Logger, Module, type INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  getRingDictToken,
  InjectRingDict,
  RingConfigError,
  RingDict,
  RingRedisModule,
  RingRedisService,
  type RingNodesConfig,
  type RingRedisModuleOptions,
} from '../../lib/index.js';
import { runNodeScript } from '../helpers/node-script.js';
import {
  redisCommand,
  resetFleet,
  startRedisServers,
  type RedisFleet,
} from '../helpers/redis-servers.js';

let fleet: RedisFleet;
const contexts: INestApplicationContext[] = [];

function nodes(from = 0, to = 3): RingNodesConfig {
  return Object.fromEntries(
    fleet.servers
      .slice(from, to)
      .map((s, i) => [`node${from + i}`, { capacity: 1, connection: s.url }]),
  );
}

// No test here hangs a node, so a generous timeout only guards against a loaded machine.
const fast = { commandTimeout: 1000, heartbeatInterval: 100 };

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
class AppConfig {
  /** Stands for @nestjs/config: resolved asynchronously. */
  async ringOptions(): Promise<RingRedisModuleOptions> {
    await new Promise((resolve) => setTimeout(resolve, 10));
    return {
      groups: { test: nodes(), sessions: nodes(0, 2) },
      defaults: { ...fast, prefix: 'async:' },
    };
  }
}

@Module({ providers: [AppConfig], exports: [AppConfig] })
class AppConfigModule {}

@Injectable()
class RingOptionsFactory {
  constructor(private readonly config: AppConfig) {}
  createRingRedisOptions(): Promise<RingRedisModuleOptions> {
    return this.config.ringOptions();
  }
}

async function compile(
  imports: NonNullable<Parameters<typeof Test.createTestingModule>[0]['imports']>,
  providers: NonNullable<Parameters<typeof Test.createTestingModule>[0]['providers']> = [],
) {
  const ref = await Test.createTestingModule({ imports, providers }).compile();
  const app = ref.createNestApplication({ logger: false });
  await app.init();
  contexts.push(app);
  return app;
}

beforeAll(async () => {
  fleet = await startRedisServers(3);
});

afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(contexts.splice(0).map((c) => c.close()));
  await resetFleet(fleet);
});

afterAll(async () => {
  await fleet?.stop();
});

describe('RingRedisModule', () => {
  it('forRoot: each group is a RingDict provider; two groups are kept apart', async () => {
    const app = await compile(
      [
        RingRedisModule.forRoot({
          groups: { test: nodes(), sessions: nodes(0, 2) },
          defaults: fast,
          groupOptions: { sessions: { prefix: 's:' } },
        }),
      ],
      [TwoGroups],
    );
    const { test, sessions } = app.get(TwoGroups);
    expect(test).toBeInstanceOf(RingDict);
    expect(test).toBe(app.get(getRingDictToken('test')));
    expect(test.name).toBe('test');
    await test.set('k', 'in test');
    expect(await test.get('k')).toBe('in test');
    expect(await sessions.get('k')).toBeUndefined();
    expect(sessions.getEntry('k')).toBe('s:k');
    expect(sessions.totalHash.nodes).toEqual(['node0', 'node1']);
    const service = app.get(RingRedisService);
    expect(service.names()).toEqual(['test', 'sessions']);
    expect(service.get('test')).toBe(test);
    expect(() => service.getOrThrow('nope')).toThrow(
      /no group "nope"; configured groups: "test", "sessions"/,
    );
  });

  it("@InjectRingDict() defaults to the 'default' group", async () => {
    const app = await compile(
      [RingRedisModule.forRoot({ groups: { default: nodes() }, defaults: fast })],
      [DefaultUser],
    );
    expect(app.get(DefaultUser).dict.name).toBe('default');
  });

  it('forRootAsync with an async factory reading an injected provider', async () => {
    const app = await compile(
      [
        RingRedisModule.forRootAsync({
          imports: [AppConfigModule],
          inject: [AppConfig],
          useFactory: (config: AppConfig) => config.ringOptions(),
          groups: ['test', 'sessions'],
        }),
      ],
      [TwoGroups],
    );
    const { test } = app.get(TwoGroups);
    expect(test.getEntry('x')).toBe('async:x');
    await test.set('x', 1);
    expect(await test.get('x')).toBe(1);
  });

  it('forRootAsync with useClass', async () => {
    const app = await compile(
      [
        RingRedisModule.forRootAsync({
          imports: [AppConfigModule],
          useClass: RingOptionsFactory,
          groups: ['test', 'sessions'],
        }),
      ],
      [TwoGroups],
    );
    expect(app.get(TwoGroups).sessions.totalHash.size).toBe(2);
  });

  it('isGlobal: a feature module injects a dict without importing the module', async () => {
    @Module({ providers: [DefaultUser], exports: [DefaultUser] })
    class FeatureModule {}
    const app = await compile([
      RingRedisModule.forRoot({ groups: { default: nodes() }, defaults: fast, isGlobal: true }),
      FeatureModule,
    ]);
    expect(app.get(DefaultUser).dict).toBeInstanceOf(RingDict);
  });

  it('boot error: a group declared in `groups` but absent from the resolved config names both lists', async () => {
    await expect(
      compile([
        RingRedisModule.forRootAsync({
          useFactory: () => ({ groups: { test: nodes() }, defaults: fast }),
          groups: ['test', 'sessions'],
        }),
      ]),
    ).rejects.toThrow(
      /"sessions" are declared in `groups` \("test", "sessions"\) but missing from the resolved configuration \("test"\)/,
    );
  });

  it('boot error: a core RingConfigError names group, node and field', async () => {
    const bad = {
      test: { ...nodes(), broken: { capacity: -1, connection: 'redis://127.0.0.1:1' } },
    };
    const attempt = compile([RingRedisModule.forRoot({ groups: bad, defaults: fast })]);
    await expect(attempt).rejects.toBeInstanceOf(RingConfigError);
    await expect(
      compile([RingRedisModule.forRoot({ groups: bad, defaults: fast })]),
    ).rejects.toThrow(/group "test", node "broken": capacity must be a finite number > 0/);
    await expect(
      compile([
        RingRedisModule.forRoot({ groups: { test: nodes() }, defaults: { ...fast, expire: -1 } }),
      ]),
    ).rejects.toThrow(/group "test": expire/);
  });

  it("boot error: @InjectRingDict('x') for an undeclared group", async () => {
    @Injectable()
    class WantsX {
      constructor(@InjectRingDict('x') readonly dict: RingDict) {}
    }
    await expect(
      compile([RingRedisModule.forRoot({ groups: { test: nodes() }, defaults: fast })], [WantsX]),
    ).rejects.toThrow(/@InjectRingDict\('x'\): no group "x" is declared; declared groups: "test"/);
    // Apps that do not inject it are not affected by another class asking for 'x'.
    const app = await compile([
      RingRedisModule.forRoot({ groups: { test: nodes() }, defaults: fast }),
    ]);
    expect(app.get(RingRedisService).names()).toEqual(['test']);
  });

  it("logs ejection and rediscovery once each, with context 'RingRedis'", async () => {
    const lines: [string | undefined, string, string][] = [];
    for (const level of ['log', 'warn', 'error'] as const) {
      vi.spyOn(Logger.prototype, level).mockImplementation(function (
        this: Logger,
        message: unknown,
      ) {
        lines.push([(this as unknown as { context?: string }).context, level, String(message)]);
      });
    }
    // A group name of its own: apps whose boot failed in earlier tests may still be connected.
    const app = await compile([
      RingRedisModule.forRoot({ groups: { logged: nodes() }, defaults: fast }),
    ]);
    const dict = app.get(RingRedisService).getOrThrow('logged');
    await fleet.servers[1].kill();
    for (let i = 0; i < 50; i++) await dict.get(`k${i}`);
    await fleet.servers[1].restart();
    for (let i = 0; i < 100 && dict.aliveHash.size < 3; i++)
      await new Promise((r) => setTimeout(r, 20));
    const ring = lines.filter(
      ([context, , m]) => context === 'RingRedis' && m.includes('"logged"'),
    );
    expect(ring.filter(([, l, m]) => l === 'warn' && /node "node1" ejected/.test(m))).toHaveLength(
      1,
    );
    expect(
      ring.filter(([, l, m]) => l === 'log' && /node "node1" rediscovered/.test(m)),
    ).toHaveLength(1);
  });

  it('app.close() closes every connection', async () => {
    const clients = async () =>
      Promise.all(
        fleet.servers.map(
          async (s) => (await redisCommand(s.port, 'CLIENT', 'LIST')).split('\n').length,
        ),
      );
    const before = await clients();
    const app = await compile([
      RingRedisModule.forRoot({ groups: { test: nodes() }, defaults: fast }),
    ]);
    const dict = app.get(RingRedisService).getOrThrow('test');
    for (let i = 0; i < 30; i++) await dict.set(`k${i}`, i);
    const during = await clients();
    expect(during).toEqual(before.map((n) => n + 1));
    await app.close();
    contexts.splice(contexts.indexOf(app), 1);
    expect(await clients()).toEqual(before);
  });

  it('a process running the app exits by itself after app.close()', async () => {
    const lib = new URL('../../.run/lib/index.js', import.meta.url).href;
    const script = `
      import 'reflect-metadata';
      import { Module } from '@nestjs/common';
            import { RingRedisModule, RingRedisService } from ${JSON.stringify(lib)};
      class AppModule {}
      Module({ imports: [RingRedisModule.forRoot({ groups: { test: ${JSON.stringify(nodes())} } })] })(AppModule);
      const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
      const dict = app.get(RingRedisService).getOrThrow('test');
      await dict.set('child', 42);
      console.log(await dict.get('child'));
      await app.close();
    `;
    const { code, stdout: out } = await runNodeScript(script);
    expect(code).toBe(0);
    expect(out.trim()).toBe('42');
  });

  it('two apps in one process with different configs do not share state', async () => {
    const a = await compile([
      RingRedisModule.forRoot({
        groups: { test: nodes(0, 1) },
        defaults: { ...fast, prefix: 'a:' },
      }),
    ]);
    const b = await compile([
      RingRedisModule.forRoot({
        groups: { test: nodes(1, 3) },
        defaults: { ...fast, prefix: 'b:' },
      }),
    ]);
    const da = a.get(RingRedisService).getOrThrow('test');
    const db = b.get(RingRedisService).getOrThrow('test');
    expect(da).not.toBe(db);
    expect(da.totalHash.nodes).toEqual(['node0']);
    expect(db.totalHash.nodes).toEqual(['node1', 'node2']);
    await da.set('k', 'a');
    expect(await db.get('k')).toBeUndefined();
  });

  it('a user test can replace a dict with overrideProvider', async () => {
    const fake = { get: async () => 'from fake' };
    const ref = await Test.createTestingModule({
      imports: [RingRedisModule.forRoot({ groups: { default: nodes() }, defaults: fast })],
      providers: [DefaultUser],
    })
      .overrideProvider(getRingDictToken('default'))
      .useValue(fake)
      .compile();
    contexts.push(ref);
    expect(await ref.get(DefaultUser).dict.get('anything')).toBe('from fake');
  });
});
