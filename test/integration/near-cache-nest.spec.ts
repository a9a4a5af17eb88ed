import 'reflect-metadata';
import { Injectable } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { describe, expect, it } from 'vitest';
import { RingRedisHealthIndicator } from '../../lib/health/index.js';
import { RingCached, RingRedisModule, RingRedisService } from '../../lib/index.js';
import { fast, useNestApps } from '../helpers/nest-apps.js';
import { redisCommand } from '../helpers/redis-command.js';
import { until } from '../helpers/wait.js';

/**
 * The near cache in a Nest app: a `@RingCached` hit of a group with a near cache is answered
 * from process memory, a write elsewhere still reaches the method's callers, and the health
 * check shows each node's invalidation channel.
 */

const apps = useNestApps();

let computed = 0;

@Injectable()
class Profiles {
  @RingCached({ prefix: 'near-nest:', ttl: 60 })
  async profile(id: number): Promise<{ id: number; name: string }> {
    computed++;
    return { id, name: `user ${id}` };
  }
}

async function boot() {
  const app = await apps.boot({
    imports: [
      TerminusModule,
      RingRedisModule.forRoot({
        groups: { default: apps.nodes() },
        defaults: fast,
        groupOptions: { default: { nearCache: { maxEntries: 1000 } } },
      }),
    ],
    providers: [Profiles, RingRedisHealthIndicator],
  });
  const dict = app.get(RingRedisService).getOrThrow('default');
  await until(
    () => dict.nodeStates().every((state) => state.invalidation === 'up'),
    3_000,
    'channels up',
  );
  return { app, dict, profiles: app.get(Profiles), health: app.get(RingRedisHealthIndicator) };
}

/** GETs every server has run so far. */
async function gets(): Promise<number> {
  let total = 0;
  for (const server of apps.fleet.servers) {
    const stats = await redisCommand(server.port, 'INFO', 'commandstats');
    total += Number(/cmdstat_get:calls=(\d+)/.exec(stats)?.[1] ?? 0);
  }
  return total;
}

describe('@RingCached with a near cache', () => {
  it('answers a hit from memory, and sees a DEL made by another client', async () => {
    const { profiles } = await boot();
    computed = 0;
    expect(await profiles.profile(7)).toEqual({ id: 7, name: 'user 7' });
    expect(computed).toBe(1);
    // The first hits read Redis: the miss stored the value, and Redis' invalidation of that
    // write (this process had read the key) drops what a read just before it kept.
    await until(
      async () => {
        const was = await gets();
        await profiles.profile(7);
        return (await gets()) === was;
      },
      1_000,
      'a hit from memory',
    );
    const before = await gets();
    for (let i = 0; i < 20; i++) {
      const hit = await profiles.profile(7);
      expect(hit).toEqual({ id: 7, name: 'user 7' });
      hit.name = 'changed by the caller';
    }
    expect(await gets()).toBe(before);
    expect(computed).toBe(1);

    // The entry deleted behind the process's back: the next call runs the method again.
    let deleted = 0;
    for (const server of apps.fleet.servers) {
      const keys = (await redisCommand(server.port, 'KEYS', 'near-nest:*')).split('\n');
      for (const key of keys.filter(Boolean)) {
        deleted += Number(await redisCommand(server.port, 'DEL', key));
      }
    }
    expect(deleted).toBe(1);
    await until(
      async () => {
        await profiles.profile(7);
        return computed === 2;
      },
      1_000,
      'the method ran again',
    );
  });

  it("shows each node's invalidation channel in the health details", async () => {
    const { health } = await boot();
    const details = health.isHealthy('ring')['ring'];
    expect(details.status).toBe('up');
    const nodes = (details as unknown as { groups: Record<string, { nodes: object }> }).groups
      .default.nodes;
    for (const node of Object.values(nodes)) expect(node).toMatchObject({ invalidation: 'up' });
  });
});
