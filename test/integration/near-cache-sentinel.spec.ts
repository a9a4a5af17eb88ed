import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { commandCalls, redisCommand } from '../helpers/redis-command.js';
import { collect, useRingDicts } from '../helpers/ring-dicts.js';
import { FAILOVER_BUDGET_MS, useSentinelGroup } from '../helpers/sentinel.js';
import { until } from '../helpers/wait.js';

/**
 * The near cache of a Sentinel node through a planned failover: the old master stays up (and
 * becomes a replica), so its invalidations would go on arriving while the node is on the new
 * master — the entries are dropped at the switch, and the channel follows the node onto the new
 * master before anything is held again.
 */

const fixture = useRingDicts(
  { commandTimeout: 200, heartbeatInterval: 100, retryRatio: 0, nearCache: {} },
  { servers: 0 },
);
const sentinel = useSentinelGroup({ name: 'nearha' });
const run = promisify(execFile);

function gets(port: number): Promise<number> {
  return commandCalls([port], ['get']);
}

describe('a Sentinel master switch', () => {
  it(
    'drops the entries and moves the channel to the new master',
    { timeout: FAILOVER_BUDGET_MS + 10_000 },
    async () => {
      const group = sentinel.group;
      const dict = fixture.dict<string>({
        nodes: { ha: { capacity: 1, connection: group.connection() } },
        prefix: 'nearha:',
      });
      const events = collect(dict);
      await dict.connect();
      await until(() => dict.nodeStates()[0].invalidation === 'up', 3_000, 'channel up');
      const from = group.master.port;
      const to = group.replica.port;
      await dict.set('k', 'before');
      expect(await redisCommand(from, 'WAIT', '1', '2000')).toBe('1');
      await until(
        async () => {
          await dict.get('k');
          const before = await gets(from);
          await dict.get('k');
          return (await gets(from)) === before;
        },
        3_000,
        'held in memory',
      );

      expect(await redisCommand(group.sentinels[0].port, 'SENTINEL', 'FAILOVER', 'nearha')).toBe(
        'OK',
      );
      await until(
        () => events.some((e) => e.type === 'rediscovered' && e.failover !== undefined),
        FAILOVER_BUDGET_MS,
        'rediscovered on the new master',
      );
      expect(events.filter((e) => e.node === 'ha').map((e) => e.type)).toEqual([
        'ejected',
        'rediscovered',
      ]);
      await until(() => dict.nodeStates()[0].invalidation === 'up', 3_000, 'channel up again');
      // The subscriber (the one pubsub connection without a name: the sentinels' and the
      // fleet view's have one) is on the new master, not on the demoted one.
      const subscribers = async (port: number) =>
        (await redisCommand(port, 'CLIENT', 'LIST', 'TYPE', 'pubsub'))
          .split('\n')
          .filter((line) => line.includes(' name= ')).length;
      expect(await subscribers(to)).toBe(1);
      expect(await subscribers(from)).toBe(0);

      // The promoted replica's data was cleared on the way back (see hinted handoff): the
      // held 'before' must not be served either.
      expect(await dict.get('k')).toBeUndefined();
      await dict.set('k', 'again');
      await until(
        async () => {
          await dict.get('k');
          const before = await gets(to);
          await dict.get('k');
          return (await gets(to)) === before;
        },
        3_000,
        'held in memory from the new master',
      );
      await run('redis-cli', ['-p', String(to), 'SET', dict.getEntry('k'), '"after"']);
      await until(async () => (await dict.get('k')) === 'after', 1_000, 'the write seen');
    },
  );
});
