import 'reflect-metadata';
import { Injectable, Logger, Scope, type INestApplication, type Type } from '@nestjs/common';
import { ContextIdFactory } from '@nestjs/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  RingCacheService,
  RingCached,
  RingRedisModule,
  RingRedisService,
} from '../../lib/index.js';
import { fast, useNestApps } from '../helpers/nest-apps.js';
import { until } from '../helpers/wait.js';

/**
 * What @RingCached says, and when: one warning per method per 10 s while the ring fails, and
 * at boot, a provider whose scope keeps it uncached (request-scoped, or transient inside a
 * request-scoped one), while a transient one is cached in every consumer.
 */

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

const nest = useNestApps({ servers: 2 });

afterEach(() => {
  vi.restoreAllMocks();
});

/** An app whose 'default' group spans both servers, with `providers`. */
async function boot(providers: Type[]): Promise<INestApplication> {
  return nest.boot({
    imports: [RingRedisModule.forRoot({ groups: { default: nest.nodes() }, defaults: fast })],
    providers,
  });
}

describe('@RingCached warnings', () => {
  it('warns once per method per 10 s window while the ring fails, not once per call', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const app = await boot([Throttled]);
    const service = app.get(Throttled);
    const dict = app.get(RingRedisService).getOrThrow('default');
    await Promise.all(nest.fleet.servers.map((s) => s.kill()));
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
    const app = await boot([One, Two]);
    const dict = app.get(RingRedisService).getOrThrow('default');
    await Promise.all(nest.fleet.servers.map((s) => s.kill()));
    await until(() => dict.aliveHash.size === 0);
    expect(await app.get(One).load(1)).toBe(2);
    expect(await app.get(Two).load(1)).toBe(3);
    const said = warn.mock.calls.map(([m]) => String(m));
    expect(said.filter((m) => m.startsWith('Twin.load: cache read failed'))).toHaveLength(2);
  });

  it('caches a transient provider in every consumer it is injected into, without a warning', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const app = await boot([PerConsumer, FirstConsumer, SecondConsumer]);
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
    const app = await boot([PerConsumer, FirstConsumer, RequestConsumer]);
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
    const app = await boot([PerRequest, DependsOnPerRequest, Throttled]);
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
