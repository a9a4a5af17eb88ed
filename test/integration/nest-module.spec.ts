import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { describe, expect, it } from 'vitest';
import {
  getRingDictToken,
  InjectRingDict,
  RingConfigError,
  RingDict,
  RingRedisModule,
  RingRedisService,
} from '../../lib/index.js';
import { DefaultUser, PropertyUser, TwoGroups } from '../helpers/dict-users.js';
import { fast, useNestApps } from '../helpers/nest-apps.js';
import { redisCommand } from '../helpers/redis-command.js';
import { until } from '../helpers/wait.js';

/**
 * RingRedisModule.forRoot: each group becomes a RingDict provider, with the defaults, group
 * options and replicas it was given, and apps in one process stay apart (a user test can
 * replace a dict). forRootAsync has its suite in nest-module-async.spec.ts, an app that imports
 * the module more than once in nest-module-imports.spec.ts.
 */

const nest = useNestApps({ logged: true });

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
