import { describe, expect, it } from 'vitest';
import {
  FAILURE_TIMINGS,
  hangUntilEjected,
  killUntilEjected,
  SETTLE,
  TEST_TIMEOUT,
} from '../helpers/failure-scenes.js';
import { redisCommand } from '../helpers/redis-command.js';
import { collect, keysOwnedBy, saw, useRingDicts } from '../helpers/ring-dicts.js';
import { until } from '../helpers/wait.js';

/**
 * Hints that overflowed: more writes for an ejected node on one heir than `handoffLimit`. The
 * 'clear' policy deletes the returning node's entries, and every copy of them elsewhere, while
 * 'ttl' (and an empty prefix) hands back what was recorded and trusts the TTLs for the rest.
 * An heir that returns drops the copies it holds of other owners' entries.
 */

const fixture = useRingDicts(FAILURE_TIMINGS);

/**
 * The scene of the overflow tests: a dict whose handoff log holds one entry; `remembered`
 * and `forgotten`, owned by node0 with node1 as heir (with node0 out, the first write fills
 * the log and the second is past it); `onNode1`, owned by node1.
 */
function overflowScene(prefix: string) {
  const dict = fixture.dict<string>({ prefix, handoffLimit: 1 });
  const events = collect(dict);
  const [remembered, forgotten] = keysOwnedBy(dict, 'node0', 2, { heir: 'node1' });
  const [onNode1] = keysOwnedBy(dict, 'node1', 1, { tag: 'n1-' });
  return { dict, events, remembered, forgotten, onNode1 };
}

describe("the 'clear' overflow policy and an empty prefix", () => {
  it(
    'an overflowed handoff with no prefix trusts TTLs instead of wiping the whole node',
    TEST_TIMEOUT,
    async () => {
      // handoffOverflow 'clear' is the default; given here to show it is what is refused.
      const dict = fixture.dict<string>({
        handoffLimit: 1,
        handoffOverflow: 'clear',
        handoff: 'copy',
      });
      const events = collect(dict);
      // One heir: the limit is per node that takes the writes.
      const [first, second, untouched] = keysOwnedBy(dict, 'node2', 3, { heir: 'node0' });
      await dict.set(untouched, 'kept');
      const port = fixture.serverOf('node2').port;
      await redisCommand(port, 'SET', 'foreign:key', 'not ours');

      fixture.serverOf('node2').hang();
      await dict.set(first, 'new'); // times out on node2: ejected, remembered for it
      await dict.set(second, 'new'); // past handoffLimit: overflowed
      fixture.serverOf('node2').resume();
      await until(() => saw(events, 'rediscovered', 'node2') === 1, SETTLE);

      // Another application's key and this dict's untouched entry are still on node2.
      expect(await redisCommand(port, 'GET', 'foreign:key')).toBe('not ours');
      expect(await redisCommand(port, 'GET', untouched)).toBe('"kept"');
      expect(await dict.get(untouched)).toBe('kept');
      expect(await dict.get(first)).toBe('new');
      const { handoff } = events.find((e) => e.type === 'rediscovered')!;
      expect(handoff).toMatchObject({ entries: 1, overflowed: true, policy: 'ttl' });
      expect(handoff?.cleared).toBeUndefined();
    },
  );
});

describe("the 'clear' overflow policy and the copies on other nodes", () => {
  it(
    "deletes the returning node's entries that other nodes took but the log did not remember",
    TEST_TIMEOUT,
    async () => {
      const { dict, events, remembered, forgotten } = overflowScene('ovf:');
      const [theirs] = keysOwnedBy(dict, 'node1', 1, { tag: 'n1-' });
      await dict.set(theirs, 'node1 owns it');
      const node1 = fixture.serverOf('node1').port;
      await redisCommand(node1, 'SET', 'foreign:key', 'not ours');

      await killUntilEjected(fixture, events, 'node0');
      await dict.set(remembered, 'v1');
      await dict.set(forgotten, 'v1'); // past handoffLimit: on node1, not remembered
      await fixture.serverOf('node0').restart();
      await until(() => saw(events, 'rediscovered', 'node0') === 1, SETTLE);
      expect(events.find((e) => e.type === 'rediscovered')?.handoff).toMatchObject({
        overflowed: true,
        policy: 'clear',
      });
      expect(await redisCommand(node1, 'EXISTS', dict.getEntry(forgotten))).toBe('0');
      // Cleared whole: the recorded write as well as the one past the limit (misses).
      expect(await dict.get(remembered)).toBeUndefined();
      expect(await dict.get(forgotten)).toBeUndefined();
      // node1's own entry and another application's key are left alone.
      expect(await dict.get(theirs)).toBe('node1 owns it');
      expect(await redisCommand(node1, 'GET', 'foreign:key')).toBe('not ours');

      await dict.set(forgotten, 'v2'); // on node0
      await fixture.serverOf('node0').kill();
      await until(() => saw(events, 'ejected', 'node0') === 2, SETTLE);
      // Read on node1 again: a miss, never the v1 it took during the first outage.
      expect(await dict.get(forgotten)).toBeUndefined();
      expect(await dict.get(remembered)).toBeUndefined();
    },
  );
});

describe("the 'clear' overflow policy with another node hung", () => {
  it(
    'ejects the hung node, not the returning one, and clears the hung one when it returns',
    TEST_TIMEOUT,
    async () => {
      const dict = fixture.dict<string>({ prefix: 'ovf2:', handoffLimit: 1 });
      const events = collect(dict);
      const [first, second] = keysOwnedBy(dict, 'node0', 2, { heir: 'node1' });
      const [onNode2] = keysOwnedBy(dict, 'node2', 1, { tag: 'n2-' });
      await dict.set(onNode2, 'node2 owns it');

      await killUntilEjected(fixture, events, 'node0');
      await dict.set(first, 'v1');
      await dict.set(second, 'v1'); // past handoffLimit
      fixture.serverOf('node2').hang(); // alive still: nothing has asked it anything
      await fixture.serverOf('node0').restart();
      await until(() => saw(events, 'rediscovered', 'node0') === 1, SETTLE);
      expect(saw(events, 'ejected', 'node2')).toBe(1);
      expect(dict.nodeStates()[0]).toMatchObject({ name: 'node0', alive: true });
      expect(await dict.get(first)).toBeUndefined(); // node0 was cleared whole

      // node2 may hold copies of node0's entries it cannot tell from its own: cleared on return.
      fixture.serverOf('node2').resume();
      await until(() => saw(events, 'rediscovered', 'node2') === 1, SETTLE);
      const back = events.filter((e) => e.type === 'rediscovered' && e.node === 'node2');
      expect(back[0].handoff?.cleared).toBeGreaterThanOrEqual(1);
      expect(await dict.get(onNode2)).toBeUndefined();
    },
  );
});

describe("the 'clear' overflow policy with an earlier heir out too", () => {
  it(
    'clears that heir when it returns, so it cannot serve its unremembered copy later',
    TEST_TIMEOUT,
    async () => {
      const { dict, events, remembered, forgotten, onNode1 } = overflowScene('ovf3:');

      await killUntilEjected(fixture, events, 'node0');
      await dict.set(remembered, 'v1');
      await dict.set(forgotten, 'v1'); // past handoffLimit: on node1, not remembered
      fixture.serverOf('node1').hang(); // keeps its data, unlike a restart
      expect(await dict.get(onNode1)).toBeUndefined(); // times out: node1 ejected
      await fixture.serverOf('node0').restart();
      await until(() => saw(events, 'rediscovered', 'node0') === 1, SETTLE);
      await dict.set(forgotten, 'v2'); // on node0

      fixture.serverOf('node1').resume();
      await until(() => saw(events, 'rediscovered', 'node1') === 1, SETTLE);
      // node1 drops the copies it holds of node0's entries, the one past the limit included.
      const back = events.find((e) => e.type === 'rediscovered' && e.node === 'node1');
      expect(back?.handoff?.entries).toBeGreaterThanOrEqual(2);
      await fixture.serverOf('node0').kill();
      await until(() => saw(events, 'ejected', 'node0') === 2, SETTLE);
      expect(dict.aliveHash.locate(dict.getEntry(forgotten))).toBe('node1');
      // Read on node1 again: a miss, never the v1 it took during node0's first outage.
      expect(await dict.get(forgotten)).toBeUndefined();
    },
  );
});

describe("the 'clear' overflow policy when the heir returns before the owner", () => {
  it(
    'the heir that took forgotten writes is cleared on its return: no stale copy while the owner is out',
    TEST_TIMEOUT,
    async () => {
      const { dict, events, remembered, forgotten, onNode1 } = overflowScene('ovf5:');

      await killUntilEjected(fixture, events, 'node0');
      await dict.set(remembered, 'v1');
      await dict.set(forgotten, 'v1'); // past handoffLimit: on node1, not remembered
      fixture.serverOf('node1').hang();
      expect(await dict.get(onNode1)).toBeUndefined(); // times out: node1 ejected
      await dict.set(forgotten, 'v2'); // on node2 now
      fixture.serverOf('node1').resume();
      await until(() => saw(events, 'rediscovered', 'node1') === 1, SETTLE);
      // node0 is still out: the key is read on node1 again, which must not say v1.
      expect(dict.aliveHash.locate(dict.getEntry(forgotten))).toBe('node1');
      expect(await dict.get(forgotten)).toBeUndefined();
    },
  );
});

describe("the 'clear' overflow policy while the owner stays out", () => {
  it(
    'a heir cleared once keeps what it took since at its next returns',
    { timeout: 20_000 },
    async () => {
      const { dict, events, remembered, forgotten, onNode1 } = overflowScene('ovf6:');
      await killUntilEjected(fixture, events, 'node0'); // for the whole test
      await dict.set(remembered, 'v1');
      await dict.set(forgotten, 'v1'); // past handoffLimit: on node1, not remembered
      for (let round = 1; round <= 3; round++) {
        await hangUntilEjected(fixture, dict, events, 'node1', onNode1);
        fixture.serverOf('node1').resume();
        await until(() => saw(events, 'rediscovered', 'node1') === round, SETTLE);
        const back = events.filter((e) => e.type === 'rediscovered' && e.node === 'node1');
        // Its copies of node0's entries go the first time; nothing was written for node0 on
        // it since, and its own entries are never touched.
        expect(back[round - 1].handoff).toMatchObject({ overflowed: false });
        if (round === 1) expect(back[0].handoff?.entries).toBe(2);
        else expect(back[round - 1].handoff?.entries).toBe(0);
        if (round > 1) expect(await dict.get(onNode1)).toBe(`keep-${round - 1}`);
        await dict.set(onNode1, `keep-${round}`);
      }
    },
  );

  it(
    'a spill recorded after its heir was ejected by another request still clears that heir',
    TEST_TIMEOUT,
    async () => {
      const { dict, events, remembered, forgotten, onNode1 } = overflowScene('ovf7:');
      await dict.connect();
      await killUntilEjected(fixture, events, 'node0');
      await dict.set(remembered, 'v1'); // fills the log
      fixture.serverOf('node1').hang();
      const read = dict.get(onNode1); // first in line: its timeout ejects node1
      await new Promise((resolve) => setTimeout(resolve, 100));
      // Buffered on the hung node1 (which runs it when resumed), failed over to node2.
      const write = dict.set(forgotten, 'v1');
      await read;
      await write;
      await dict.set(forgotten, 'v2'); // node2
      fixture.serverOf('node1').resume();
      await until(() => saw(events, 'rediscovered', 'node1') === 1, SETTLE);
      expect(dict.aliveHash.locate(dict.getEntry(forgotten))).toBe('node1');
      expect(await dict.get(forgotten)).toBeUndefined();
    },
  );

  it(
    "a copy spilled to a second heir is not served at the first heir's next outage",
    TEST_TIMEOUT,
    async () => {
      const { dict, events, remembered, forgotten, onNode1 } = overflowScene('ovf8:');
      await killUntilEjected(fixture, events, 'node0');
      await dict.set(remembered, 'v1');
      await dict.set(forgotten, 'v1'); // node1, not remembered
      await hangUntilEjected(fixture, dict, events, 'node1', onNode1);
      await dict.set(forgotten, 'v2'); // node2, not remembered
      fixture.serverOf('node1').resume();
      await until(() => saw(events, 'rediscovered', 'node1') === 1, SETTLE);
      await dict.set(forgotten, 'v3'); // node1 again: the newest value
      await hangUntilEjected(fixture, dict, events, 'node1', onNode1);
      expect(dict.aliveHash.locate(dict.getEntry(forgotten))).toBe('node2');
      expect(await dict.get(forgotten)).toBeUndefined();
    },
  );
});

describe('a heir that took unremembered writes, under the ttl policy', () => {
  it.each([
    ["handoffOverflow 'ttl'", { prefix: 'ovf9:', handoffOverflow: 'ttl' as const }],
    ["no prefix (where 'clear' falls back to 'ttl')", { prefix: '' }],
  ])('%s: rejoins while the owner stays out', TEST_TIMEOUT, async (_what, options) => {
    const dict = fixture.dict<string>({ ...options, handoffLimit: 1 });
    const events = collect(dict);
    const [remembered, forgotten] = keysOwnedBy(dict, 'node0', 2, { heir: 'node1', tag: 'ttl-' });
    const [onNode1] = keysOwnedBy(dict, 'node1', 1, { tag: 'ttl-n1-' });
    await killUntilEjected(fixture, events, 'node0');
    await dict.set(remembered, 'v1');
    await dict.set(forgotten, 'v1'); // past handoffLimit: on node1, not remembered
    fixture.serverOf('node1').hang();
    await dict.get(onNode1); // times out: node1 ejected
    fixture.serverOf('node1').resume();
    await until(() => saw(events, 'rediscovered', 'node1') === 1, SETTLE);
    // Its own hints are complete; it drops its copies of node0's entries (no prefix: found by
    // a scan of the whole database, never deleting anything else).
    expect(events.find((e) => e.type === 'rediscovered')?.handoff).toMatchObject({
      overflowed: false,
      entries: 2,
    });
    expect(await dict.get(onNode1)).toBeUndefined(); // never written: nothing lost
  });
});

describe("the 'clear' overflow policy and a node back that took nothing unremembered", () => {
  it.each([
    ['dead', 'ovf10:'],
    // Hung: each heartbeat's revival waits up to commandTimeout on it.
    ['hung', 'ovf11:'],
  ])(
    'still deletes the copies of the owner, %s and still out, that now route to it',
    TEST_TIMEOUT,
    async (how, prefix) => {
      const { dict, events, remembered, forgotten, onNode1 } = overflowScene(prefix);
      if (how === 'dead') await killUntilEjected(fixture, events, 'node0');
      else await hangUntilEjected(fixture, dict, events, 'node0', remembered);
      await dict.set(remembered, 'v1'); // fills the log; node1 holds nothing unremembered
      await hangUntilEjected(fixture, dict, events, 'node1', onNode1);
      await dict.set(forgotten, 'v1'); // node2, not remembered
      fixture.serverOf('node1').resume();
      await until(() => saw(events, 'rediscovered', 'node1') === 1, SETTLE);
      expect(await dict.get(forgotten)).toBeUndefined();
      await dict.set(forgotten, 'v2'); // node1
      await hangUntilEjected(fixture, dict, events, 'node1', onNode1);
      // Read on node2 again: a miss, never the v1 written there before.
      expect(dict.aliveHash.locate(dict.getEntry(forgotten))).toBe('node2');
      expect(await dict.get(forgotten)).toBeUndefined();
    },
  );
});

describe("the 'clear' overflow policy with two nodes back together", () => {
  it(
    'both are cleared, their hints on one heir past the limit: no stale copy is served',
    TEST_TIMEOUT,
    async () => {
      const dict = fixture.dict<string>({ prefix: 'ovf4:', handoffLimit: 1 });
      const events = collect(dict);
      await dict.connect();
      await Promise.all([fixture.serverOf('node0').kill(), fixture.serverOf('node1').kill()]);
      await until(() => saw(events, 'ejected') === 2, SETTLE);
      const forNode0 = keysOwnedBy(dict, 'node0', 3, { tag: 'a' });
      const forNode1 = keysOwnedBy(dict, 'node1', 3, { tag: 'b' });
      // All on node2; past handoffLimit for both owners.
      for (const key of [...forNode0, ...forNode1]) await dict.set(key, 'v');
      await Promise.all([fixture.serverOf('node0').restart(), fixture.serverOf('node1').restart()]);
      await until(() => saw(events, 'rediscovered') === 2, SETTLE);
      // Misses, never a value node2 took for them.
      expect(await dict.getMany([...forNode0, ...forNode1])).toEqual(
        [...forNode0, ...forNode1].map(() => undefined),
      );
      for (const back of events.filter((e) => e.type === 'rediscovered')) {
        expect(back.handoff).toMatchObject({ overflowed: true, policy: 'clear' });
      }
    },
  );
});

describe("the 'clear' overflow policy and a reply error on another node", () => {
  it(
    'keeps the returning node out, names the node that refused, ejects neither, and takes it back once that node answers',
    TEST_TIMEOUT,
    async () => {
      const { dict, events, remembered, forgotten } = overflowScene('ovf-acl:');
      const [onNode2] = keysOwnedBy(dict, 'node2', 1, { tag: 'n2-' });
      await dict.set(onNode2, 'node2 owns it');
      const node2 = fixture.serverOf('node2').port;

      await killUntilEjected(fixture, events, 'node0');
      await dict.set(remembered, 'v1');
      await dict.set(forgotten, 'v1'); // past handoffLimit: on node1, not remembered
      // node2 answers, but refuses the clean-up's SCAN with a reply error.
      await redisCommand(node2, 'ACL', 'SETUSER', 'default', '-scan');
      try {
        await fixture.serverOf('node0').restart();
        await until(() => dict.nodeStates()[0].lastError?.includes('NOPERM') === true, SETTLE);
        const [node0State, , node2State] = dict.nodeStates();
        expect(node0State).toMatchObject({ alive: false });
        expect(node0State.lastError).toMatch(/node2/);
        // A reply error never ejects a node: node2 keeps serving its own entries.
        expect(node2State).toMatchObject({ alive: true });
        expect(saw(events, 'ejected', 'node2')).toBe(0);
        expect(await dict.get(onNode2)).toBe('node2 owns it');
        // node0 out: the copies node1 took of its entries went with the clean-up's first
        // steps; a miss, never a value older than the last write.
        expect(await dict.get(remembered)).toBeUndefined();
      } finally {
        await redisCommand(node2, 'ACL', 'SETUSER', 'default', '+scan');
      }
      await until(() => saw(events, 'rediscovered', 'node0') === 1, SETTLE);
      expect(await dict.get(remembered)).toBeUndefined();
      expect(await dict.get(forgotten)).toBeUndefined();
      expect(
        await redisCommand(fixture.serverOf('node1').port, 'EXISTS', dict.getEntry(forgotten)),
      ).toBe('0');
    },
  );
});
