import { describe, expect, it } from 'vitest';
import { RingClusterUnavailableError, type RingDict } from '../../lib/index.js';
import { FAILURE_TIMINGS, SETTLE, TEST_TIMEOUT, whileHung } from '../helpers/failure-scenes.js';
import { redisCommand } from '../helpers/redis-command.js';
import { collect, keysOwnedBy, saw, useRingDicts } from '../helpers/ring-dicts.js';
import { until } from '../helpers/wait.js';

/**
 * size(), keys(), entries() and clearPrefix() over nodes that fail: a stale copy on a
 * non-owner is not counted twice, and nodes that all stop answering make a scan fail instead
 * of reporting an empty dict.
 */

const fixture = useRingDicts(FAILURE_TIMINGS);

async function listKeys<F>(dict: RingDict<string, F>): Promise<string[]> {
  const listed: string[] = [];
  for await (const key of dict.keys()) listed.push(key);
  return listed;
}

describe('size() and keys() with stale copies', () => {
  it(
    "count only the owner's copy when a non-owner still holds one (handoffLimit 0)",
    TEST_TIMEOUT,
    async () => {
      const dict = fixture.dict<string>({ prefix: 'own:', handoffLimit: 0 });
      const events = collect(dict);
      const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
      for (const key of keys) await dict.set(key, 'v1');
      const [stale] = keysOwnedBy(dict, 'node0', 1);
      expect(keys).toContain(stale);

      fixture.serverOf('node0').hang();
      // Ejected by a read: a write sent to the hung node0 would still land there once resumed.
      await dict.get(stale);
      await dict.set(stale, 'v2'); // on node0's heir
      const heir = dict.aliveHash.locate(dict.getEntry(stale))!;
      expect(heir).not.toBe('node0');
      fixture.serverOf('node0').resume();
      // No handoff: node0 rejoins with its own v1, the heir keeps its v2 copy.
      await until(() => saw(events, 'rediscovered', 'node0') === 1, SETTLE);
      expect(events.find((e) => e.type === 'rediscovered')?.handoff).toBeUndefined();
      const entry = dict.getEntry(stale);
      expect(await redisCommand(fixture.serverOf('node0').port, 'GET', entry)).toBe('"v1"');
      expect(await redisCommand(fixture.serverOf(heir).port, 'GET', entry)).toBe('"v2"');

      expect(await dict.size()).toBe(keys.length);
      const listed: string[] = [];
      for await (const key of dict.keys()) listed.push(key);
      expect(listed.sort()).toEqual([...keys].sort());
      const entries: [string, string][] = [];
      for await (const pair of dict.entries()) entries.push(pair);
      // Once, with the owner's value, as get() reads it.
      expect(entries.filter(([key]) => key === stale)).toEqual([[stale, 'v1']]);
      expect(await dict.get(stale)).toBe('v1');
      expect(entries).toHaveLength(keys.length);
    },
  );
});

describe('scans when every node stops answering', () => {
  it.each([
    ['size()', (dict: RingDict<string, string>) => dict.size()],
    ['keys()', listKeys],
    ['clearPrefix()', (dict: RingDict<string, string>) => dict.clearPrefix('x')],
  ])(
    '%s fails as unavailable, or answers onFail, instead of reporting an empty dict',
    { timeout: 20_000 },
    async (_, scan) => {
      const dict = fixture.dict<string, string>({ prefix: 'allhung:', heartbeatInterval: 0 });
      const withOnFail = fixture.dict<string, string>({
        prefix: 'allhung:',
        heartbeatInterval: 0,
        onFail: () => 'unavailable',
      });
      await dict.set('a', '1');
      await dict.connect();
      await withOnFail.connect();
      for (const server of fixture.fleet.servers) server.hang();
      try {
        await expect(scan(dict)).rejects.toBeInstanceOf(RingClusterUnavailableError);
        if (scan !== listKeys) expect(await scan(withOnFail)).toBe('unavailable');
      } finally {
        for (const server of fixture.fleet.servers) server.resume();
      }
    },
  );
});

describe('scans with replicas and a hung node', () => {
  // The scan's EXISTS to a copy on the hung node ejected it, and its turn then connected to it
  // again: two commandTimeouts.
  it.each([
    ['size()', (dict: RingDict<string>) => dict.size()],
    ['keys()', async (dict: RingDict<string>) => (await listKeys(dict)).length],
  ])(
    '%s answers within one commandTimeout, counting the copies left',
    TEST_TIMEOUT,
    async (_, scan) => {
      const dict = fixture.dict<string>({ prefix: 'scanhung:', replicas: 2, heartbeatInterval: 0 });
      const keys = Array.from({ length: 60 }, (_, i) => `k${i}`);
      await dict.setMany(keys.map((key) => [key, 'v']));
      const hung = fixture.serverOf('node1');
      await whileHung(hung, async () => {
        const started = performance.now();
        const counted = await scan(dict);
        expect(performance.now() - started).toBeLessThan(FAILURE_TIMINGS.commandTimeout + 150);
        // Every entry has a copy on node0 or node2.
        expect(counted).toBe(60);
      });
    },
  );
});
