import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { ringNodes } from '../helpers/redis-fleet.js';
import { useRingDicts } from '../helpers/ring-dicts.js';

/**
 * What a dict keeps of its earlier node lists: the lists, not their rings. A ring's slice
 * table takes 2 bytes a slice (about 110 KB with the default slices of 3 nodes, 8 MB with
 * `slices: 2 ** 22`); four remembered rings kept 32 MB, and a getter of the dict's cache view
 * kept its first ring (8 MB).
 */
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const fixture = useRingDicts({ heartbeatInterval: 100, commandTimeout: 300 });

/** Collects garbage, a turn apart: a WeakRef keeps its target to the end of the turn it was read in. */
async function collected(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 0));
  gc();
  await new Promise((resolve) => setTimeout(resolve, 0));
  gc();
}

describe('memory kept across changes of nodes', () => {
  it('four setNodes with slices 2 ** 22 keep no earlier ring', { timeout: 40_000 }, async () => {
    const servers = ringNodes(fixture.fleet.servers);
    const list = (capacity: number) => ({ ...servers, node0: { ...servers.node0, capacity } });
    const dict = fixture.dict<string>({ nodes: list(1), prefix: 'mem:', slices: 2 ** 22 });
    await dict.set('k', 'v');
    // Each ring's own objects, not the memory counters: its slice table's memory is given back
    // by a task after the collection, and a full run counted 40 MB not given back yet.
    const rings: WeakRef<object>[] = [];
    for (const capacity of [2, 3, 4, 5, 6]) {
      rings.push(new WeakRef(dict.totalHash));
      await dict.setNodes(list(capacity));
    }
    await collected();
    // The last one is the warm-up window's, kept until the window ends.
    const kept = rings.slice(0, -1).filter((ring) => ring.deref() !== undefined);
    expect(kept.length).toBe(0);
    expect(dict.totalHash.capacityOf('node0')).toBe(6);
  });
});
