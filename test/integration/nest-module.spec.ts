import 'reflect-metadata';
import {
  Injectable,
  Module,
  type INestApplication,
  type LoggerService,
  type ModuleMetadata,
} from '@nestjs/common';
import { Test, type TestingModuleBuilder } from '@nestjs/testing';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  getRingDictToken,
  InjectRingDict,
  RingConfigError,
  RingDict,
  RingRedisModule,
  RingRedisService,
  type RingGroupEvent,
  type RingNodesConfig,
  type RingRedisModuleOptions,
  type RingRedisOptionsFactory,
} from '../../lib/index.js';
import { runNodeScript } from '../helpers/node-script.js';
import {
  redisCommand,
  resetFleet,
  ringNodes,
  startRedisServers,
  type RedisFleet,
  type RedisServer,
} from '../helpers/redis-servers.js';
import { until as waitUntil } from '../helpers/wait.js';

// Kills close the socket at once, so only a hung node would wait for commandTimeout.
const fast = { heartbeatInterval: 100, commandTimeout: 300 };

let fleet: RedisFleet;
/** Fleets started by one test, stopped after it whatever happens. */
const extraFleets: RedisFleet[] = [];
const apps: INestApplication[] = [];

/** Every line the apps log, with its level and context. */
class CaptureLogger implements LoggerService {
  readonly lines: { level: string; message: string; context?: string }[] = [];
  log(message: unknown, ...params: unknown[]): void {
    this.push('log', message, params);
  }
  warn(message: unknown, ...params: unknown[]): void {
    this.push('warn', message, params);
  }
  error(message: unknown, ...params: unknown[]): void {
    this.push('error', message, params);
  }
  debug(message: unknown, ...params: unknown[]): void {
    this.push('debug', message, params);
  }
  verbose(message: unknown, ...params: unknown[]): void {
    this.push('verbose', message, params);
  }
  /** Lines of context 'RingRedis' that mention group `group`. */
  ring(group: string): { level: string; message: string }[] {
    return this.lines.filter((l) => l.context === 'RingRedis' && l.message.includes(`"${group}"`));
  }
  private push(level: string, message: unknown, params: unknown[]): void {
    // Nest's Logger passes its context as the last parameter.
    const context = params.at(-1);
    this.lines.push({
      level,
      message: String(message),
      context: typeof context === 'string' ? context : undefined,
    });
  }
}

let logs: CaptureLogger;

function nodes(from = 0, to = 3): RingNodesConfig {
  return ringNodes(fleet.servers.slice(from, to), from);
}

async function boot(
  metadata: ModuleMetadata,
  configure: (builder: TestingModuleBuilder) => TestingModuleBuilder = (b) => b,
): Promise<INestApplication> {
  const ref = await configure(Test.createTestingModule(metadata).setLogger(logs)).compile();
  const app = ref.createNestApplication();
  apps.push(app);
  await app.init();
  return app;
}

async function closeApp(app: INestApplication): Promise<void> {
  apps.splice(apps.indexOf(app), 1);
  await app.close();
}

/** Generous: a loaded machine may take seconds to restart a server or answer a heartbeat. */
async function until(condition: () => boolean | Promise<boolean>): Promise<void> {
  await waitUntil(condition, 8000);
}

beforeAll(async () => {
  fleet = await startRedisServers(3);
});

beforeEach(() => {
  logs = new CaptureLogger();
});

afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
  await Promise.all(extraFleets.splice(0).map((f) => f.stop()));
  await resetFleet(fleet);
});

afterAll(async () => {
  await fleet?.stop();
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
        test: nodes(),
        sessions: nodes(0, 2),
      })),
      defaults: { ...fast, prefix: 'class:' },
    };
  }
}

@Module({ imports: [AppConfigModule], providers: [RingOptions], exports: [RingOptions] })
class RingOptionsModule {}

// ------------------------------------------------------------------------------- the tests

describe('RingRedisModule.forRoot', () => {
  it('makes each group a RingDict provider; two groups injected into one service stay apart', async () => {
    const app = await boot({
      imports: [
        RingRedisModule.forRoot({
          groups: { test: nodes(), sessions: nodes(0, 2) },
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
    const app = await boot({
      imports: [RingRedisModule.forRoot({ groups: { default: nodes() }, defaults: fast })],
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
    const app = await boot({
      imports: [
        RingRedisModule.forRoot({ groups: { default: nodes() }, defaults: fast, isGlobal: true }),
        FeatureModule,
      ],
    });
    expect(app.get(DefaultUser).dict).toBe(app.get(RingRedisService).get('default'));

    // Without isGlobal, the same feature module cannot see it.
    @Module({ providers: [DefaultUser] })
    class IsolatedFeatureModule {}
    await expect(
      boot({
        imports: [
          RingRedisModule.forRoot({ groups: { default: nodes() }, defaults: fast }),
          IsolatedFeatureModule,
        ],
      }),
    ).rejects.toThrow(/DefaultUser/);
  });
});

describe('RingRedisModule.forRootAsync', () => {
  it('useFactory: an async factory reads the config from an injected provider', async () => {
    const app = await boot({
      imports: [
        RingRedisModule.forRootAsync({
          imports: [AppConfigModule],
          inject: [AppConfig],
          useFactory: async (config: AppConfig): Promise<RingRedisModuleOptions> => ({
            groups: await config.get('RING_GROUPS', () => ({
              test: nodes(),
              sessions: nodes(1, 3),
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
    const app = await boot({
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
    const app = await boot({
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
    const app = await boot({
      imports: [
        RingRedisModule.forRootAsync({
          useFactory: () => ({ groups: { test: nodes(), extra: nodes(0, 1) }, defaults: fast }),
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

describe('boot errors name what is wrong', () => {
  it('a group declared in `groups` but missing from the resolved config names both lists', async () => {
    const attempt = boot({
      imports: [
        RingRedisModule.forRootAsync({
          useFactory: async () => ({ groups: { test: nodes(), cache: nodes() }, defaults: fast }),
          groups: ['test', 'sessions'],
        }),
      ],
    });
    await expect(attempt).rejects.toBeInstanceOf(RingConfigError);
    await expect(attempt).rejects.toThrow(
      'group(s) "sessions" are declared in `groups` ("test", "sessions") but missing from the resolved configuration ("test", "cache")',
    );
  });

  it('a core RingConfigError surfaces at boot naming group, node and field', async () => {
    const bad = { ...nodes(), broken: { capacity: -1, connection: 'redis://127.0.0.1:1' } };
    const capacity = boot({
      imports: [RingRedisModule.forRoot({ groups: { ok: nodes(), test: bad }, defaults: fast })],
    });
    await expect(capacity).rejects.toBeInstanceOf(RingConfigError);
    await expect(capacity).rejects.toThrow(/group "test", node "broken": capacity/);

    await expect(
      boot({
        imports: [
          RingRedisModule.forRoot({
            groups: { test: nodes() },
            defaults: { ...fast, prefx: 'typo' } as RingRedisModuleOptions['defaults'],
          }),
        ],
      }),
    ).rejects.toThrow(/group "test": unknown option "prefx"/);

    await expect(
      boot({
        imports: [
          RingRedisModule.forRoot({
            groups: { test: nodes() },
            defaults: fast,
            groupOptions: { test: { expire: -5 } },
          }),
        ],
      }),
    ).rejects.toThrow(/group "test": expire/);

    await expect(
      boot({
        imports: [
          RingRedisModule.forRoot({
            groups: { test: nodes() },
            defaults: { ...fast, lazyConnect: 'yes' as unknown as boolean },
          }),
        ],
      }),
    ).rejects.toThrow(/group "test": lazyConnect: expected a boolean, got "yes"/);

    await expect(
      boot({
        imports: [
          RingRedisModule.forRoot({
            groups: { test: nodes() },
            defaults: fast,
            groupOptions: { tset: { prefix: 'x' } },
          }),
        ],
      }),
    ).rejects.toThrow(/groupOptions names group "tset", which is not configured \("test"\)/);

    await expect(
      boot({
        imports: [
          RingRedisModule.forRootAsync({
            useFactory: () => ({}) as RingRedisModuleOptions,
            groups: [],
          }),
        ],
      }),
    ).rejects.toThrow(/options.groups must be an object/);

    // A misspelt module option fails the boot instead of being ignored.
    await expect(
      boot({
        imports: [
          RingRedisModule.forRootAsync({
            useFactory: () =>
              ({
                groups: { test: nodes() },
                defaults: fast,
                groupOption: { test: { prefix: 'x' } },
              }) as RingRedisModuleOptions,
          }),
        ],
      }),
    ).rejects.toThrow(
      /RingRedisModule: unknown option "groupOption"; known options: groups, defaults, groupOptions/,
    );
    await expect(
      boot({
        imports: [
          RingRedisModule.forRoot({
            groups: { test: nodes() },
            defaults: 'fast' as unknown as RingRedisModuleOptions['defaults'],
          }),
        ],
      }),
    ).rejects.toThrow(/options.defaults must be an object, got "fast"/);
  });

  it("@InjectRingDict('x') for an undeclared group names it and the declared groups", async () => {
    @Injectable()
    class WantsX {
      constructor(@InjectRingDict('x') readonly dict: RingDict) {}
    }
    const attempt = boot({
      imports: [
        RingRedisModule.forRoot({ groups: { test: nodes(), cache: nodes() }, defaults: fast }),
      ],
      providers: [WantsX],
    });
    await expect(attempt).rejects.toBeInstanceOf(RingConfigError);
    await expect(attempt).rejects.toThrow(
      `@InjectRingDict('x'): no group "x" is declared; declared groups: "test", "cache"`,
    );

    // Another app of the same process that does not inject 'x' is not affected.
    const app = await boot({
      imports: [RingRedisModule.forRoot({ groups: { test: nodes() }, defaults: fast })],
    });
    expect(app.get(RingRedisService).names()).toEqual(['test']);
  });

  it('an undeclared group that the resolved config has: the error says to declare it', async () => {
    @Injectable()
    class WantsLate {
      constructor(@InjectRingDict('late-config') readonly dict: RingDict) {}
    }
    await expect(
      boot({
        imports: [
          RingRedisModule.forRootAsync({
            useFactory: () => ({
              groups: { test: nodes(), 'late-config': nodes(0, 1) },
              defaults: fast,
            }),
            groups: ['test'],
          }),
        ],
        providers: [WantsLate],
      }),
    ).rejects.toThrow(
      /group "late-config" is in the resolved configuration but not declared.*forRootAsync\(\{ groups: \[\.\.\.\] \}\) \(declared groups: "test"\)/,
    );
  });

  it('is robust to import order: a class defined after forRoot() was called', async () => {
    // forRoot() runs when the importing module's decorator does, which may be before the
    // classes that inject from it are defined (lazy modules, circular imports, test files).
    const ringModule = RingRedisModule.forRoot({ groups: { test: nodes() }, defaults: fast });
    @Injectable()
    class DefinedLater {
      constructor(@InjectRingDict('defined-later') readonly dict: RingDict) {}
    }
    await expect(boot({ imports: [ringModule], providers: [DefinedLater] })).rejects.toThrow(
      `@InjectRingDict('defined-later'): no group "defined-later" is declared; declared groups: "test"`,
    );
  });

  it('never shadows a group that another RingRedisModule of the app declares', async () => {
    // A global module declares 'shared'; a feature module imports its own local instance
    // with other groups. Its classes must still get the global 'shared' dict.
    @Injectable()
    class WantsShared {
      constructor(
        @InjectRingDict('shared') readonly shared: RingDict,
        @InjectRingDict('local') readonly local: RingDict,
      ) {}
    }
    @Module({
      imports: [RingRedisModule.forRoot({ groups: { local: nodes(0, 1) }, defaults: fast })],
      providers: [WantsShared],
    })
    class FeatureModule {}
    const app = await boot({
      imports: [
        RingRedisModule.forRoot({ groups: { shared: nodes() }, defaults: fast, isGlobal: true }),
        FeatureModule,
      ],
    });
    const { shared, local } = app.get(WantsShared);
    expect(shared.name).toBe('shared');
    expect(shared.totalHash.size).toBe(3);
    expect(local.name).toBe('local');
  });
});

describe('events and logging', () => {
  it("logs ejection (warn), rediscovery (log) and unavailability (error) once each, context 'RingRedis'", async () => {
    const app = await boot({
      imports: [RingRedisModule.forRoot({ groups: { logged: nodes() }, defaults: fast })],
    });
    const dict = app.get(RingRedisService).getOrThrow('logged');
    const ringLines = () => logs.ring('logged');

    await fleet.servers[1].kill();
    await until(() => dict.aliveHash.size === 2);
    // Many requests after the ejection log nothing more.
    await Promise.all(Array.from({ length: 50 }, (_, i) => dict.get(`k${i}`)));
    await fleet.servers[1].restart();
    await until(() => dict.aliveHash.size === 3);

    await Promise.all([fleet.servers[0].kill(), fleet.servers[1].kill(), fleet.servers[2].kill()]);
    await until(() => dict.aliveHash.size === 0);
    for (let i = 0; i < 20; i++) await expect(dict.get(`k${i}`)).rejects.toThrow();
    await Promise.all(fleet.servers.map((s) => s.restart()));
    await until(() => dict.aliveHash.size === 3);

    const lines = ringLines();
    const ejected = lines.filter((l) => l.message.includes('ejected'));
    const rediscovered = lines.filter((l) => l.message.includes('rediscovered'));
    const unavailable = lines.filter((l) => l.message.includes('no node is alive'));
    expect(ejected.map((l) => l.level)).toEqual(['warn', 'warn', 'warn', 'warn']);
    expect(ejected.filter((l) => l.message.includes('node "node1"'))).toHaveLength(2);
    expect(ejected[0].message).toMatch(/^group "logged": node "node1" ejected: \S/);
    expect(rediscovered.map((l) => l.level)).toEqual(['log', 'log', 'log', 'log']);
    expect(rediscovered[0].message).toMatch(/^group "logged": node "node1" rediscovered/);
    expect(unavailable.map(({ level, message }) => ({ level, message }))).toEqual([
      { level: 'error', message: 'group "logged": no node is alive' },
    ]);
    expect(lines).toHaveLength(9);
  });

  it('never logs a password, a username or a connection URL', async () => {
    const SECRET = 'log-secret-do-not-print';
    const USER = 'ring-admin-user';
    const locked = await startRedisServers(1, {
      extraArgs: [
        '--user',
        USER,
        'on',
        `>${SECRET}`,
        '~*',
        '&*',
        '+@all',
        '--user',
        'default',
        'off',
      ],
    });
    extraFleets.push(locked);
    const app = await boot({
      imports: [
        RingRedisModule.forRoot({
          groups: {
            secret: {
              node0: { capacity: 1, connection: fleet.servers[0].url },
              locked: {
                capacity: 1,
                connection: `redis://${USER}:${SECRET}@127.0.0.1:${locked.servers[0].port}`,
              },
            },
          },
          defaults: fast,
        }),
      ],
    });
    const dict = app.get(RingRedisService).getOrThrow('secret');
    await dict.set('k', 1);
    await locked.servers[0].kill();
    await until(() => dict.aliveHash.size === 1);
    await locked.servers[0].restart();
    await until(() => dict.aliveHash.size === 2);
    await fleet.servers[0].kill();
    await locked.servers[0].kill();
    await until(() => dict.aliveHash.size === 0);
    await expect(dict.get('k')).rejects.toThrow();
    const levels = logs.ring('secret').map((l) => l.level);
    expect(levels).toEqual(['warn', 'log', 'warn', 'warn', 'error']);
    const text = JSON.stringify(logs.lines);
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(USER);
    expect(text).not.toContain('redis://');
  });

  it('events$ carries every group’s events, each tagged with its group', async () => {
    const app = await boot({
      imports: [
        RingRedisModule.forRoot({
          groups: { one: nodes(0, 2), two: nodes(1, 3) },
          defaults: fast,
        }),
      ],
    });
    const rings = app.get(RingRedisService);
    const seen: RingGroupEvent[] = [];
    const subscription = rings.events$.subscribe((event) => seen.push(event));
    await fleet.servers[1].kill();
    await until(() => seen.length === 2);
    subscription.unsubscribe();
    expect(seen.map(({ group, type, node }) => ({ group, type, node })).sort(byGroup)).toEqual([
      { group: 'one', type: 'ejected', node: 'node1' },
      { group: 'two', type: 'ejected', node: 'node1' },
    ]);
    expect(seen[0].at).toBeInstanceOf(Date);
    expect(rings.recentEvents('one').map((e) => e.type)).toEqual(['ejected']);
  });
});

describe('shutdown', () => {
  it('app.close() closes every connection (no enableShutdownHooks needed)', async () => {
    const tag = `nest-close-${process.pid}`;
    const named = (name: string) =>
      Object.fromEntries(
        fleet.servers.map((s, i) => [
          `node${i}`,
          { capacity: 1, connection: { host: '127.0.0.1', port: s.port, connectionName: name } },
        ]),
      );
    const ours = async (server: RedisServer) =>
      (await redisCommand(server.port, 'CLIENT', 'LIST'))
        .split('\n')
        .filter((line) => line.includes(`name=${tag}`)).length;
    const counts = () => Promise.all(fleet.servers.map(ours));

    expect(await counts()).toEqual([0, 0, 0]);
    const app = await boot({
      imports: [
        RingRedisModule.forRoot({
          groups: { a: named(tag), b: named(tag) },
          defaults: fast,
        }),
      ],
    });
    const rings = app.get(RingRedisService);
    for (let i = 0; i < 30; i++) {
      await rings.getOrThrow('a').set(`k${i}`, i);
      await rings.getOrThrow('b').set(`k${i}`, i);
    }
    // Two groups: each has its own connection to each server.
    await until(async () => (await counts()).every((n) => n >= 2));
    await closeApp(app);
    expect(await counts()).toEqual([0, 0, 0]);
  });

  it('a process running an HTTP app exits by itself after app.close()', async () => {
    const lib = new URL('../../.run/lib/index.js', import.meta.url).href;
    // Plain ESM, so the child needs no compile step: decorators applied as functions.
    const script = `
      import 'reflect-metadata';
      import { Controller, Get, Module } from '@nestjs/common';
      import { NestFactory } from '@nestjs/core';
      import { RingRedisModule, RingRedisService } from ${JSON.stringify(lib)};
      class PingController {
        constructor(rings) { this.rings = rings; }
        async ping() { await this.rings.getOrThrow('test').set('child', 42); return this.rings.getOrThrow('test').get('child'); }
      }
      Reflect.defineMetadata('design:paramtypes', [RingRedisService], PingController);
      Get('ping')(PingController.prototype, 'ping', Object.getOwnPropertyDescriptor(PingController.prototype, 'ping'));
      Controller()(PingController);
      class AppModule {}
      Module({
        imports: [RingRedisModule.forRoot({ groups: { test: ${JSON.stringify(nodes())} }, defaults: { heartbeatInterval: 100 } })],
        controllers: [PingController],
      })(AppModule);
      const app = await NestFactory.create(AppModule, { logger: false });
      await app.listen(0, '127.0.0.1');
      const response = await fetch(await app.getUrl() + '/ping');
      console.log(await response.text());
      await app.close();
      console.log('closed', Date.now());
    `;
    const { code, stdout } = await runNodeScript(script, 10_000);
    const exitedAt = Date.now();
    expect(code).toBe(0);
    const [answer, closed, closedAt] = stdout.trim().split(/\s+/);
    expect([answer, closed]).toEqual(['42', 'closed']);
    // It exits promptly, not after some timer or socket timeout.
    expect(exitedAt - Number(closedAt)).toBeLessThan(2000);
  });

  // Nest never shuts down an app it failed to build: connections a group opened while it was
  // built would keep the process alive. Groups connect at bootstrap, after every module's
  // onModuleInit, so a boot that fails before leaves none open.
  it.each([
    [
      'another provider fails in its constructor',
      "constructor() { throw new Error('broken provider'); }",
      'broken provider',
    ],
    [
      'another provider fails in its onModuleInit',
      "onModuleInit() { throw new Error('broken provider'); }",
      'broken provider',
    ],
    [
      '@InjectRingDict names a group no module declares',
      "constructor(dict) {} }\n        InjectRingDict('sesions')(Broken, undefined, 0); {",
      'no group "sesions" is declared',
    ],
  ])(
    'a boot where %s leaves no connection: the process exits by itself',
    async (_where, body, message) => {
      const lib = new URL('../../.run/lib/index.js', import.meta.url).href;
      const script = `
        import 'reflect-metadata';
        import { Injectable, Module } from '@nestjs/common';
        import { NestFactory } from '@nestjs/core';
        import { InjectRingDict, RingRedisModule } from ${JSON.stringify(lib)};
        class Broken {
          ${body}
        }
        Injectable()(Broken);
        class AppModule {}
        Module({
          imports: [
            RingRedisModule.forRoot({
              groups: { test: ${JSON.stringify(nodes())} },
            }),
          ],
          providers: [Broken],
        })(AppModule);
        try {
          await NestFactory.createApplicationContext(AppModule, { logger: false, abortOnError: false });
        } catch (error) {
          console.log(error.message);
        }
      `;
      const { code, stdout } = await runNodeScript(script, 10_000);
      expect(stdout.trim()).toContain(message);
      expect(code).toBe(0);
    },
  );
});

describe('isolation and testing', () => {
  it('two apps in one process with different configs do not share state', async () => {
    const a = await boot({
      imports: [
        RingRedisModule.forRoot({
          groups: { test: nodes(0, 2) },
          defaults: { ...fast, prefix: 'a:' },
        }),
      ],
      providers: [PropertyUser],
    });
    const b = await boot({
      imports: [
        RingRedisModule.forRoot({
          groups: { test: nodes(2, 3) },
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
    await fleet.servers[0].kill();
    await until(() => da.aliveHash.size === 1);
    expect(db.nodeStates().every((s) => s.alive && s.ejections === 0)).toBe(true);
    expect(a.get(RingRedisService).recentEvents('test')).toHaveLength(1);
    expect(b.get(RingRedisService).recentEvents('test')).toHaveLength(0);

    // Closing A leaves B working.
    await closeApp(a);
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
    const app = await boot(
      {
        imports: [RingRedisModule.forRoot({ groups: { test: nodes() }, defaults: fast })],
        providers: [Greeter],
      },
      (builder) => builder.overrideProvider(getRingDictToken('test')).useValue(fake),
    );
    expect(await app.get(Greeter).greet()).toBe('from the fake');
    expect(app.get(getRingDictToken('test'))).toBe(fake);
  });
});

function byGroup(x: { group: string }, y: { group: string }): number {
  return x.group.localeCompare(y.group);
}
