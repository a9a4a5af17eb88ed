import 'reflect-metadata';
import { Injectable, Module, Scope } from '@nestjs/common';
import { describe, expect, it } from 'vitest';
import {
  InjectRingDict,
  RingConfigError,
  RingDict,
  RingRedisModule,
  RingRedisService,
  type RingRedisModuleOptions,
} from '../../lib/index.js';
import { fast, useNestApps } from '../helpers/nest-apps.js';

/**
 * A RingRedisModule configured wrong fails the boot with a RingConfigError that names what is
 * wrong: the group, the node, the field, the option, the group an injection asks for.
 */

const nest = useNestApps({ logged: true });

describe('boot errors name what is wrong', () => {
  it('a group declared in `groups` but missing from the resolved config names both lists', async () => {
    const attempt = nest.boot({
      imports: [
        RingRedisModule.forRootAsync({
          useFactory: async () => ({
            groups: { test: nest.nodes(), cache: nest.nodes() },
            defaults: fast,
          }),
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
    const bad = { ...nest.nodes(), broken: { capacity: -1, connection: 'redis://127.0.0.1:1' } };
    const capacity = nest.boot({
      imports: [
        RingRedisModule.forRoot({ groups: { ok: nest.nodes(), test: bad }, defaults: fast }),
      ],
    });
    await expect(capacity).rejects.toBeInstanceOf(RingConfigError);
    await expect(capacity).rejects.toThrow(/group "test", node "broken": capacity/);

    await expect(
      nest.boot({
        imports: [
          RingRedisModule.forRoot({
            groups: { test: nest.nodes() },
            defaults: { ...fast, prefx: 'typo' } as RingRedisModuleOptions['defaults'],
          }),
        ],
      }),
    ).rejects.toThrow(/group "test": unknown option "prefx"/);

    await expect(
      nest.boot({
        imports: [
          RingRedisModule.forRoot({
            groups: { test: nest.nodes() },
            defaults: fast,
            groupOptions: { test: { expire: -5 } },
          }),
        ],
      }),
    ).rejects.toThrow(/group "test": expire/);

    await expect(
      nest.boot({
        imports: [
          RingRedisModule.forRoot({
            groups: { test: nest.nodes() },
            defaults: { ...fast, lazyConnect: 'yes' as unknown as boolean },
          }),
        ],
      }),
    ).rejects.toThrow(/group "test": lazyConnect: expected a boolean, got "yes"/);

    await expect(
      nest.boot({
        imports: [
          RingRedisModule.forRoot({
            groups: { test: nest.nodes() },
            defaults: fast,
            groupOptions: { tset: { prefix: 'x' } },
          }),
        ],
      }),
    ).rejects.toThrow(/groupOptions names group "tset", which is not configured \("test"\)/);

    await expect(
      nest.boot({
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
      nest.boot({
        imports: [
          RingRedisModule.forRootAsync({
            useFactory: () =>
              ({
                groups: { test: nest.nodes() },
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
      nest.boot({
        imports: [
          RingRedisModule.forRoot({
            groups: { test: nest.nodes() },
            defaults: 'fast' as unknown as RingRedisModuleOptions['defaults'],
          }),
        ],
      }),
    ).rejects.toThrow(/options.defaults must be an object, got "fast"/);
  });

  // Each was dropped without a word: a group's options that are no object, and `nodes` or
  // `name`, which the module sets from `groups` over whatever these say.
  it.each<[string, RingRedisModuleOptions['groupOptions'], RegExp]>([
    ['a number', { test: 60 }, /RingRedisModule: groupOptions\.test must be an object, got 60/],
    ['null', { test: null }, /groupOptions\.test must be an object, got null/],
    [
      'a name',
      { test: { name: 'cache' } },
      /RingRedisModule: groupOptions\.test\.name: not an option here; a group's name is its key in `groups`/,
    ],
  ] as unknown as [string, RingRedisModuleOptions['groupOptions'], RegExp][])(
    'groupOptions of a group holding %s fails the boot, naming it',
    async (_what, groupOptions, message) => {
      const boot = nest.boot({
        imports: [
          RingRedisModule.forRoot({ groups: { test: nest.nodes() }, defaults: fast, groupOptions }),
        ],
      });
      await expect(boot).rejects.toBeInstanceOf(RingConfigError);
      await expect(boot).rejects.toThrow(message);
    },
  );

  it('defaults giving nodes fails the boot: nodes are given in groups', async () => {
    const defaults = { ...fast, nodes: nest.nodes() } as RingRedisModuleOptions['defaults'];
    await expect(
      nest.boot({
        imports: [RingRedisModule.forRoot({ groups: { test: nest.nodes() }, defaults })],
      }),
    ).rejects.toThrow(
      /RingRedisModule: defaults\.nodes: not an option here; a group's nodes are given in `groups`/,
    );
  });

  it("@InjectRingDict('x') for an undeclared group names it and the declared groups", async () => {
    @Injectable()
    class WantsX {
      constructor(@InjectRingDict('x') readonly dict: RingDict) {}
    }
    const attempt = nest.boot({
      imports: [
        RingRedisModule.forRoot({
          groups: { test: nest.nodes(), cache: nest.nodes() },
          defaults: fast,
        }),
      ],
      providers: [WantsX],
    });
    await expect(attempt).rejects.toBeInstanceOf(RingConfigError);
    await expect(attempt).rejects.toThrow(
      `@InjectRingDict('x'): no group "x" is declared; declared groups: "test", "cache"`,
    );

    // Another app of the same process that does not inject 'x' is not affected.
    const app = await nest.boot({
      imports: [RingRedisModule.forRoot({ groups: { test: nest.nodes() }, defaults: fast })],
    });
    expect(app.get(RingRedisService).names()).toEqual(['test']);
  });

  // Built per request, it passed the boot, and every request answered 500.
  it("@InjectRingDict('x') in a request-scoped provider fails the boot too", async () => {
    @Injectable({ scope: Scope.REQUEST })
    class PerRequest {
      constructor(@InjectRingDict('per-request') readonly dict: RingDict) {}
    }
    const attempt = nest.boot({
      imports: [RingRedisModule.forRoot({ groups: { test: nest.nodes() }, defaults: fast })],
      providers: [PerRequest],
    });
    await expect(attempt).rejects.toBeInstanceOf(RingConfigError);
    await expect(attempt).rejects.toThrow(
      `@InjectRingDict('per-request'): no group "per-request" is declared; declared groups: "test"`,
    );
  });

  it('an undeclared group that the resolved config has: the error says to declare it', async () => {
    @Injectable()
    class WantsLate {
      constructor(@InjectRingDict('late-config') readonly dict: RingDict) {}
    }
    await expect(
      nest.boot({
        imports: [
          RingRedisModule.forRootAsync({
            useFactory: () => ({
              groups: { test: nest.nodes(), 'late-config': nest.nodes(0, 1) },
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
    const ringModule = RingRedisModule.forRoot({ groups: { test: nest.nodes() }, defaults: fast });
    @Injectable()
    class DefinedLater {
      constructor(@InjectRingDict('defined-later') readonly dict: RingDict) {}
    }
    await expect(nest.boot({ imports: [ringModule], providers: [DefinedLater] })).rejects.toThrow(
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
      imports: [RingRedisModule.forRoot({ groups: { local: nest.nodes(0, 1) }, defaults: fast })],
      providers: [WantsShared],
    })
    class FeatureModule {}
    const app = await nest.boot({
      imports: [
        RingRedisModule.forRoot({
          groups: { shared: nest.nodes() },
          defaults: fast,
          isGlobal: true,
        }),
        FeatureModule,
      ],
    });
    const { shared, local } = app.get(WantsShared);
    expect(shared.name).toBe('shared');
    expect(shared.totalHash.size).toBe(3);
    expect(local.name).toBe('local');
  });
});
