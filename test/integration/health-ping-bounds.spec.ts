import 'reflect-metadata';
import { TerminusModule } from '@nestjs/terminus';
import { afterEach, describe, expect, it } from 'vitest';
import { RingRedisHealthIndicator } from '../../lib/health/index.js';
import { RingArgumentError, RingRedisModule, RingRedisService } from '../../lib/index.js';
import { useNestApps } from '../helpers/nest-apps.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

/**
 * The bounds of a `ping`: the check takes at most its timeout, connect included, an answer
 * after it is no answer, and a timeout no timer can hold is refused.
 */

const apps = useNestApps({ servers: 2 });
const proxies: TcpProxy[] = [];
afterEach(async () => {
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});

/**
 * Over a link delayed `delayMs` each way, a connect takes 3 round trips and the PING one more
 * (measured with 200 ms: 1.2 s to connect, 1.6 s with the PING).
 */
const DELAY = 200;
/** Room for the connect (1.2 s), not for the PING after it (1.6 s in all). */
const TIMEOUT = 1350;
/** A loaded 2-core machine runs timers late by some tens of ms. */
const MARGIN = 150;

/** node0 direct, node1 behind a proxy delayed `delayMs`; neither connected yet. */
async function boot(delayMs: number) {
  const proxy = await TcpProxy.start(apps.fleet.servers[1].port);
  proxies.push(proxy);
  proxy.delay(delayMs);
  const app = await apps.boot({
    imports: [
      RingRedisModule.forRoot({
        groups: { test: { node0: apps.fleet.servers[0].url, node1: proxy.url } },
        // commandTimeout beyond TIMEOUT: only the ping's own timeout bounds it.
        defaults: { heartbeatInterval: 0, commandTimeout: 3000, retryRatio: 0, lazyConnect: true },
        isGlobal: true,
      }),
      TerminusModule,
    ],
    providers: [RingRedisHealthIndicator],
  });
  const dict = app.get(RingRedisService).getOrThrow('test');
  return { dict, indicator: app.get(RingRedisHealthIndicator) };
}

describe('ping: one deadline for connect and PING', () => {
  it('isHealthy: a node that connects in time but answers after the timeout is down, within the timeout', async () => {
    const { dict, indicator } = await boot(DELAY);
    const started = performance.now();
    const result = await indicator.isHealthy('ring', { minAlive: 2, ping: { timeout: TIMEOUT } });
    const took = performance.now() - started;
    expect(took).toBeLessThanOrEqual(TIMEOUT + MARGIN);
    expect(result.ring.status).toBe('down');
    expect(result.ring.groups.test.nodes.node1).toMatchObject({
      alive: false,
      ping: { ok: false, error: expect.stringMatching(new RegExp(`within ${TIMEOUT} ms`)) },
    });
    // Ejected, as a request would have it: the next request does not wait on it.
    expect(dict.nodeStates()[1].alive).toBe(false);
  });

  it('RingDict.ping: the same bound, and the late answer does not count', async () => {
    const { dict } = await boot(DELAY);
    const started = performance.now();
    const answers = await dict.ping({ timeout: TIMEOUT });
    const took = performance.now() - started;
    expect(took).toBeLessThanOrEqual(TIMEOUT + MARGIN);
    expect(answers[0]).toMatchObject({ name: 'node0', alive: true, ok: true });
    expect(answers[1]).toMatchObject({ name: 'node1', alive: false, ok: false });
  });

  it('a slow link that still answers in time: up, the answer within the timeout', async () => {
    // 50 ms each way: connect and PING in about 400 ms.
    const { indicator } = await boot(50);
    const result = await indicator.isHealthy('ring', { minAlive: 2, ping: { timeout: TIMEOUT } });
    expect(result.ring.status).toBe('up');
    const { ping } = result.ring.groups.test.nodes.node1;
    expect(ping.ok).toBe(true);
    expect(ping.ms).toBeLessThanOrEqual(TIMEOUT);
  });
});

describe('ping: a timeout a timer can hold', () => {
  const MAX_TIMER_MS = 2 ** 31 - 1;

  it('isHealthy: 2^31 ms is refused naming ping.timeout; 2^31 - 1 is accepted', async () => {
    const { indicator } = await boot(0);
    const refused = await indicator.isHealthy('ring', { ping: { timeout: MAX_TIMER_MS + 1 } });
    expect(refused).toEqual({
      ring: {
        status: 'down',
        message: `ping.timeout must be at most ${MAX_TIMER_MS} ms (about 24.8 days), got ${MAX_TIMER_MS + 1}`,
      },
    });
    const accepted = await indicator.isHealthy('ring', {
      minAlive: 2,
      ping: { timeout: MAX_TIMER_MS },
    });
    expect(accepted.ring.status).toBe('up');
  });

  it('RingDict.ping: 2^31 ms is a RingArgumentError naming the option', async () => {
    const { dict } = await boot(0);
    const refused = dict.ping({ timeout: MAX_TIMER_MS + 1 });
    await expect(refused).rejects.toThrow(RingArgumentError);
    await expect(refused).rejects.toThrow(
      /^ping: timeout must be a whole number of milliseconds from 1 to 2147483647, got .*2147483648$/,
    );
    const answers = await dict.ping({ timeout: MAX_TIMER_MS });
    expect(answers.map((a) => a.ok)).toEqual([true, true]);
  });
});
