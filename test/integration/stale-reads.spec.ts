import { describe, expect, it } from 'vitest';
import type { RingDict, RingEvent } from '../../lib/index.js';
import { redisCommand } from '../helpers/redis-command.js';
import { keysOwnedBy, useRingDicts } from '../helpers/ring-dicts.js';
import { PIPELINE_CHUNK } from '../../lib/core/node/pipeline.js';
import { dataKeyCount } from '../helpers/data-keys.js';
import { until } from '../helpers/wait.js';

/**
 * No stale reads after a flap: a node that comes back still holds its old values, while
 * newer writes for its keys went to the next node. Hinted handoff brings it up to date
 * before it rejoins, so reads never see the old value.
 */
const fixture = useRingDicts({
  prefix: 'flap:',
  commandTimeout: 200,
  heartbeatInterval: 100,
  retryRatio: 0,
});

function rediscovery(dict: RingDict<string>): Promise<RingEvent> {
  return new Promise((resolve) => {
    const sub = dict.events$.subscribe((event) => {
      if (event.type === 'rediscovered') {
        sub.unsubscribe();
        resolve(event);
      }
    });
  });
}

/**
 * node0 hangs after `key`, `other` and `deleted` were written on it; meanwhile `key` is
 * rewritten (on its heir) and `deleted` deleted; then node0 comes back. Answers the keys and
 * the rediscovery event.
 */
async function writesWhileNode0Hung(dict: RingDict<string>) {
  const [key, other, deleted] = keysOwnedBy(dict, 'node0', 3);
  await dict.set(key, 'v1');
  await dict.set(other, 'untouched');
  await dict.set(deleted, 'v1');
  fixture.fleet.servers[0].hang();
  await dict.set(key, 'v2'); // times out on node0, lands on its heir
  await dict.delete(deleted);
  expect(dict.aliveHash.nodes).not.toContain('node0');
  // node0 still holds v1: this is what a stale read would return.
  const back = rediscovery(dict);
  fixture.fleet.servers[0].resume();
  const event = await back;
  expect(event.handoff).toMatchObject({ entries: 2, overflowed: false });
  return { key, other, deleted };
}

describe("hinted handoff with one writer (handoff: 'copy')", () => {
  it('a hung node that returns serves the newer value, not its own old one', async () => {
    const dict = fixture.dict<string>({ handoff: 'copy' });
    const { key, other, deleted } = await writesWhileNode0Hung(dict);
    expect(await dict.get(key)).toBe('v2');
    expect(await dict.get(deleted)).toBeUndefined();
    // The cache stayed warm: an entry nobody wrote meanwhile is still served by node0.
    expect(await dict.get(other)).toBe('untouched');
    expect(await redisCommand(fixture.fleet.servers[0].port, 'GET', 'flap:' + key)).toBe('"v2"');
    // The heir no longer keeps a copy that a later ejection could serve stale.
    const heir = dict.aliveHash.without('node0').locate(dict.getEntry(key))!;
    const heirPort = fixture.serverOf(heir).port;
    expect(await redisCommand(heirPort, 'EXISTS', 'flap:' + key)).toBe('0');
  });

  it('a hash written through visitRedis while the node was out is handed back too', async () => {
    const dict = fixture.dict<string>({ handoff: 'copy' });
    const [hash, plain] = keysOwnedBy(dict, 'node0', 2);
    fixture.fleet.servers[0].hang();
    await dict.set(plain, 'v2'); // times out on node0, lands on its heir
    // Not a string: a handoff by GET would meet WRONGTYPE and keep node0 out for good.
    await dict.visitRedis('HSET', hash, 'field', 'value');
    await dict.visitRedis('PEXPIRE', hash, 60_000);
    const back = rediscovery(dict);
    fixture.fleet.servers[0].resume();
    expect((await back).handoff).toMatchObject({ entries: 2, overflowed: false });
    const port = fixture.fleet.servers[0].port;
    expect(await redisCommand(port, 'HGET', 'flap:' + hash, 'field')).toBe('value');
    expect(Number(await redisCommand(port, 'PTTL', 'flap:' + hash))).toBeGreaterThan(50_000);
    expect(await dict.visitRedis('HGET', hash, 'field')).toBe('value');
    expect(await dict.get(plain)).toBe('v2');
  });

  it('a handoff of several pipeline chunks hands back every entry and deletion', async () => {
    const dict = fixture.dict<string>({ handoff: 'copy' });
    // Two reads per entry: a chunk is PIPELINE_CHUNK / 2 entries; this spans several.
    const keys = keysOwnedBy(dict, 'node2', PIPELINE_CHUNK * 2 + 3);
    const deleted = keys.filter((_, i) => i % 10 === 0);
    await dict.setMany(keys.map((k) => [k, 'v1'] as const));
    await fixture.fleet.servers[2].kill();
    await dict.setMany(keys.map((k) => [k, 'v2'] as const));
    expect(await dict.deleteMany(deleted)).toBe(deleted.length);
    // Listening first: the heartbeat may bring the node back before restart() resolves.
    const back = rediscovery(dict);
    await fixture.fleet.servers[2].restart();
    const event = await back;
    expect(event.handoff).toMatchObject({ entries: keys.length, overflowed: false });
    const expected = keys.map((k) => (deleted.includes(k) ? undefined : 'v2'));
    expect(await dict.getMany(keys)).toEqual(expected);
    // Straight from node2: the values are its own now, not read through an heir.
    const port = fixture.fleet.servers[2].port;
    expect(await dataKeyCount(port)).toBe(keys.length - deleted.length);
    const last = keys.at(-1)!;
    expect(await redisCommand(port, 'GET', 'flap:' + last)).toBe('"v2"');
  });

  it('the handed-back value keeps its remaining TTL', async () => {
    const dict = fixture.dict<string>({ handoff: 'copy' });
    const [key] = keysOwnedBy(dict, 'node1', 1);
    await dict.set(key, 'v1');
    await fixture.fleet.servers[1].kill();
    await dict.set(key, 'v2', { ttl: 30 });
    const back = rediscovery(dict);
    await fixture.fleet.servers[1].restart();
    await back;
    const pttl = Number(await redisCommand(fixture.fleet.servers[1].port, 'PTTL', 'flap:' + key));
    expect(pttl).toBeGreaterThan(25_000);
    expect(pttl).toBeLessThanOrEqual(30_000);
    expect(await dict.get(key)).toBe('v2');
  });

  it('clear() and clearPrefix() while a node is out: its cleared entries do not come back', async () => {
    const dict = fixture.dict<string>({ handoff: 'copy' });
    const [a, b, c] = keysOwnedBy(dict, 'node1', 3);
    await dict.set(a, 'before');
    await dict.set(`user:${b}`, 'before');
    await dict.set(c, 'before');
    const other = await dict.clearPrefix('none:'); // nothing to do: no hint needed either
    expect(other).toBe(0);
    fixture.fleet.servers[1].hang();
    await dict.get(a); // times out on node1: ejected, still holding the three entries
    expect(dict.aliveHash.nodes).not.toContain('node1');
    await dict.clearPrefix('user:');
    await dict.clear();
    await dict.set(c, 'after'); // written after the clear: handed back, not cleared
    const back = rediscovery(dict);
    fixture.fleet.servers[1].resume();
    await back;
    expect(await dict.get(a)).toBeUndefined();
    expect(await dict.get(`user:${b}`)).toBeUndefined();
    expect(await dict.get(c)).toBe('after');
    expect(await dict.size()).toBe(1);
    // node1 holds only the entry written after the clear.
    expect(await dataKeyCount(fixture.fleet.servers[1].port)).toBe(1);
  });

  it("past handoffLimit, 'clear' deletes the dict's entries on the returning node", async () => {
    const dict = fixture.dict<string>({ handoff: 'copy', handoffLimit: 2 });
    // One heir for all of them: the limit is per node that takes the writes.
    const keys = keysOwnedBy(dict, 'node2', 6, { heir: 'node0' });
    for (const key of keys) await dict.set(key, 'old');
    await redisCommand(fixture.fleet.servers[2].port, 'SET', 'foreign', 'kept');
    fixture.fleet.servers[2].hang();
    for (const key of keys.slice(0, 4)) await dict.set(key, 'new');
    const back = rediscovery(dict);
    fixture.fleet.servers[2].resume();
    const event = await back;
    expect(event.handoff).toMatchObject({ overflowed: true, policy: 'clear', entries: 0 });
    // No stale 'old' anywhere: node2's entries are cleared, and so are the copies of them
    // that node0 took (misses).
    expect(await dict.getMany(keys)).toEqual(keys.map(() => undefined));
    expect(await dataKeyCount(fixture.fleet.servers[0].port)).toBe(0);
    expect(await redisCommand(fixture.fleet.servers[2].port, 'GET', 'foreign')).toBe('kept');
  });

  it("past handoffLimit, 'ttl' trusts the TTLs and says so", async () => {
    const dict = fixture.dict<string>({ handoff: 'copy', handoffLimit: 1, handoffOverflow: 'ttl' });
    const keys = keysOwnedBy(dict, 'node2', 3, { heir: 'node0' });
    for (const key of keys) await dict.set(key, 'old');
    fixture.fleet.servers[2].hang();
    for (const key of keys.slice(0, 2)) await dict.set(key, 'new');
    const back = rediscovery(dict);
    fixture.fleet.servers[2].resume();
    expect((await back).handoff).toMatchObject({ overflowed: true, policy: 'ttl', entries: 1 });
    expect(await dict.get(keys[2])).toBe('old');
  });

  it('handoffLimit 0 disables it', async () => {
    const dict = fixture.dict<string>({ handoff: 'copy', handoffLimit: 0 });
    const [key] = keysOwnedBy(dict, 'node0', 1);
    await dict.set(key, 'v1');
    fixture.fleet.servers[0].hang();
    await dict.set(key, 'v2');
    const back = rediscovery(dict);
    fixture.fleet.servers[0].resume();
    expect((await back).handoff).toBeUndefined();
    expect(dict.aliveHash.nodes).toContain('node0');
  });
});

describe("hinted handoff with several writers (handoff: 'invalidate', the default)", () => {
  it('a hung node that returns serves none of what was written or deleted meanwhile', async () => {
    const dict = fixture.dict<string>();
    const { key, other, deleted } = await writesWhileNode0Hung(dict);
    // Invalidated on both sides: a miss, never node0's old v1 — whichever process wrote v2.
    expect(await dict.get(key)).toBeUndefined();
    expect(await dict.get(deleted)).toBeUndefined();
    // The cache stayed warm: an entry nobody wrote meanwhile is still served by node0.
    expect(await dict.get(other)).toBe('untouched');
    const heir = dict.aliveHash.without('node0').locate(dict.getEntry(key))!;
    expect(await redisCommand(fixture.serverOf(heir).port, 'EXISTS', 'flap:' + key)).toBe('0');
    expect(await redisCommand(fixture.fleet.servers[0].port, 'EXISTS', 'flap:' + key)).toBe('0');
  });

  it("another dict (another process's connections) brings the node back: it invalidates this one's writes too", async () => {
    const writer = fixture.dict<string>();
    const [key] = keysOwnedBy(writer, 'node0', 1);
    await writer.set(key, 'v1');
    fixture.fleet.servers[0].hang();
    await writer.set(key, 'v2'); // times out on node0: the writer ejects it, writes on the heir
    expect(writer.aliveHash.nodes).not.toContain('node0');
    // A second dict over the same nodes, with its own connections, started while node0 hangs:
    // told by the writer's report, it holds node0 out too.
    const reader = fixture.dict<string>();
    await until(() => !reader.aliveHash.nodes.includes('node0'), 2_000);
    expect(await reader.get(key)).toBe('v2');
    await writer.close(); // the writer goes away before node0 returns, its report withdrawn
    const back = rediscovery(reader);
    fixture.fleet.servers[0].resume();
    const event = await back;
    // The hint was on the heir, not in the writer's memory: the reader hands it back.
    expect(event.handoff).toMatchObject({ entries: 1 });
    expect(await reader.get(key)).toBeUndefined();
  });
});
