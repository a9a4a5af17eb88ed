import 'reflect-metadata';
import { Injectable, Logger, type INestApplication } from '@nestjs/common';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  RingCacheService,
  RingCached,
  RingRedisModule,
  RingRedisService,
} from '../../lib/index.js';
import { fast, useNestApps } from '../helpers/nest-apps.js';

/**
 * @RingCached through class hierarchies: an inherited cached method keys by the subclass, an
 * override that calls the cached method through super has a key of its own (or it would wait
 * on its own miss), and layers that share an explicit prefix are warned about at boot.
 */

/** A generic repository, as Nest apps often write one: subclasses inherit the cached method. */
abstract class BaseRepo {
  abstract readonly table: string;
  calls = 0;

  @RingCached()
  async findOne(id: number): Promise<{ table: string; id: number }> {
    this.calls++;
    return { table: this.table, id };
  }
}

@Injectable()
class UserRepo extends BaseRepo {
  readonly table = 'users';
}

@Injectable()
class OrderRepo extends BaseRepo {
  readonly table = 'orders';
}

/** Overrides the cached method with a cached method of its own that calls it through super. */
@Injectable()
class AuditedRepo extends BaseRepo {
  readonly table = 'audits';

  @RingCached()
  override async findOne(id: number): Promise<{ table: string; id: number; audited?: true }> {
    return { ...(await super.findOne(id)), audited: true };
  }
}

/** Another one: its inner call must not answer AuditedRepo's, nor the other way round. */
@Injectable()
class ArchivedRepo extends BaseRepo {
  readonly table = 'archive';

  @RingCached()
  override async findOne(id: number): Promise<{ table: string; id: number; audited?: true }> {
    return { ...(await super.findOne(id)), audited: true };
  }
}

/** Plain overrides (logging, say) through super; another cached method binds their instances. */
@Injectable()
class LoggedUserRepo extends BaseRepo {
  readonly table = 'logged users';

  override async findOne(id: number): Promise<{ table: string; id: number }> {
    return super.findOne(id);
  }

  @RingCached()
  async count(): Promise<number> {
    return 1;
  }
}

@Injectable()
class LoggedOrderRepo extends BaseRepo {
  readonly table = 'logged orders';

  override async findOne(id: number): Promise<{ table: string; id: number }> {
    return super.findOne(id);
  }

  @RingCached()
  async count(): Promise<number> {
    return 2;
  }
}

/** A plain override (logging, say) on top of a cached override. */
@Injectable()
class LoggedAuditedRepo extends AuditedRepo {
  override async findOne(id: number): Promise<{ table: string; id: number; audited?: true }> {
    return super.findOne(id);
  }
}

const nest = useNestApps();

afterEach(() => {
  vi.restoreAllMocks();
});

async function boot(): Promise<INestApplication> {
  return nest.boot({
    imports: [
      RingRedisModule.forRoot({
        groups: { default: nest.nodes() },
        defaults: { prefix: 'app:', expire: 60, commandTimeout: 1000, heartbeatInterval: 100 },
      }),
    ],
    providers: [
      UserRepo,
      OrderRepo,
      AuditedRepo,
      ArchivedRepo,
      LoggedUserRepo,
      LoggedOrderRepo,
      LoggedAuditedRepo,
    ],
  });
}

describe('@RingCached and inheritance', () => {
  it('subclasses that inherit a cached method get keys of their own', async () => {
    const app = await boot();
    const [users, orders] = [app.get(UserRepo), app.get(OrderRepo)];
    expect(await users.findOne(1)).toEqual({ table: 'users', id: 1 });
    expect(await orders.findOne(1)).toEqual({ table: 'orders', id: 1 });
    expect(await users.findOne(1)).toEqual({ table: 'users', id: 1 });
    expect(await orders.findOne(1)).toEqual({ table: 'orders', id: 1 });
    expect([users.calls, orders.calls]).toEqual([1, 1]);
    const cache = app.get(RingCacheService);
    expect(cache.keyFor(UserRepo, 'findOne', 1)).toBe('UserRepo.findOne:[1]');
    expect(await cache.evictAll(OrderRepo, 'findOne')).toBe(1);
    expect(await cache.evict(UserRepo, 'findOne', 1)).toBe(true);
  });

  it('an override that calls the cached method through super has a key of its own', async () => {
    const app = await boot();
    const audited = app.get(AuditedRepo);
    // Sharing one key, the outer miss would wait on the inner one for ever.
    const answer = await Promise.race([
      audited.findOne(4),
      new Promise((resolve) => setTimeout(() => resolve('no answer'), 3_000)),
    ]);
    expect(answer).toEqual({ table: 'audits', id: 4, audited: true });
    expect(await audited.findOne(4)).toEqual({ table: 'audits', id: 4, audited: true });
    expect(audited.calls).toBe(1);
    const cache = app.get(RingCacheService);
    expect(cache.keyFor(AuditedRepo, 'findOne', 4)).toBe('AuditedRepo.findOne:[4]');
  });

  it('overrides in sibling subclasses, decorated or not, never answer each other', async () => {
    const app = await boot();
    expect(await app.get(AuditedRepo).findOne(2)).toEqual({
      table: 'audits',
      id: 2,
      audited: true,
    });
    expect(await app.get(ArchivedRepo).findOne(2)).toEqual({
      table: 'archive',
      id: 2,
      audited: true,
    });
    expect(await app.get(LoggedUserRepo).findOne(2)).toEqual({ table: 'logged users', id: 2 });
    expect(await app.get(LoggedOrderRepo).findOne(2)).toEqual({ table: 'logged orders', id: 2 });
    expect(await app.get(LoggedOrderRepo).findOne(2)).toEqual({ table: 'logged orders', id: 2 });
    expect(app.get(LoggedOrderRepo).calls).toBe(1);
  });

  it('a plain override on top of a cached override: each cached layer has its own key', async () => {
    const app = await boot();
    const logged = app.get(LoggedAuditedRepo);
    const answer = await Promise.race([
      logged.findOne(8),
      new Promise((resolve) => setTimeout(() => resolve('no answer'), 3_000)),
    ]);
    expect(answer).toEqual({ table: 'audits', id: 8, audited: true });
    expect(await logged.findOne(8)).toEqual({ table: 'audits', id: 8, audited: true });
    expect(logged.calls).toBe(1);
    const dict = app.get(RingRedisService).getOrThrow('default');
    expect(await dict.has('LoggedAuditedRepo.findOne:[8]')).toBe(true);
    expect(await dict.has('LoggedAuditedRepo.findOne@BaseRepo:[8]')).toBe(true);
  });

  it("evicting an override's call evicts the call it made through super too", async () => {
    const app = await boot();
    const audited = app.get(AuditedRepo);
    const cache = app.get(RingCacheService);
    await audited.findOne(6);
    expect(audited.calls).toBe(1);
    expect(await cache.evict(AuditedRepo, 'findOne', 6)).toBe(true);
    await audited.findOne(6);
    // Recomputed: the inner call was evicted with the outer one, not served from the ring.
    expect(audited.calls).toBe(2);
    expect(await cache.evictAll(AuditedRepo, 'findOne')).toBe(2);
    await audited.findOne(6);
    expect(audited.calls).toBe(3);
  });
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
    await nest.boot({
      imports: [RingRedisModule.forRoot({ groups: { default: nest.nodes(0, 2) }, defaults: fast })],
      providers: [AuditedUsers, MoreAuditedUsers],
    });
    expect(warn.mock.calls.map(([m]) => String(m))).toEqual([
      'AuditedUsers.find and Users.find, which it overrides, share the prefix "users:" in group "default": a call through super would wait on its own miss; give them different prefixes',
    ]);
  });
});
