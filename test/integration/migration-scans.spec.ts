import { describe, expect, it } from 'vitest';
import { RingClusterUnavailableError } from '../../lib/index.js';
import { ringNodes } from '../helpers/redis-fleet.js';
import { useRingDicts } from '../helpers/ring-dicts.js';

/**
 * A dict during a migration, beyond single reads and writes: its scans see what its reads see
 * (keys where `from` places them, on the nodes only `from` names too), its clear leaves nothing
 * readable, and with no node of `from` left it fails as without a migration.
 */

const fixture = useRingDicts(
  { heartbeatInterval: 100, commandTimeout: 300, retryRatio: 0 },
  {
    servers: 4,
  },
);
const TIMEOUT = { timeout: 15_000 };
const keys = Array.from({ length: 300 }, (_, i) => `k${i}`);

/** From node0–node2 to node0, node1 and node3: node2 only in `from`, node3 only in `nodes`. */
function migrating<V, F = never>(prefix: string, onFail?: () => F) {
  const all = ringNodes(fixture.fleet.servers);
  return fixture.dict<V, F>({
    prefix,
    nodes: { node0: all.node0, node1: all.node1, node3: all.node3 },
    migration: {
      from: { node0: all.node0, node1: all.node1, node2: all.node2 },
      until: Date.now() + 60_000,
    },
    ...(onFail && { onFail }),
  });
}

describe('a migration and the calls over the whole dict', () => {
  it('size(), keys() and entries() count what get() reads, once each', TIMEOUT, async () => {
    const dict = migrating<number>('ms:');
    await dict.setMany(keys.map((key, i) => [key, i]));
    expect(await dict.getMany(keys)).toEqual(keys.map((_, i) => i));
    expect(await dict.size()).toBe(keys.length);
    const listed: string[] = [];
    for await (const key of dict.keys()) listed.push(key);
    expect(listed.sort()).toEqual([...keys].sort());
    let entries = 0;
    for await (const _entry of dict.entries()) entries++;
    expect(entries).toBe(keys.length);
  });

  it('clear() leaves nothing readable, on the nodes only `from` names too', TIMEOUT, async () => {
    const dict = migrating<number>('mc:');
    await dict.setMany(keys.map((key, i) => [key, i]));
    expect(await dict.clear()).toBe(keys.length);
    expect((await dict.getMany(keys)).filter((v) => v !== undefined)).toEqual([]);
  });

  it(
    'no node of `from` left: onFail answers, or RingClusterUnavailableError',
    TIMEOUT,
    async () => {
      const answering = migrating<number, null>('mf:', () => null);
      const throwing = migrating<number>('mg:');
      await Promise.all([answering.set('a', 1), throwing.set('a', 1)]);
      await Promise.all([0, 1, 2].map((i) => fixture.fleet.servers[i].kill()));
      expect(await answering.get('a')).toBeNull();
      expect(await answering.getMany(['a', 'b'])).toBeNull();
      await expect(throwing.get('a')).rejects.toBeInstanceOf(RingClusterUnavailableError);
      await expect(throwing.getMany(['a', 'b'])).rejects.toBeInstanceOf(
        RingClusterUnavailableError,
      );
    },
  );
});
