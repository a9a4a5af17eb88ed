import { describe, expect, it } from 'vitest';
import { RingConfigError, type RingDict, type RingDictOptions } from '../../lib/index.js';
import { FAILURE_TIMINGS, SETTLE } from '../helpers/failure-scenes.js';
import { commandCalls } from '../helpers/redis-command.js';
import { ringNodes } from '../helpers/redis-fleet.js';
import { keysOwnedBy, useRingDicts } from '../helpers/ring-dicts.js';
import { until } from '../helpers/wait.js';

/**
 * The options that change routing, used together against real redis-server processes: the
 * near cache over replicas (a write reaches every copy and drops the entry in every process),
 * the near cache across a membership change, and what does not combine.
 */

const fixture = useRingDicts(FAILURE_TIMINGS);

/** A dict whose near-cache channels are all up. */
async function nearDict<V>(
  prefix: string,
  options: Partial<RingDictOptions<V>> = {},
): Promise<RingDict<V>> {
  const dict = fixture.dict<V>({ prefix, nearCache: {}, ...options });
  await dict.connect();
  await until(() => dict.nodeStates().every((s) => s.invalidation === 'up'), SETTLE, 'tracking');
  return dict;
}

/** How many GETs the server ran so far. */
function gets(port: number): Promise<number> {
  return commandCalls([port], ['get']);
}

describe('near cache over replicas', () => {
  it("a dict's own write to the copies is what its next get answers, from memory after", async () => {
    const dict = await nearDict<string>('nr1:', { replicas: 2 });
    const [key] = keysOwnedBy(dict, 'node0', 1);
    await dict.set(key, 'v1');
    expect(await dict.get(key)).toBe('v1');
    await dict.set(key, 'v2');
    expect(await dict.get(key)).toBe('v2');
    await dict.delete(key);
    expect(await dict.get(key)).toBeUndefined();
    await dict.set(key, 'v3');
    await dict.get(key);
    const port = fixture.serverOf('node0').port;
    const before = await gets(port);
    expect(await dict.get(key)).toBe('v3');
    expect(await gets(port)).toBe(before);
  });

  it("another process's write to the copies drops the entry here", async () => {
    const reader = await nearDict<string>('nr2:', { replicas: 2 });
    const writer = fixture.dict<string>({ prefix: 'nr2:', replicas: 2 });
    const keys = keysOwnedBy(reader, 'node1', 5);
    for (const key of keys) await writer.set(key, 'old');
    for (const key of keys) expect(await reader.get(key)).toBe('old');
    for (const key of keys) await writer.set(key, 'new');
    await until(
      async () => (await Promise.all(keys.map((k) => reader.get(k)))).every((v) => v === 'new'),
      SETTLE,
      'invalidated',
    );
    // And a delete by the other process is not answered from memory either.
    for (const key of keys) await writer.delete(key);
    await until(
      async () => (await reader.getMany(keys)).every((v) => v === undefined),
      SETTLE,
      'deleted everywhere',
    );
  });
});

describe('near cache across a membership change', () => {
  it('a node removed by setNodes serves nothing from memory, and its keys move on', async () => {
    const servers = fixture.fleet.servers;
    // No warm-up: the new owner has no copy, so an answer could only come from memory.
    const dict = await nearDict<string>('nm:', { warmUpWindow: 0 });
    const [key] = keysOwnedBy(dict, 'node2', 1);
    await dict.set(key, 'before');
    expect(await dict.get(key)).toBe('before');
    await dict.setNodes(ringNodes(servers.slice(0, 2)));
    expect(await dict.get(key)).toBeUndefined();
    await dict.set(key, 'after');
    expect(await dict.get(key)).toBe('after');
    expect(dict.nodeStates().map((s) => s.name)).toEqual(['node0', 'node1']);
  });
});

describe('options that do not combine', () => {
  it('replicas with a migration is a RingConfigError naming both', () => {
    const nodes = ringNodes(fixture.fleet.servers);
    expect(() =>
      fixture.dict({ replicas: 2, migration: { from: nodes, until: Date.now() + 60_000 } }),
    ).toThrow(RingConfigError);
    expect(() =>
      fixture.dict({ replicas: 2, migration: { from: nodes, until: Date.now() + 60_000 } }),
    ).toThrow(/replicas.*migration/);
  });
});
