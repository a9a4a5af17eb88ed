import { describe, expect, it } from 'vitest';
import { RingDict } from '../../lib/index.js';
import { ringNodes } from '../helpers/redis-fleet.js';
import { useRingFleet } from '../helpers/ring-fleet.js';

/**
 * A burst of connections (a process starting many dicts, or many processes starting at once
 * against the same servers) must not eject healthy nodes: a connect nobody waits on is given
 * `connectTimeout` (default 2 s), and ioredis' per-command timer never judges it.
 */
const ring = useRingFleet(3);

describe('connecting under load', () => {
  it('1,000 dicts over 3 nodes connecting at once: no healthy node ejected', async () => {
    const nodes = ringNodes(ring.fleet.servers);
    const dicts = Array.from(
      { length: 1_000 },
      () => new RingDict({ nodes, lazyConnect: true, commandTimeout: 500 }),
    );
    try {
      await Promise.all(dicts.map((dict) => dict.connect()));
      const ejected = dicts.flatMap((dict) => dict.nodeStates().filter((state) => !state.alive));
      expect(ejected.map((state) => `${state.name}: ${state.lastError}`)).toEqual([]);
    } finally {
      await Promise.all(dicts.map((dict) => dict.close()));
    }
  }, 60_000);
});
