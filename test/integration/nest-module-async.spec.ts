import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { describe, expect, it } from 'vitest';
import {
  getRingDictToken,
  RingRedisModule,
  RingRedisService,
  type RingRedisModuleOptions,
  type RingRedisOptionsFactory,
} from '../../lib/index.js';
import { DefaultUser, PropertyUser, TwoGroups } from '../helpers/dict-users.js';
import { fast, useNestApps } from '../helpers/nest-apps.js';

/**
 * RingRedisModule.forRootAsync: options that arrive asynchronously, through useFactory,
 * useClass or useExisting, make the same RingDict providers as forRoot's for the groups it
 * declares; a configured group it does not declare is still reachable, and a declaration that
 * does not match the configuration is a boot error that says what to write.
 */

const nest = useNestApps({ logged: true });

// ------------------------------------------------------------------ consumers of the tests

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
    // Nest's own TypeError at boot before.
    expect(() => RingRedisModule.forRootAsync({ useFactory: 5 as never })).toThrow(
      'RingRedisModule.forRootAsync: useFactory must be a function, got 5',
    );
  });

  it('refuses an empty group name, which could never be injected', async () => {
    await expect(
      nest.boot({
        imports: [RingRedisModule.forRoot({ groups: { '': nest.nodes() }, defaults: fast })],
      }),
    ).rejects.toThrow('RingRedisModule: a group name is empty');
  });
});
