import { describe, expect, it } from 'vitest';
import type { RingDict } from '../../lib/index.js';
import { FAILURE_TIMINGS, SETTLE } from '../helpers/failure-scenes.js';
import { ringNodes } from '../helpers/redis-fleet.js';
import { collect, keysOwnedBy, saw, useRingDicts } from '../helpers/ring-dicts.js';
import { until } from '../helpers/wait.js';

/**
 * An heir restarted while it holds the hints of an owner that is out: its hints are lost, so the
 * owner's return must find them incomplete (the overflow policy clears it), never come back with
 * the values the writes it missed replaced. Each test fails on the code before: 50 of 50 stale.
 */

const TIMEOUT = { timeout: 30_000 };

/** The answers of `keys` that are `v1`, the value before the owner went out. */
async function staleOf(dict: RingDict<string>, keys: readonly string[]): Promise<number> {
  const values = await dict.getMany(keys);
  return values.filter((value) => value === 'v1').length;
}

describe('two nodes: the only other node restarts', () => {
  const fixture = useRingDicts(FAILURE_TIMINGS, { servers: 2 });

  // The notes of the owner's heirs were on the restarted node alone: its return found none.
  it('the returning owner serves none of the values it missed', TIMEOUT, async () => {
    const dict = fixture.dict<string>({ nodes: ringNodes(fixture.fleet.servers), prefix: 'hr2:' });
    const events = collect(dict);
    const keys = keysOwnedBy(dict, 'node0', 50);
    await dict.setMany(keys.map((key) => [key, 'v1']));
    const owner = fixture.serverOf('node0');
    owner.hang();
    try {
      await dict.get(keys[0]);
      await until(() => saw(events, 'ejected', 'node0') === 1, SETTLE);
      await dict.setMany(keys.map((key) => [key, 'v2']));
      await fixture.serverOf('node1').restart();
      // Its connection lost, node1 is ejected (no node alive for a moment), then back.
      await dict.get(keys[0]).catch(() => undefined);
      await until(() => saw(events, 'rediscovered', 'node1') === 1, SETTLE);
    } finally {
      owner.resume();
    }
    await until(() => saw(events, 'rediscovered', 'node0') === 1, SETTLE);
    expect(await staleOf(dict, keys)).toBe(0);
  });
});

describe('three nodes: another process names the restarted heir afresh', () => {
  const fixture = useRingDicts(FAILURE_TIMINGS, { servers: 3 });

  // Its first write for the owner there named the heir with its new server process, over the
  // one recorded before the restart: the lost hints went unseen.
  it('the returning owner serves none of the values it missed', TIMEOUT, async () => {
    const nodes = ringNodes(fixture.fleet.servers);
    const [a, b] = [0, 1].map(() => fixture.dict<string>({ nodes, prefix: 'hr3:' }));
    const [eventsA, eventsB] = [collect(a), collect(b)];
    const heirOnNode1 = { heir: 'node1', tag: 'k' };
    const keys = keysOwnedBy(a, 'node0', 50, heirOnNode1);
    const [other] = keysOwnedBy(a, 'node0', 1, { ...heirOnNode1, tag: 'other' });
    await a.setMany(keys.map((key) => [key, 'v1']));
    const owner = fixture.serverOf('node0');
    owner.hang();
    try {
      await Promise.all([a.get(keys[0]), b.get(keys[0])]);
      await until(() => saw(eventsA, 'ejected', 'node0') + saw(eventsB, 'ejected', 'node0') === 2);
      await a.setMany(keys.map((key) => [key, 'v2']));
      await fixture.serverOf('node1').restart();
      await Promise.all([a.get(keys[0]), b.get(keys[0])]);
      await until(
        () => saw(eventsA, 'rediscovered', 'node1') * saw(eventsB, 'rediscovered', 'node1') > 0,
        SETTLE,
      );
      await b.set(other, 'x');
    } finally {
      owner.resume();
    }
    await until(() => saw(eventsA, 'rediscovered', 'node0') === 1, SETTLE);
    await until(() => saw(eventsB, 'rediscovered', 'node0') === 1, SETTLE);
    expect((await staleOf(a, keys)) + (await staleOf(b, keys))).toBe(0);
  });
});
