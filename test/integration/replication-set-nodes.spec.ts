import { describe, expect, it } from 'vitest';
import { FAILURE_TIMINGS, SETTLE } from '../helpers/failure-scenes.js';
import { ringNodes } from '../helpers/redis-fleet.js';
import { collect, saw, useRingDicts } from '../helpers/ring-dicts.js';
import { sleep, until } from '../helpers/wait.js';

/**
 * setNodes with `replicas: 2` and a node out (or hung) as the change's sweep runs: the copies
 * that moved off that node were never deleted, the writes and deletes made since never reached
 * them, and once the node was an entry's home again (the added node removed) 26 of 200 deleted
 * entries came back. Such a node is held out until its revival clears it.
 */
const fixture = useRingDicts(FAILURE_TIMINGS, { servers: 4 });
const KEYS = Array.from({ length: 200 }, (_, i) => `k${i}`);

describe('setNodes over replicas with a node that cannot be swept', () => {
  it.each([
    ['ejected before the change', true],
    ['hung as the change runs, not ejected yet', false],
  ])('%s: deleted entries stay deleted once the added node leaves', async (_what, ejectFirst) => {
    const servers = fixture.fleet.servers;
    const three = ringNodes(servers.slice(0, 3));
    const dict = fixture.dict<string>({ nodes: three, prefix: 'rsn:', replicas: 2 });
    const events = collect(dict);
    for (const key of KEYS) await dict.set(key, 'v1');
    servers[1].hang();
    if (ejectFirst) {
      await Promise.all(KEYS.slice(0, 20).map((key) => dict.get(key)));
      await until(() => saw(events, 'ejected', 'node1') === 1, SETTLE, 'node1 ejected');
    }
    await dict.setNodes(ringNodes(servers));
    await sleep(2 * FAILURE_TIMINGS.commandTimeout);
    servers[1].resume();
    await until(() => dict.nodeStates().every((state) => state.alive), SETTLE, 'all alive');
    for (const key of KEYS) await dict.delete(key);
    await dict.setNodes(three);
    const back = [];
    for (const key of KEYS) if ((await dict.get(key)) !== undefined) back.push(key);
    expect(back).toEqual([]);
  });
});
