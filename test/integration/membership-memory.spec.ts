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

function heapAndBuffers(): number {
  gc();
  gc();
  const { arrayBuffers, heapUsed } = process.memoryUsage();
  return arrayBuffers + heapUsed;
}

describe('memory kept across changes of nodes', () => {
  it('four setNodes with slices 2 ** 22 keep no earlier ring', { timeout: 40_000 }, async () => {
    const servers = ringNodes(fixture.fleet.servers);
    const list = (capacity: number) => ({ ...servers, node0: { ...servers.node0, capacity } });
    const dict = fixture.dict<string>({ nodes: list(1), prefix: 'mem:', slices: 2 ** 22 });
    await dict.set('k', 'v');
    // One change first: the dict's current rings (total, alive) are in the baseline.
    await dict.setNodes(list(2));
    const before = heapAndBuffers();
    for (const capacity of [3, 4, 5, 6]) await dict.setNodes(list(capacity));
    // Under one ring (8 MB): what a collection leaves over moves by a few hundred KB.
    expect((heapAndBuffers() - before) / 2 ** 20).toBeLessThan(4);
    expect(dict.totalHash.capacityOf('node0')).toBe(6);
  });
});
