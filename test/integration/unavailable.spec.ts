import { describe, expect, it } from 'vitest';
import { RingClusterUnavailableError } from '../../lib/index.js';
import { FAILURE_TIMINGS, SETTLE, TEST_TIMEOUT } from '../helpers/failure-scenes.js';
import { collect, saw, useRingDicts } from '../helpers/ring-dicts.js';
import { until } from '../helpers/wait.js';

/**
 * No node alive: `unavailable` fires once per outage — with no request at all, and again after
 * a node came back and went — and a request that every node failed while some came back says
 * just that, without an `unavailable`.
 */

const fixture = useRingDicts(FAILURE_TIMINGS);

describe('unavailable after a recovery', () => {
  it(
    'a second total outage after a node came back fires unavailable again',
    TEST_TIMEOUT,
    async () => {
      const dict = fixture.dict();
      const events = collect(dict);
      await dict.connect();

      await Promise.all(fixture.fleet.servers.map((server) => server.kill()));
      await until(() => saw(events, 'unavailable') === 1, SETTLE);
      await expect(dict.get('x')).rejects.toBeInstanceOf(RingClusterUnavailableError);

      await fixture.serverOf('node0').restart();
      await until(() => saw(events, 'rediscovered', 'node0') === 1, SETTLE);
      await dict.set('x', 'back');
      expect(await dict.get('x')).toBe('back');

      await fixture.serverOf('node0').kill();
      await until(() => !dict.nodeStates()[0].alive, SETTLE);
      await expect(dict.get('x')).rejects.toBeInstanceOf(RingClusterUnavailableError);
      await expect(dict.set('x', 1)).rejects.toBeInstanceOf(RingClusterUnavailableError);
      // Once per transition to "no node alive": one for each outage, not one per call.
      expect(saw(events, 'unavailable')).toBe(2);
      expect(events.map((e) => e.type)).toEqual([
        'ejected',
        'ejected',
        'ejected',
        'unavailable',
        'rediscovered',
        'ejected',
        'unavailable',
      ]);
    },
  );
});

describe('a request that every node failed while some came back', () => {
  it(
    'says every node failed this request, not that no node is alive, and fires no unavailable',
    TEST_TIMEOUT,
    async () => {
      // A revival asks the other alive nodes what was written meanwhile; two hung ones cost it
      // up to commandTimeout, which the request itself takes three times over.
      const dict = fixture.dict({ heartbeatInterval: 20, commandTimeout: 1_000 });
      const events = collect(dict);
      await dict.connect();
      for (const server of fixture.fleet.servers) server.hang();
      // The first node to time out answers again at once, and rejoins while the request
      // is still waiting on the others.
      const first = dict.events$.subscribe((event) => {
        if (event.type !== 'ejected') return;
        first.unsubscribe();
        fixture.serverOf(event.node!).resume();
      });
      const error = await dict.get('x').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(RingClusterUnavailableError);
      expect((error as Error).message).toMatch(
        /^RingDict "default": every node failed this request \(node0: .*no reply within 1000 ms/,
      );
      expect(dict.aliveHash.size).toBe(1);
      expect(saw(events, 'unavailable')).toBe(0);
    },
  );
});

describe('unavailable without a request', () => {
  it(
    'every node killed: the ejections alone fire unavailable, no command needed',
    TEST_TIMEOUT,
    async () => {
      const dict = fixture.dict();
      const events = collect(dict);
      await dict.connect();
      expect(events).toEqual([]);

      // No request from here on: each lost connection is retried once, refused, ejected.
      await Promise.all(fixture.fleet.servers.map((server) => server.kill()));
      await until(() => saw(events, 'unavailable') === 1, SETTLE);
      expect(events.map((e) => e.type)).toEqual(['ejected', 'ejected', 'ejected', 'unavailable']);
      expect(events[3]).toMatchObject({ type: 'unavailable', at: expect.any(Date) });
      expect(events[3].node).toBeUndefined();
      expect(dict.aliveHash.size).toBe(0);
      expect(dict.nodeStates().map((s) => s.alive)).toEqual([false, false, false]);
    },
  );
});
