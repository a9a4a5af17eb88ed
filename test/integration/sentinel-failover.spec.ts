import { describe, expect, it } from 'vitest';
import { redisCommand } from '../helpers/redis-command.js';
import { collect, useRingDicts } from '../helpers/ring-dicts.js';
import { FAILOVER_BUDGET_MS, useSentinelGroup } from '../helpers/sentinel.js';
import { until } from '../helpers/wait.js';

/**
 * A Sentinel node through failovers the sentinels announce: a planned one (SENTINEL FAILOVER),
 * where the old master stays up and must be left at once, and one that a sentinel announces
 * late, naming the new master by host name.
 */

/** One plain server; dicts with the suite's timings and no probing, closed after each test. */
const fixture = useRingDicts(
  { commandTimeout: 200, heartbeatInterval: 100, retryRatio: 0 },
  { servers: 1 },
);

describe('a planned failover (SENTINEL FAILOVER: the old master stays up)', () => {
  const planned = useSentinelGroup({ name: 'planned' });

  it('leaves the old master as soon as the sentinels announce the switch', async () => {
    const dict = fixture.dict<number>({
      nodes: {
        plain0: { capacity: 1, connection: fixture.fleet.servers[0].url },
        ha: { capacity: 1, connection: planned.group.connection() },
      },
      prefix: 'planned:',
    });
    const events = collect(dict);
    const from = `127.0.0.1:${planned.group.master.port}`;
    const to = `127.0.0.1:${planned.group.replica.port}`;
    const keys = Array.from({ length: 40 }, (_, i) => `k${i}`);
    const haKeys = keys.filter((k) => dict.totalHash.locate(dict.getEntry(k)) === 'ha');
    expect(haKeys.length).toBeGreaterThan(5);
    for (const key of keys) await dict.set(key, 0);
    expect(await redisCommand(planned.group.master.port, 'WAIT', '1', '2000')).toBe('1');

    let round = 0;
    let thrown = 0;
    let running = true;
    const traffic = (async () => {
      while (running) {
        round++;
        for (const key of keys) {
          try {
            await dict.set(key, round);
          } catch {
            thrown++;
          }
        }
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    const requestedAt = performance.now();
    expect(
      await redisCommand(planned.group.sentinels[0].port, 'SENTINEL', 'FAILOVER', 'planned'),
    ).toBe('OK');
    await until(
      () => events.some((e) => e.type === 'rediscovered' && e.failover !== undefined),
      FAILOVER_BUDGET_MS,
      'ha rediscovered on the new master',
    );
    const switchedMs = performance.now() - requestedAt;
    await new Promise((resolve) => setTimeout(resolve, 100));
    running = false;
    await traffic;
    expect(thrown).toBe(0);

    const ha = events.filter((e) => e.node === 'ha');
    expect(ha.map((e) => e.type)).toEqual(['ejected', 'rediscovered']);
    expect(ha[0].error?.message).toBe(
      `Sentinel moved the master of "planned" from ${from} to ${to}`,
    );
    expect(ha[1]).toMatchObject({ master: to, failover: { from, to } });
    console.log(
      `[sentinel] planned failover ${from} → ${to}: back on the new master ` +
        `${switchedMs.toFixed(0)} ms after SENTINEL FAILOVER, out of the ring for ` +
        `${(ha[1].at.getTime() - ha[0].at.getTime()).toFixed(0)} ms`,
    );

    // Writes now land on the new master, and only there: the old one, still up and still
    // calling itself master until Sentinel reconfigures it, gets none of them.
    for (const key of haKeys) await dict.set(key, -1);
    for (const key of haKeys) {
      expect(await dict.get(key)).toBe(-1);
      expect(await redisCommand(planned.group.replica.port, 'GET', dict.getEntry(key))).toBe('-1');
      expect(await redisCommand(planned.group.master.port, 'GET', dict.getEntry(key))).not.toBe(
        '-1',
      );
    }
    expect(dict.nodeStates().find((s) => s.name === 'ha')).toMatchObject({
      alive: true,
      master: to,
      failovers: 1,
    });
  });
});

describe('sentinels that name the master by host name (here a natMap to "localhost")', () => {
  const named = useSentinelGroup({ name: 'named' });

  it('a sentinel that announces the failover late does not eject the node from the new master', async () => {
    const dict = fixture.dict<number>({
      nodes: {
        ha: {
          capacity: 1,
          connection: {
            ...named.group.connection(),
            natMap: (key: string) => ({ host: 'localhost', port: Number(key.split(':').pop()) }),
          },
        },
      },
      prefix: 'named:',
    });
    const events = collect(dict);
    await dict.set('k', 1);

    // One sentinel is cut off during the failover: it hears of it, and announces it, late.
    const late = named.group.sentinels[2];
    process.kill(late.pid, 'SIGSTOP');
    try {
      expect(
        await redisCommand(named.group.sentinels[0].port, 'SENTINEL', 'FAILOVER', 'named'),
      ).toBe('OK');
      await until(
        () => events.some((e) => e.type === 'rediscovered' && e.failover !== undefined),
        FAILOVER_BUDGET_MS,
        'ha rediscovered on the new master',
      );
    } finally {
      process.kill(late.pid, 'SIGCONT');
    }
    // The late sentinel names the new master "localhost:<port>"; the node reached it as
    // 127.0.0.1:<port>: the same server.
    const master = await named.group.currentMaster();
    await until(
      async () =>
        (await redisCommand(late.port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', 'named')).endsWith(
          master.split(':')[1],
        ),
      FAILOVER_BUDGET_MS,
      'the late sentinel names the new master',
    );
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(events.filter((e) => e.node === 'ha').map((e) => e.type)).toEqual([
      'ejected',
      'rediscovered',
    ]);
    // The promoted replica was cleared before it served (it may have missed the last writes);
    // the node serves again on the new master.
    expect(await dict.get('k')).toBeUndefined();
    await dict.set('k', 2);
    expect(await dict.get('k')).toBe(2);
  }, 60_000);
});
