import { describe, expect, it } from 'vitest';
import type { RingDict } from '../../lib/index.js';
import {
  FAILURE_TIMINGS,
  hangUntilEjected,
  SETTLE,
  TEST_TIMEOUT,
} from '../helpers/failure-scenes.js';
import { collect, keysOwnedBy, saw, useRingDicts } from '../helpers/ring-dicts.js';
import { until } from '../helpers/wait.js';
import { noDataKeys } from '../helpers/data-keys.js';

/**
 * clear() while nodes stop answering and come back: whatever the clear missed on a node that
 * was out, or that was written for it meanwhile, is deleted before the node serves again.
 */

const fixture = useRingDicts(FAILURE_TIMINGS);

describe('clear() while a node stops answering', () => {
  it('the node deletes what the clear missed before it serves again', TEST_TIMEOUT, async () => {
    const dict = fixture.dict<string>({ prefix: 'clr:' });
    const events = collect(dict);
    const keys = keysOwnedBy(dict, 'node1', 5);
    for (const key of keys) await dict.set(key, 'old');
    await dict.connect();
    fixture.serverOf('node1').hang();
    try {
      // node1's SCAN times out: ejected in the middle of the clear.
      await dict.clear();
      expect(saw(events, 'ejected', 'node1')).toBe(1);
    } finally {
      fixture.serverOf('node1').resume();
    }
    await until(() => saw(events, 'rediscovered', 'node1') === 1, SETTLE);
    for (const key of keys) expect(await dict.get(key)).toBeUndefined();
  });

  it(
    'a node ejected and back before the clear ends is cleared all the same',
    { timeout: 20_000 },
    async () => {
      const dict = fixture.dict<string>({ prefix: 'clr2:', commandTimeout: 1_000 });
      const events = collect(dict);
      const keys = [...keysOwnedBy(dict, 'node1', 5), ...keysOwnedBy(dict, 'node2', 5)];
      for (const key of keys) await dict.set(key, 'old');
      await dict.connect();
      // The clear scans node0, node1, node2 in turn. node1 is back while node2 still hangs.
      dict.events$.subscribe((event) => {
        if (event.type === 'ejected' && event.node === 'node1') fixture.serverOf('node1').resume();
      });
      fixture.serverOf('node1').hang();
      fixture.serverOf('node2').hang();
      try {
        await dict.clear();
        expect(events.map((e) => `${e.type} ${e.node}`).slice(0, 3)).toEqual([
          'ejected node1',
          'rediscovered node1',
          'ejected node2',
        ]);
      } finally {
        fixture.serverOf('node1').resume();
        fixture.serverOf('node2').resume();
      }
      await until(() => saw(events, 'rediscovered', 'node2') === 1, SETTLE);
      for (const key of keys) expect(await dict.get(key)).toBeUndefined();
    },
  );
});

describe('clear() while an ejected node comes back', () => {
  it.each([0, 10, 30, 60])(
    'the values written for it meanwhile are cleared too, not handed back (back after %i ms)',
    TEST_TIMEOUT,
    async (delay) => {
      const dict = fixture.dict<string>({ prefix: `clrback${delay}:`, heartbeatInterval: 10 });
      const events = collect(dict);
      const keys = keysOwnedBy(dict, 'node1', 50);
      const [probe] = keysOwnedBy(dict, 'node1', 1, { tag: 'probe' });
      // Enough entries that the clear's SCANs take a while, so the return lands inside it.
      await dict.setMany(Array.from({ length: 30_000 }, (_, i) => [`filler${i}`, 'x'] as const));
      await hangUntilEjected(fixture, dict, events, 'node1', probe);
      // On node0 and node2, remembered for node1's handoff.
      await dict.setMany(keys.map((key) => [key, 'old'] as const));
      const cleared = dict.clear();
      setTimeout(() => fixture.serverOf('node1').resume(), delay);
      await cleared;
      await until(() => saw(events, 'rediscovered', 'node1') === 1, SETTLE);
      expect((await dict.getMany(keys)).filter((v) => v !== undefined)).toEqual([]);
    },
  );
});

describe('the end of a clear, while nodes come and go', () => {
  /**
   * A dict whose clear takes a while: node2 holds 150 000 entries, node1 60 000. node1 stops
   * answering as the clear starts and is back (ejected, rediscovered) before node2's scan
   * ends, so the clear's catch-up must delete node1's entries. `atScanEnd` runs once node2's
   * entries are all gone, as the catch-up begins.
   */
  async function clearWithNode1Flapping(
    dict: RingDict<string>,
    atScanEnd: () => Promise<void> | void,
  ): Promise<string> {
    await dict.connect();
    const fill = (owner: string, count: number, tag: string) =>
      dict.setMany(keysOwnedBy(dict, owner, count, { tag }).map((k) => [k, 'x'] as const));
    await fill('node2', 150_000, 'z');
    await fill('node1', 60_000, 'h');
    let settled = false;
    const scanEnd = until(
      async () => settled || (await noDataKeys(fixture.serverOf('node2').port)),
      20_000,
    ).then(() => (settled ? undefined : atScanEnd()));
    fixture.serverOf('node1').hang();
    const subscription = dict.events$.subscribe((event) => {
      if (event.type === 'ejected' && event.node === 'node1') fixture.serverOf('node1').resume();
    });
    try {
      return await dict.clear().then(
        (count) => `resolved ${count}`,
        (error: Error) => `rejected ${error.message}`,
      );
    } finally {
      settled = true;
      subscription.unsubscribe();
      await scanEnd;
    }
  }

  it(
    'a node out since before the clear, back at its end, is not handed values the clear deleted',
    { timeout: 30_000 },
    async () => {
      const dict = fixture.dict<string>({ prefix: 'clrend:', heartbeatInterval: 10 });
      const events = collect(dict);
      const keys = keysOwnedBy(dict, 'node0', 200, { heir: 'node1' });
      const [probe] = keysOwnedBy(dict, 'node0', 1, { tag: 'probe' });
      await hangUntilEjected(fixture, dict, events, 'node0', probe);
      // On node1, remembered for node0's handoff.
      await dict.setMany(keys.map((key) => [key, 'old'] as const));
      const outcome = await clearWithNode1Flapping(dict, () => fixture.serverOf('node0').resume());
      expect(outcome).toMatch(/^resolved/);
      await until(() => saw(events, 'rediscovered', 'node0') === 1, SETTLE);
      await until(() => dict.aliveHash.size === 3, SETTLE);
      expect((await dict.getMany(keys)).filter((v) => v !== undefined)).toEqual([]);
    },
  );

  it('close() then rejects the clear as closed', { timeout: 30_000 }, async () => {
    const dict = fixture.dict<string>({ prefix: 'clrclose:', heartbeatInterval: 10 });
    const outcome = await clearWithNode1Flapping(dict, () => dict.close());
    expect(outcome).toMatch(/^rejected RingDict "default" is closed/);
  });
});
