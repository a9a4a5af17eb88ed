import 'reflect-metadata';
import { Injectable } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RingCacheService, RingCached, RingRedisModule } from '../../lib/index.js';
import { InMemoryMetrics } from '../helpers/metric-reader.js';
import { fast, useNestApps } from '../helpers/nest-apps.js';
import { sleep } from '../helpers/wait.js';

/**
 * `ring_redis.cached.calls` read back through an in-memory OpenTelemetry SDK: every call of a
 * `@RingCached` method and of `wrap()` counted once, by group, `Class.method` and outcome,
 * against real redis-servers, including a ring with every node down.
 */

@Injectable()
class Weather {
  runs = 0;
  failing = false;

  @RingCached({ ttl: 60 })
  async forecast(city: unknown): Promise<string> {
    return this.run(city);
  }

  @RingCached({ ttl: '100ms', grace: '10s', graceBackoff: '10s' })
  async graced(city: string): Promise<string> {
    return this.run(city);
  }

  @RingCached({ ttl: '100ms', grace: '10s', softTimeout: '50ms' })
  async patient(city: string): Promise<string> {
    return this.run(city);
  }

  delayMs = 0;

  private async run(city: unknown): Promise<string> {
    this.runs++;
    if (this.delayMs > 0) await sleep(this.delayMs);
    if (this.failing) throw new Error('backend down');
    return `sunny in ${String(city)} (${this.runs})`;
  }
}

const nest = useNestApps();
let sdk: InMemoryMetrics;

beforeAll(() => {
  sdk = InMemoryMetrics.register();
});
afterAll(async () => {
  await sdk.shutdown();
});

/** `method|outcome → count` of ring_redis.cached.calls in group `default`. */
async function calls(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const { attributes: a, value } of await sdk.points('ring_redis.cached.calls')) {
    expect(Object.keys(a).sort()).toEqual(['group', 'method', 'outcome']);
    expect(a.group).toBe('default');
    out[`${String(a.method)}|${String(a.outcome)}`] = value;
  }
  return out;
}

describe('ring_redis.cached.calls', () => {
  it('counts each call once: hit, miss, stale, bypass, error', { timeout: 20_000 }, async () => {
    const app = await nest.boot({
      imports: [
        RingRedisModule.forRoot({
          groups: { default: nest.nodes() },
          // Exact counts: a slow reply of a loaded machine must not eject a node.
          defaults: { prefix: 'metrics:', ...fast, commandTimeout: 3_000 },
        }),
      ],
      providers: [Weather],
    });
    const weather = app.get(Weather);
    const cache = app.get(RingCacheService);

    expect(await weather.forecast('Paris')).toBe('sunny in Paris (1)');
    expect(await weather.forecast('Paris')).toBe('sunny in Paris (1)');
    expect(await weather.forecast('Paris')).toBe('sunny in Paris (1)');
    weather.failing = true;
    await expect(weather.forecast('Oslo')).rejects.toThrow('backend down');
    weather.failing = false;
    // Arguments that cannot be keyed: the method runs uncached.
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(await weather.forecast(circular)).toMatch(/^sunny in/);

    expect(await weather.graced('Lima')).toMatch(/^sunny in Lima/);
    await sleep(250);
    weather.failing = true;
    // Past its ttl, in grace: the method fails and the stale value answers, then the
    // method is left alone for graceBackoff and the stale value answers at once.
    const stale = await weather.graced('Lima');
    expect(stale).toMatch(/^sunny in Lima/);
    expect(await weather.graced('Lima')).toBe(stale);
    weather.failing = false;

    // Past its ttl, in grace, the method slower than softTimeout: the stale value answers.
    const first = await weather.patient('Quito');
    await sleep(250);
    weather.delayMs = 400;
    expect(await weather.patient('Quito')).toBe(first);
    weather.delayMs = 0;

    expect(await cache.wrap('report', async () => 'quiet')).toBe('quiet');
    expect(await cache.wrap('report', async () => 'never run')).toBe('quiet');

    // Every node down: the cache is bypassed and the method answers.
    for (const server of nest.fleet.servers) await server.kill();
    expect(await weather.forecast('Rome')).toMatch(/^sunny in Rome/);

    expect(await calls()).toEqual({
      'Weather.forecast|miss': 1,
      'Weather.forecast|hit': 2,
      'Weather.forecast|error': 1,
      'Weather.forecast|bypass': 2,
      'Weather.graced|miss': 1,
      'Weather.graced|stale': 2,
      'Weather.patient|miss': 1,
      'Weather.patient|stale': 1,
      'RingCacheService.wrap|miss': 1,
      'RingCacheService.wrap|hit': 1,
    });
  });
});
