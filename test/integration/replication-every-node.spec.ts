import { afterEach, describe, expect, it } from 'vitest';
import type { RingDict } from '../../lib/index.js';
import { collect, saw, useRingDicts } from '../helpers/ring-dicts.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { until } from '../helpers/wait.js';

/**
 * Replication with as many copies as nodes: a write that meets a node's failure has no node left
 * to stand in for it, and the other copies' writes went out before the node was out, with no
 * hint. The node's return must still drop what it missed: a deleted entry never comes back, an
 * overwritten one never answers its old value.
 */

const fixture = useRingDicts(
  { heartbeatInterval: 100, commandTimeout: 400, retryRatio: 0 },
  { servers: 3 },
);
const proxies: TcpProxy[] = [];
afterEach(async () => {
  await Promise.all(proxies.splice(0).map((proxy) => proxy.close()));
});
const TIMEOUT = { timeout: 20_000 };
const keys = Array.from({ length: 300 }, (_, i) => `k${i}`);

/** A dict of 3 copies over the 3 servers, each behind a proxy of its own. */
async function everyNodeACopy(prefix: string) {
  const links = await Promise.all(fixture.fleet.servers.map((s) => TcpProxy.start(s.port)));
  proxies.push(...links);
  const nodes = Object.fromEntries(links.map((link, i) => [`node${i}`, link.url]));
  const dict = fixture.dict<number>({ prefix, nodes, replicas: 3 });
  await dict.setMany(keys.map((key, i) => [key, i]));
  return { dict, links, events: collect(dict) };
}

/** The values any read finds, after `node` is back: getMany, get and the dict's entries. */
async function readBack(dict: RingDict<number>): Promise<number[]> {
  const values = (await dict.getMany(keys)).filter((v) => v !== undefined);
  for (const key of keys) {
    const value = await dict.get(key);
    if (value !== undefined) values.push(value);
  }
  for await (const [, value] of dict) values.push(value);
  return values;
}

describe('replicas 3 of 3 nodes: a node lost during a write', () => {
  it(
    'deleteMany meeting a cut link: nothing deleted comes back once it returns',
    TIMEOUT,
    async () => {
      const { dict, links, events } = await everyNodeACopy('dm:');
      links[2].cut();
      expect(await dict.deleteMany(keys)).toBe(keys.length);
      links[2].heal();
      await until(() => saw(events, 'rediscovered', 'node2') > 0, 8000);
      expect(await readBack(dict)).toEqual([]);
    },
  );

  it(
    'delete() meeting a cut link: the first delete, sent before the ejection, too',
    TIMEOUT,
    async () => {
      const { dict, links, events } = await everyNodeACopy('d:');
      links[1].cut();
      for (const key of keys.slice(0, 20)) expect(await dict.delete(key)).toBe(true);
      links[1].heal();
      await until(() => saw(events, 'rediscovered', 'node1') > 0, 8000);
      const left = await dict.getMany(keys.slice(0, 20));
      expect(left.filter((v) => v !== undefined)).toEqual([]);
    },
  );

  it('setMany meeting a hung link: no old value once it returns', TIMEOUT, async () => {
    const { dict, links, events } = await everyNodeACopy('sm:');
    links[0].hang();
    await dict.setMany(keys.map((key, i) => [key, i + 10_000]));
    links[0].heal();
    await until(() => saw(events, 'rediscovered', 'node0') > 0, 8000);
    expect((await readBack(dict)).filter((v) => v < 10_000)).toEqual([]);
  });
});
