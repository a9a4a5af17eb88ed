import 'reflect-metadata';
import { Injectable } from '@nestjs/common';
import { describe, expect, it } from 'vitest';
import {
  RingCacheService,
  RingCached,
  RingConfigError,
  RingRedisModule,
  type RingCachedOptions,
} from '../../lib/index.js';
import { ringCachedMethodChain } from '../../lib/nest/ring-cached/ring-cached.decorator.js';
import { useNestApps } from '../helpers/nest-apps.js';
import { redisCommand } from '../helpers/redis-command.js';
import { taggedNodes } from '../helpers/redis-fleet.js';
import { sleep, until } from '../helpers/wait.js';

/**
 * @RingCached and how its method is declared: without return type metadata (as plain
 * JavaScript declares it) concurrent first calls still share one run, and options it cannot
 * take fail the boot with an error naming the method, leaving no connection open. Caching
 * itself is in ring-cached.spec.ts.
 */

const nest = useNestApps();

/** `@RingCached(options)` on `type.prototype[name]` as plain JavaScript applies it (no metadata). */
function cachedAsPlainJs(type: Function, name: string, options?: RingCachedOptions): void {
  const descriptor = Object.getOwnPropertyDescriptor(type.prototype, name)!;
  RingCached(options)(type.prototype, name, descriptor);
  Object.defineProperty(type.prototype, name, descriptor);
}

/** A class as plain JavaScript would declare it (no metadata), new for each test. */
function plainJsLookup() {
  class FreshPlainJs {
    calls = 0;
    async lookup(id: number): Promise<number> {
      this.calls++;
      await sleep(30);
      return id * 10;
    }
  }
  cachedAsPlainJs(FreshPlainJs, 'lookup');
  return FreshPlainJs;
}

describe('@RingCached without return type metadata', () => {
  it('concurrent first calls share one run, as on any miss', async () => {
    const FreshPlainJs = plainJsLookup();
    const app = await nest.boot({
      imports: [RingRedisModule.forRoot({ groups: { default: nest.nodes() } })],
      providers: [FreshPlainJs],
    });
    const plain = app.get(FreshPlainJs);
    // The first call learns that the method returns a Promise; the others join its run.
    expect(await Promise.all([plain.lookup(7), plain.lookup(7), plain.lookup(7)])).toEqual([
      70, 70, 70,
    ]);
    expect(plain.calls).toBe(1);
  });

  // Joining a run of its key, it dropped its own run's promise: a rejection of it went
  // unhandled (the test run fails on one).
  it('a first call that joins a run of its key leaves no rejection of its own unhandled', async () => {
    class Failing {
      async read(_id: number): Promise<string> {
        throw new Error('backend down');
      }
    }
    cachedAsPlainJs(Failing, 'read', { prefix: 'join:', key: (id: number) => String(id) });
    const app = await nest.boot({
      imports: [RingRedisModule.forRoot({ groups: { default: nest.nodes() } })],
      providers: [Failing],
    });
    const running = app.get(RingCacheService).wrap(
      'join:1',
      async () => {
        await sleep(100);
        return 'from wrap';
      },
      { ttl: 60 },
    );
    await sleep(10);
    expect(await app.get(Failing).read(1)).toBe('from wrap');
    expect(await running).toBe('from wrap');
    await sleep(50);
  });

  // It joined any run of its key: a tagged `wrap`'s, begun before an invalidateTags that
  // resolved before this call began, answered 'v0'.
  it('a first call never joins a tagged run of its key', async () => {
    let stored = 'v0';
    class TaggedKey {
      async read(id: number): Promise<string> {
        return `${stored}:${id}`;
      }
    }
    cachedAsPlainJs(TaggedKey, 'read', { prefix: 'slow:', key: (id: number) => String(id) });
    const app = await nest.boot({
      imports: [RingRedisModule.forRoot({ groups: { default: nest.nodes() } })],
      providers: [TaggedKey],
    });
    const cache = app.get(RingCacheService);
    let begun = 0;
    const before = cache.wrap(
      'slow:1',
      async () => {
        begun++;
        const value = `${stored}:1`;
        await sleep(300);
        return value;
      },
      { ttl: 60, tags: ['t:1'] },
    );
    await until(() => begun === 1, 2_000, 'the tagged run begins');
    stored = 'v1';
    await cache.invalidateTags(['t:1']);
    expect(await app.get(TaggedKey).read(1)).toBe('v1:1');
    expect(await before).toBe('v0:1');
  });
});

describe('@RingCached options are checked at boot', () => {
  const tag = `ring-cached-boot-${process.pid}`;

  async function taggedConnections(): Promise<number> {
    let count = 0;
    for (const server of nest.fleet.servers) {
      const list = await redisCommand(server.port, 'CLIENT', 'LIST');
      count += list.split('\n').filter((line) => line.includes(`name=${tag}`)).length;
    }
    return count;
  }

  async function bootWith(provider: new () => object): Promise<void> {
    await nest.boot({
      imports: [
        RingRedisModule.forRoot({
          groups: { default: taggedNodes(nest.fleet.servers, tag), other: nest.nodes() },
        }),
      ],
      providers: [provider],
    });
  }

  it.each([
    [{ ttl: -5 }, /@RingCached BadOptions\.load: ttl: expected a number of seconds > 0, got -5/],
    [
      { group: 'sessions' },
      /@RingCached BadOptions\.load: group "sessions" is not configured; configured groups: "default", "other"/,
    ],
    [{ tll: 30 }, /@RingCached BadOptions\.load: unknown option "tll"/],
    [{ prefix: 7 }, /@RingCached BadOptions\.load: prefix: expected a well-formed string, got 7/],
    [{ ttl: '30 s' }, /@RingCached BadOptions\.load: ttl: expected a duration > 0 .* got "30 s"/],
    [
      { grace: '1m' },
      /@RingCached BadOptions\.load: grace needs a ttl: give the option ttl, or the group an expire/,
    ],
    [{ ttl: 5, softTimeout: 50 }, /@RingCached BadOptions\.load: softTimeout needs grace/],
    [{ tags: ['a'] }, /@RingCached BadOptions\.load: tags: expected a function, got \["a"\]/],
    // Every key of the method would be among the cache's own: tag versions, locks.
    [
      { prefix: '__ring-cached__:tag:' },
      /BadOptions\.load: prefix: "__ring-cached__:" begins the cache's own keys/,
    ],
    // Every key of the method would be refused at its call: it would never be cached.
    [
      { prefix: 'p\uD800:' },
      /BadOptions\.load: prefix: expected a well-formed string, got "p\\ud800:"/,
    ],
    // Past Redis' clock (PX): every write would fail at the server.
    [{ ttl: 60, grace: 1e16 }, /@RingCached BadOptions\.load: grace: at most 1e12 seconds/],
    // Each within it, not together: an entry in grace is kept ttl + grace (a write refused on
    // every call, the method run every time).
    [{ ttl: 60, grace: 1e12 }, /BadOptions\.load: grace: ttl \+ grace is at most 1e12 seconds/],
  ])('%o fails the boot with a RingConfigError naming the method', async (options, message) => {
    @Injectable()
    class BadOptions {
      @RingCached(options as never)
      async load(): Promise<number> {
        return 1;
      }
    }
    const attempt = bootWith(BadOptions);
    await expect(attempt).rejects.toBeInstanceOf(RingConfigError);
    await expect(attempt).rejects.toThrow(message);
    // The rings connect as the app is built: the failed boot closed them. Connections left
    // open would show up within this wait (a connect to a local server takes a few ms).
    await sleep(300);
    expect(await taggedConnections()).toBe(0);
  });
});

/** A decorator above `@RingCached` that wraps the method and keeps none of its metadata. */
function wrapWithoutMetadata(prototype: object, name: string): void {
  const inner = Reflect.get(prototype, name) as (...args: unknown[]) => unknown;
  Object.defineProperty(prototype, name, {
    value: function (this: unknown, ...args: unknown[]) {
      return inner.apply(this, args);
    },
  });
}

describe('@RingCached under a decorator that wraps it without its metadata', () => {
  it('is still cached, evicted and keyed', async () => {
    @Injectable()
    class Timed {
      runs = 0;
      async get(id: number): Promise<number> {
        return ++this.runs + id;
      }
    }
    cachedAsPlainJs(Timed, 'get', { ttl: 30 });
    wrapWithoutMetadata(Timed.prototype, 'get');
    const app = await nest.boot({
      imports: [RingRedisModule.forRoot({ groups: { default: nest.nodes() } })],
      providers: [Timed],
    });
    const timed = app.get(Timed);
    const cache = app.get(RingCacheService);
    // The method was found nowhere: never bound, so never cached, and keyFor threw.
    expect([await timed.get(1), await timed.get(1)]).toEqual([2, 2]);
    expect(cache.keyFor(Timed, 'get', 1)).toBe('Timed.get:[1]');
    expect(await cache.evict(Timed, 'get', 1)).toBe(true);
    expect(await timed.get(1)).toBe(3);
  });
});

describe('@RingCached refuses, as the class is defined, what it would not cache', () => {
  const decorate = (target: object, name: string | symbol) => () => {
    const descriptor = Object.getOwnPropertyDescriptor(target, name)!;
    RingCached()(target, name, descriptor as TypedPropertyDescriptor<() => Promise<number>>);
    Object.defineProperty(target, name, descriptor);
  };

  // Each was skipped by the app (found by name on the prototype): run uncached, its options
  // never checked, its tags never invalidated; two symbols of one description shared keys.
  it('a static method, or one named by a symbol', () => {
    const load = Symbol('load');
    class Repo {
      static async all(): Promise<number> {
        return 1;
      }
      async [load](): Promise<number> {
        return 2;
      }
    }
    expect(decorate(Repo, 'all')).toThrow(
      new TypeError('@RingCached() decorates instance methods; Repo.all is static'),
    );
    expect(decorate(Repo.prototype, load)).toThrow(
      new TypeError(
        '@RingCached() needs a method named by a string; Repo.Symbol(load) has a symbol',
      ),
    );
  });

  // The inner layer's miss joined the outer layer's run, which waited for the inner layer.
  it('a class field', () => {
    // Applied as to a field, with no descriptor: a TypeError reading its value before.
    const asField = () => RingCached()({}, 'load', undefined as never);
    expect(asField).toThrow(new TypeError('@RingCached() decorates methods; load is not one'));
  });

  it('a second @RingCached on one method', () => {
    class Twice {
      async load(): Promise<number> {
        return 1;
      }
    }
    decorate(Twice.prototype, 'load')();
    expect(decorate(Twice.prototype, 'load')).toThrow(
      new TypeError('@RingCached() is applied twice to Twice.load; keep one'),
    );
  });

  it('a second @RingCached on one method, with a wrapping decorator between', () => {
    class Twice {
      async load(): Promise<number> {
        return 1;
      }
    }
    decorate(Twice.prototype, 'load')();
    wrapWithoutMetadata(Twice.prototype, 'load');
    // The wrapper hid the first: every call waited on its own miss, for ever.
    expect(decorate(Twice.prototype, 'load')).toThrow(
      new TypeError('@RingCached() is applied twice to Twice.load; keep one'),
    );
  });

  // The record of cached methods was kept on `prototype.constructor`, which ES5-style
  // subclassing inherits from the parent: its override was "applied twice to A.foo".
  it('but not an override in an ES5-style subclass (its prototype has no constructor of its own)', () => {
    class A {
      async foo(): Promise<number> {
        return 1;
      }
    }
    decorate(A.prototype, 'foo')();
    function B(): void {}
    B.prototype = Object.create(A.prototype) as object;
    Object.defineProperty(B.prototype, 'foo', { value: async () => 2, writable: true });
    expect(decorate(B.prototype, 'foo')).not.toThrow();
    expect(ringCachedMethodChain(B, 'foo').length).toBe(2);
  });

  it('a frozen provider fails the boot naming it, rather than with a TypeError', async () => {
    class Frozen {
      @RingCached()
      async load(): Promise<number> {
        return 1;
      }
    }
    const attempt = nest.boot({
      imports: [RingRedisModule.forRoot({ groups: { default: nest.nodes() } })],
      providers: [{ provide: 'FROZEN', useValue: Object.freeze(new Frozen()) }],
    });
    await expect(attempt).rejects.toBeInstanceOf(RingConfigError);
    await expect(attempt).rejects.toThrow(
      /Frozen is frozen .*: @RingCached cannot bind its methods/,
    );
  });
});
