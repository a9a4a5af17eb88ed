import { describe, expect, it, vi } from 'vitest';
import { RingCodecError } from '../../lib/index.js';
import { PIPELINE_CHUNK } from '../../lib/core/node/pipeline.js';
import { internals } from '../helpers/internals.js';
import { redisCommand } from '../helpers/redis-command.js';
import { collect, useRingDicts } from '../helpers/ring-dicts.js';
import { dataKeyCount } from '../helpers/data-keys.js';

/**
 * getMany, setMany and deleteMany: input order, one round per node and pipeline chunk, a node
 * that dies in the middle of a batch, batches longer than commandTimeout, and bad values.
 */

// Generous enough that a loaded CI machine does not eject a healthy node.
const fixture = useRingDicts({ heartbeatInterval: 100, commandTimeout: 500, retryRatio: 0 });

describe('RingDict batch operations', () => {
  it('getMany / setMany / deleteMany keep input order and spread over nodes', async () => {
    const dict = fixture.dict<number>({ prefix: 'batch:' });
    const keys = Array.from({ length: 100 }, (_, i) => `k${i}`);
    await dict.setMany(
      keys.map((k, i) => [k, i] as const),
      { ttl: 30 },
    );
    const values = await dict.getMany([...keys, 'missing']);
    expect(values).toEqual([...keys.map((_, i) => i), undefined]);
    for (const server of fixture.fleet.servers) {
      expect(await dataKeyCount(server.port)).toBeGreaterThan(10);
    }
    const owner = fixture.serverOf(dict.aliveHash.locate('batch:k5')!);
    const pttl = Number(await redisCommand(owner.port, 'PTTL', 'batch:k5'));
    expect(pttl).toBeGreaterThan(29_000);
    expect(await dict.deleteMany([...keys.slice(0, 40), 'missing'])).toBe(40);
    expect(await dict.size()).toBe(60);
  });

  it('a node dead mid-batch: its keys move to the next nodes, no error to the caller', async () => {
    const dict = fixture.dict<number>({ prefix: 'dead:' });
    const events = collect(dict);
    const keys = Array.from({ length: 100 }, (_, i) => `k${i}`);
    await dict.setMany(keys.map((k, i) => [k, i] as const));
    // Killed without the dict noticing first: the batch itself meets the dead node.
    fixture.serverOf('node1').hang();
    const values = await dict.getMany(keys);
    const lost = keys.filter((k) => dict.totalHash.locate(dict.getEntry(k)) === 'node1');
    expect(lost.length).toBeGreaterThan(10);
    values.forEach((value, i) => {
      if (lost.includes(keys[i])) expect(value).toBeUndefined();
      else expect(value).toBe(i);
    });
    expect(events.filter((e) => e.type === 'ejected').map((e) => e.node)).toEqual(['node1']);
    // Writes for node1's keys now land on its heirs.
    await dict.setMany(keys.map((k, i) => [k, i * 10] as const));
    expect(await dict.getMany(lost)).toEqual(lost.map((k) => Number(k.slice(1)) * 10));
    expect(await dict.deleteMany(keys)).toBe(100);
  });

  it('deleteMany counts the rounds a node answered before it died', async () => {
    const dict = fixture.dict<number>({ prefix: 'delcount:' });
    await dict.connect();
    const keys = Array.from({ length: 2_000 }, (_, i) => `k${i}`);
    await dict.setMany(keys.map((k, i) => [k, i] as const));
    // node1 answers its first round of DEL (250 keys), then its server is killed: the rest
    // of its keys go to the next nodes, which hold none of them.
    const node1 = internals(dict).membership.node('node1');
    const del = node1.client.del.bind(node1.client);
    let rounds = 0;
    vi.spyOn(node1.client, 'del').mockImplementation(async (...args: unknown[]) => {
      if (++rounds === 2) await fixture.serverOf('node1').kill();
      return (del as (...a: unknown[]) => Promise<number>)(...args);
    });
    const owned = keys.filter((k) => dict.totalHash.locate(dict.getEntry(k)) === 'node1');
    expect(owned.length).toBeGreaterThan(500);
    // Every key existed: the first round on node1 removed 250 of its keys, the other nodes
    // all of theirs.
    expect(await dict.deleteMany(keys)).toBe(keys.length - owned.length + 250);
  });

  it('a batch that takes longer than commandTimeout ejects no node that keeps answering', async () => {
    const commandTimeout = 300;
    const dict = fixture.dict<string>({ prefix: 'long:', commandTimeout });
    const events = collect(dict);
    await dict.connect();
    const value = 'v'.repeat(200);
    const entries = Array.from({ length: 120_000 }, (_, i) => [`k${i}`, value] as const);
    const start = performance.now();
    await dict.setMany(entries);
    // Long enough that a single deadline for the whole batch would have expired.
    expect(performance.now() - start).toBeGreaterThan(commandTimeout);
    expect(events).toEqual([]);
    expect(await dict.size()).toBe(entries.length);
  });

  it('getMany and deleteMany of 130 000 keys on one node: every value, no ejection, no stack overflow', async () => {
    const commandTimeout = 300;
    const dict = fixture.dict<string>({
      prefix: 'long1:',
      commandTimeout,
      nodes: { node0: { capacity: 1, connection: fixture.fleet.servers[0].url } },
    });
    const events = collect(dict);
    // Connected first: building and encoding 130 000 entries stalls this process for longer
    // than commandTimeout, which a connect still under way would take for a dead node.
    await dict.connect();
    const value = 'v'.repeat(200);
    const keys = Array.from({ length: 130_000 }, (_, i) => `k${i}`);
    await dict.setMany(keys.map((key) => [key, value] as const));
    const values = await dict.getMany(keys);
    expect(values.filter((v) => v === value)).toHaveLength(keys.length);
    // One DEL of them all would spread 130 000 arguments onto the stack.
    expect(await dict.deleteMany(keys)).toBe(keys.length);
    expect(events).toEqual([]);
    expect(await dict.size()).toBe(0);
  });

  it('a batch of several pipeline chunks per node stores every entry with its ttl', async () => {
    const dict = fixture.dict<number>({ prefix: 'big:' });
    // About 2.7 chunks per node: the chunk boundaries fall inside each node's share.
    const count = PIPELINE_CHUNK * 8 + 7;
    const keys = Array.from({ length: count }, (_, i) => `k${i}`);
    await dict.setMany(
      keys.map((k, i) => [k, i] as const),
      { ttl: 30 },
    );
    expect(await dict.getMany(keys)).toEqual(keys.map((_, i) => i));
    for (const server of fixture.fleet.servers) {
      expect(await dataKeyCount(server.port)).toBeGreaterThan(PIPELINE_CHUNK);
    }
    const last = `big:k${count - 1}`;
    const pttl = Number(
      await redisCommand(fixture.serverOf(dict.aliveHash.locate(last)!).port, 'PTTL', last),
    );
    expect(pttl).toBeGreaterThan(29_000);
    expect(await dict.deleteMany(keys)).toBe(count);
  });

  it('a value that cannot be encoded writes nothing of the batch', async () => {
    const dict = fixture.dict({ prefix: 'enc:' });
    await expect(
      dict.setMany([
        ['a', 1],
        ['b', undefined],
      ]),
    ).rejects.toThrow(RingCodecError);
    for (const server of fixture.fleet.servers) expect(await dataKeyCount(server.port)).toBe(0);
  });

  it('all nodes down: getMany answers onFail', async () => {
    const dict = fixture.dict<number, null>({ onFail: () => null });
    await Promise.all(fixture.fleet.servers.map((s) => s.kill()));
    expect(await dict.getMany(['a', 'b'])).toBeNull();
  });
});
