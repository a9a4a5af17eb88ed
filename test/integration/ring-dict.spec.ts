import { describe, expect, it } from 'vitest';
import { RingClusterUnavailableError, RingCodecError, RingConfigError } from '../../lib/index.js';
import { runNodeScript } from '../helpers/node-script.js';
import { until } from '../helpers/wait.js';
import { redisCommand } from '../helpers/redis-command.js';
import { ringNodes, taggedNodes } from '../helpers/redis-fleet.js';
import type { RedisServer } from '../helpers/redis-servers.js';
import { collect, keysOwnedBy, saw, useRingDicts } from '../helpers/ring-dicts.js';
import { dataKeyCount } from '../helpers/data-keys.js';

/**
 * RingDict against three real servers: what it stores and where, its failure rules (a dead,
 * a hung, a returning node; none alive; a reply error), close(), lazyConnect, clearPrefix,
 * raw access, and a stalled process.
 */

// Generous enough that a loaded CI machine does not eject a healthy node; the hang test
// measures against it.
const COMMAND_TIMEOUT = 500;
const HEARTBEAT = 100;

const fixture = useRingDicts({
  heartbeatInterval: HEARTBEAT,
  commandTimeout: COMMAND_TIMEOUT,
  retryRatio: 0,
});

describe('RingDict basics', () => {
  it('stores, reads, checks and deletes JSON values on the owning node', async () => {
    const dict = fixture.dict<{ a: number[] }>({ prefix: 'app:' });
    await dict.set('one', { a: [1, 2] });
    expect(await dict.get('one')).toEqual({ a: [1, 2] });
    expect(await dict.has('one')).toBe(true);
    expect(await dict.get('missing')).toBeUndefined();
    const owner = fixture.serverOf(dict.aliveHash.locate('app:one')!);
    // Plain JSON, no envelope: any other client sees exactly JSON.stringify(value).
    expect(await redisCommand(owner.port, 'GET', 'app:one')).toBe('{"a":[1,2]}');
    expect(await dict.delete('one')).toBe(true);
    expect(await dict.delete('one')).toBe(false);
    expect(await dict.has('one')).toBe(false);
  });

  it('spreads keys over every node', async () => {
    const dict = fixture.dict();
    for (let i = 0; i < 300; i++) await dict.set(`spread${i}`, i);
    for (const server of fixture.fleet.servers) {
      expect(await dataKeyCount(server.port)).toBeGreaterThan(50);
    }
  });

  it('uses the string codec and custom binary codecs', async () => {
    const strings = fixture.dict<string>({ codec: 'string', prefix: 's:' });
    await strings.set('a', 'plain text');
    expect(await strings.get('a')).toBe('plain text');
    const binary = fixture.dict<number[]>({
      prefix: 'b:',
      codec: { binary: true, encode: (v) => Buffer.from(v), decode: (raw) => [...raw] },
    });
    await binary.set('x', [0, 255, 128]);
    expect(await binary.get('x')).toEqual([0, 255, 128]);
  });

  it('maps keys through the key function and getEntry', async () => {
    const dict = fixture.dict<string, never>({
      prefix: 'user:',
      key: (k) => (k as { id: number }).id.toString(),
    });
    expect(dict.getEntry({ id: 7 })).toBe('user:7');
    await dict.set({ id: 7 }, 'seven');
    expect(await dict.get({ id: 7 })).toBe('seven');
  });
});

describe('RingDict failure rules', () => {
  it('1. a SIGKILLed node: its key is answered by the next node, one ejection fires', async () => {
    const ejected: string[] = [];
    const dict = fixture.dict({ onNodeEjected: (_d, node) => ejected.push(node) });
    const events = collect(dict);
    const [key] = keysOwnedBy(dict, 'node1', 1);
    await dict.set(key, 'v1');
    await fixture.serverOf('node1').kill();

    expect(await dict.get(key)).toBeUndefined();
    await dict.set(key, 'v2');
    expect(await dict.get(key)).toBe('v2');
    const heir = dict.aliveHash.locate(dict.getEntry(key));
    expect(heir).not.toBe('node1');
    expect(await redisCommand(fixture.serverOf(heir!).port, 'GET', key)).toBe('"v2"');
    expect(ejected).toEqual(['node1']);
    expect(events.filter((e) => e.type === 'ejected')).toEqual([
      expect.objectContaining({ type: 'ejected', node: 'node1', at: expect.any(Date) }),
    ]);
    expect(dict.nodeStates().find((s) => s.name === 'node1')).toMatchObject({
      alive: false,
      ejections: 1,
      lastError: expect.stringMatching(/ECONNREFUSED|ECONNRESET|closed/),
    });
  });

  it('2. a hung node (SIGSTOP): the request returns from the next node within commandTimeout', async () => {
    const dict = fixture.dict();
    const [key] = keysOwnedBy(dict, 'node2', 1);
    await dict.set(key, 'before');
    fixture.serverOf('node2').hang();
    const start = performance.now();
    expect(await dict.get(key)).toBeUndefined();
    const elapsed = performance.now() - start;
    // The timeout is the behaviour; the margin covers a loaded CI machine.
    expect(elapsed).toBeGreaterThanOrEqual(COMMAND_TIMEOUT - 20);
    expect(elapsed).toBeLessThan(COMMAND_TIMEOUT + 400);
    // Why the ring dropped the connection; not "connection closed", which would read as if the
    // server (hung, it closes nothing) had closed it.
    expect(dict.nodeStates().find((s) => s.name === 'node2')).toMatchObject({
      alive: false,
      lastError: `no reply within ${COMMAND_TIMEOUT} ms (the connection was dropped)`,
    });
  });

  it('3a. a restarted node is rediscovered by the heartbeat within heartbeatInterval', async () => {
    const rediscovered: string[] = [];
    const dict = fixture.dict({ onNodeRediscovered: (_d, node) => rediscovered.push(node) });
    const events = collect(dict);
    const server = fixture.serverOf('node0');
    await server.kill();
    await until(() => dict.aliveHash.size === 2, 2000);
    await server.restart();
    const took = await until(() => rediscovered.length > 0, HEARTBEAT + 2000);
    expect(took).toBeLessThan(HEARTBEAT + 500);
    expect(rediscovered).toEqual(['node0']);
    expect(events.map((e) => e.type)).toEqual(['ejected', 'rediscovered']);
    expect(dict.aliveHash.size).toBe(3);
    expect(dict.nodeStates()[0]).toMatchObject({ name: 'node0', alive: true, rediscoveries: 1 });
  });

  it('3b. with heartbeatInterval 0, retryRatio probes rediscover the node', async () => {
    const dict = fixture.dict({ heartbeatInterval: 0, retryRatio: 0.5 });
    const server = fixture.serverOf('node0');
    await server.kill();
    await until(() => dict.aliveHash.size === 2, 2000);
    await server.restart();
    // No heartbeat: nothing but requests can find it back.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(dict.aliveHash.size).toBe(2);
    for (let i = 0; i < 200 && dict.aliveHash.size < 3; i++) await dict.get(`probe${i}`);
    expect(dict.aliveHash.size).toBe(3);
  });

  it("3c. a probe request starts its owner's revival and is served at once; the owner rejoins up to date", async () => {
    const dict = fixture.dict<string>({ heartbeatInterval: 0, retryRatio: 1 });
    const events = collect(dict);
    const key = keysOwnedBy(dict, 'node0', 1)[0];
    const server = fixture.serverOf('node0');
    await server.kill();
    // Written while node0 is out: its heir takes it, and records it in node0's hints there.
    await dict.set(key, 'written meanwhile');
    expect(dict.aliveHash.nodes).toEqual(['node1', 'node2']);
    await server.restart();
    // One request: served by the heir at once; its probe revives node0 meanwhile.
    expect(await dict.get(key)).toBe('written meanwhile');
    await until(() => saw(events, 'rediscovered', 'node0') === 1);
    expect(dict.aliveHash.nodes).toEqual(['node0', 'node1', 'node2']);
    // node0 came back empty, and the entry written meanwhile was invalidated on both sides:
    // a miss, never the value node0 held before.
    expect(await dict.get(key)).toBeUndefined();
    expect(dict.nodeStates()[0]).toMatchObject({ alive: true, rediscoveries: 1 });
  });

  it('3d. a probe of a hung owner never holds the request that started it', async () => {
    const dict = fixture.dict<string>({ heartbeatInterval: 0, retryRatio: 1 });
    const key = keysOwnedBy(dict, 'node0', 1)[0];
    const server = fixture.serverOf('node0');
    server.hang();
    try {
      await dict.set(key, 'v');
      expect(dict.aliveHash.nodes).toEqual(['node1', 'node2']);
      // Let the abandoned first connection finish closing before the probe opens a new one.
      await new Promise((resolve) => setTimeout(resolve, 100));
      // Every request probes node0 (retryRatio 1), which does not answer: none of them waits.
      for (let i = 0; i < 5; i++) {
        const start = performance.now();
        expect(await dict.get(key)).toBe('v');
        expect(performance.now() - start).toBeLessThan(COMMAND_TIMEOUT / 2);
      }
      expect(dict.nodeStates()[0]).toMatchObject({ alive: false, rediscoveries: 0 });
    } finally {
      server.resume();
    }
  });

  it('4. all nodes down: RingClusterUnavailableError, or onFail, and one unavailable event', async () => {
    const plain = fixture.dict();
    const fallback = fixture.dict<string, string>({ onFail: () => 'fallback' });
    const events = collect(plain);
    await Promise.all(fixture.fleet.servers.map((s) => s.kill()));
    await expect(plain.get('x')).rejects.toBeInstanceOf(RingClusterUnavailableError);
    await expect(plain.set('x', 1)).rejects.toThrow(/no node is alive/);
    expect(await fallback.get('x')).toBe('fallback');
    expect(await fallback.has('x')).toBe('fallback');
    expect(await fallback.visitRedis('GET', 'x')).toBe('fallback');
    expect(events.filter((e) => e.type === 'unavailable')).toHaveLength(1);
  });

  it('5. a reply error is thrown unchanged and ejects nothing', async () => {
    const dict = fixture.dict();
    const events = collect(dict);
    await dict.set('str', 'text');
    await expect(dict.visitRedis('LPUSH', 'str', 'x')).rejects.toThrow(/WRONGTYPE/);
    await expect(dict.visitRedis('NOSUCHCOMMAND', 'str')).rejects.toThrow(/unknown command/i);
    expect(events).toEqual([]);
    expect(dict.nodeStates().every((s) => s.alive && s.ejections === 0)).toBe(true);
    expect(await dict.visitRedis('STRLEN', 'str')).toBe(6);
  });

  it('6. keys of alive nodes never move when another node is ejected or rediscovered', async () => {
    const dict = fixture.dict();
    const keys = Array.from({ length: 600 }, (_, i) => `stable${i}`);
    for (const key of keys) await dict.set(key, key);
    const before = keys.map((k) => dict.aliveHash.locate(dict.getEntry(k)));
    await fixture.serverOf('node1').kill();
    await until(() => dict.aliveHash.size === 2, 2000);
    const during = keys.map((k) => dict.aliveHash.locate(dict.getEntry(k)));
    let moved = 0;
    for (let i = 0; i < keys.length; i++) {
      if (before[i] !== 'node1' && during[i] !== before[i]) moved++;
      // Their values are still where they were.
      if (before[i] !== 'node1') expect(await dict.get(keys[i])).toBe(keys[i]);
    }
    expect(moved).toBe(0);
    await fixture.serverOf('node1').restart();
    await until(() => dict.aliveHash.size === 3, 3000);
    expect(keys.map((k) => dict.aliveHash.locate(dict.getEntry(k)))).toEqual(before);
  });

  it('7. size, keys, entries and clear see only this prefix; clear refuses an empty prefix', async () => {
    for (const server of fixture.fleet.servers) {
      await redisCommand(server.port, 'SET', `foreign:${server.port}`, 'theirs');
      await redisCommand(server.port, 'SET', `app2:${server.port}`, 'theirs');
    }
    const dict = fixture.dict<number>({ prefix: 'app:' });
    for (let i = 0; i < 50; i++) await dict.set(`k${i}`, i);
    expect(await dict.size()).toBe(50);
    const keys: string[] = [];
    for await (const key of dict.keys()) keys.push(key);
    expect(keys.sort()).toEqual(Array.from({ length: 50 }, (_, i) => `k${i}`).sort());
    const entries = new Map<string, number>();
    for await (const [key, value] of dict) entries.set(key, value);
    expect(entries.get('k7')).toBe(7);
    expect(entries.size).toBe(50);
    const values: number[] = [];
    for await (const value of dict.values()) values.push(value);
    expect(values.reduce((a, b) => a + b, 0)).toBe((49 * 50) / 2);

    expect(await dict.clear()).toBe(50);
    expect(await dict.size()).toBe(0);
    for (const server of fixture.fleet.servers) {
      expect(await redisCommand(server.port, 'GET', `foreign:${server.port}`)).toBe('theirs');
      expect(await redisCommand(server.port, 'GET', `app2:${server.port}`)).toBe('theirs');
    }
    const unprefixed = fixture.dict();
    await expect(unprefixed.clear()).rejects.toThrow(/empty prefix.*force: true/);
    for (const server of fixture.fleet.servers) {
      expect(await dataKeyCount(server.port)).toBe(2);
    }
  });

  it('7b. a prefix with glob characters matches only itself', async () => {
    for (const server of fixture.fleet.servers)
      await redisCommand(server.port, 'SET', 'aXb:1', 'theirs');
    const dict = fixture.dict({ prefix: 'a?b:' });
    await dict.set('1', 'ours');
    expect(await dict.size()).toBe(1);
    await dict.clear();
    for (const server of fixture.fleet.servers)
      expect(await redisCommand(server.port, 'GET', 'aXb:1')).toBe('theirs');
  });

  it('8. expire and ttl land as PTTL on the key', async () => {
    const dict = fixture.dict({ prefix: 'ttl:', expire: 60 });
    await dict.set('default', 1);
    await dict.set('override', 1, { ttl: 1.5 });
    const pttl = async (key: string) => {
      const server = fixture.serverOf(dict.aliveHash.locate(dict.getEntry(key))!);
      return Number(await redisCommand(server.port, 'PTTL', dict.getEntry(key)));
    };
    const long = await pttl('default');
    expect(long).toBeGreaterThan(59_000);
    expect(long).toBeLessThanOrEqual(60_000);
    const short = await pttl('override');
    expect(short).toBeGreaterThan(1000);
    expect(short).toBeLessThanOrEqual(1500);
    const forever = fixture.dict({ prefix: 'ttl:' });
    await forever.set('none', 1);
    expect(await pttl('none')).toBe(-1);
    await expect(dict.set('bad', 1, { ttl: 0 })).rejects.toBeInstanceOf(RingConfigError);
    await expect(dict.set('bad', 1, { ttl: -1 })).rejects.toThrow(/ttl/);
    await expect(dict.set('bad', 1, { ttl: 1e300 })).rejects.toThrow(/ttl: at most/);
  });

  it('9b. close() with a request waiting on a hung node: it fails as closed and reconnects nothing', async () => {
    const tag = `close-inflight-${process.pid}`;
    const dict = fixture.dict({ nodes: taggedNodes(fixture.fleet.servers, tag) });
    await dict.connect();
    const [key] = keysOwnedBy(dict, 'node0', 1);
    fixture.serverOf('node0').hang();
    const pending = dict.get(key);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const start = performance.now();
    await dict.close();
    await expect(pending).rejects.toThrow(/RingDict "default" is closed/);
    // The request did not fail over to node1 or node2 and open a connection there again.
    await new Promise((resolve) => setTimeout(resolve, 200));
    for (const server of fixture.fleet.servers.slice(1)) {
      const clients = await redisCommand(server.port, 'CLIENT', 'LIST');
      expect(clients.split('\n').filter((line) => line.includes(`name=${tag}`))).toEqual([]);
    }
    expect(performance.now() - start).toBeLessThan(COMMAND_TIMEOUT + 400);
  });

  it('9. close() leaves no open handle: a process using a dict exits by itself', async () => {
    const script = `
      import { RingDict } from ${JSON.stringify(new URL('../../.run/lib/index.js', import.meta.url).href)};
      const dict = new RingDict({ nodes: ${JSON.stringify(ringNodes(fixture.fleet.servers))}, heartbeatInterval: 50 });
      await dict.set('child', { ok: true });
      const value = await dict.get('child');
      await dict.close();
      console.log(JSON.stringify(value));
    `;
    const { code, stdout: out } = await runNodeScript(script, 5000);
    expect(code).toBe(0);
    expect(out.trim()).toBe('{"ok":true}');
  });
});

describe('lazyConnect and connect()', () => {
  it('lazyConnect opens no connection until a request or connect(); connect() ejects what it cannot reach', async () => {
    const tag = `lazy-${process.pid}`;
    const servers = fixture.fleet.servers;
    const dict = fixture.dict({
      lazyConnect: true,
      nodes: taggedNodes(servers, tag),
    });
    const events = collect(dict);
    // The nodes' own connections (their subscriptions to the fleet's messages are `${tag}:fleet`).
    const ours = async (server: RedisServer) =>
      (await redisCommand(server.port, 'CLIENT', 'LIST'))
        .split('\n')
        .filter((line) => line.split(' ').includes(`name=${tag}`)).length;
    const counts = () => Promise.all(servers.map(ours));

    // Long enough for an eager connect to show up.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await counts()).toEqual([0, 0, 0]);
    await dict.set(keysOwnedBy(dict, 'node1', 1)[0], 1);
    expect(await counts()).toEqual([0, 1, 0]);

    await fixture.serverOf('node2').kill();
    await expect(dict.connect()).resolves.toBeUndefined();
    expect(await Promise.all(servers.slice(0, 2).map(ours))).toEqual([1, 1]);
    expect(events.map((e) => `${e.type} ${e.node}`)).toEqual(['ejected node2']);
    expect(dict.nodeStates().map((s) => s.alive)).toEqual([true, true, false]);

    await dict.close();
    await expect(dict.connect()).resolves.toBeUndefined();
    await until(
      async () => (await Promise.all(servers.slice(0, 2).map(ours))).join() === '0,0',
      2000,
    );
  });

  it('lazyConnect must be a boolean', () => {
    expect(() => fixture.dict({ lazyConnect: 'yes' as unknown as boolean })).toThrow(
      /lazyConnect: expected a boolean, got "yes"/,
    );
  });
});

describe('RingDict and a stalled process', () => {
  it('a stalled event loop right after construction does not eject healthy nodes', async () => {
    const dict = fixture.dict({ commandTimeout: 300 });
    const events = collect(dict);
    const until = Date.now() + 450;
    while (Date.now() < until) {
      // A long synchronous task: nothing else runs meanwhile.
    }
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(events).toEqual([]);
    expect(dict.nodeStates().map((s) => s.ejections)).toEqual([0, 0, 0]);
    await dict.set('after-stall', 1);
    expect(await dict.get('after-stall')).toBe(1);
  });
});

describe('RingDict clearPrefix', () => {
  it('deletes only the entries under the given key prefix', async () => {
    for (const server of fixture.fleet.servers)
      await redisCommand(server.port, 'SET', 'b:x:foreign', '1');
    const dict = fixture.dict<number>({ prefix: 'a:' });
    for (let i = 0; i < 30; i++) {
      await dict.set(`x:${i}`, i);
      await dict.set(`y:${i}`, i);
    }
    expect(await dict.clearPrefix('x:')).toBe(30);
    expect(await dict.size()).toBe(30);
    expect(await dict.get('y:3')).toBe(3);
    for (const server of fixture.fleet.servers) {
      expect(await redisCommand(server.port, 'GET', 'b:x:foreign')).toBe('1');
    }
    await expect(fixture.dict().clearPrefix('')).rejects.toThrow(/non-empty prefix/);
  });
});

describe('RingDict raw access', () => {
  it('getRaw / setRaw bypass the codec and keep the ttl rules', async () => {
    const dict = fixture.dict<number>({ prefix: 'raw:', expire: 20 });
    await dict.setRaw('a', 'not json at all');
    expect(await dict.getRaw('a')).toBe('not json at all');
    expect(await dict.getRaw('missing')).toBeUndefined();
    await expect(dict.get('a')).rejects.toBeInstanceOf(RingCodecError);
    const server = fixture.serverOf(dict.aliveHash.locate('raw:a')!);
    const pttl = Number(await redisCommand(server.port, 'PTTL', 'raw:a'));
    expect(pttl).toBeGreaterThan(19_000);
    expect(pttl).toBeLessThanOrEqual(20_000);
  });
});

describe('RingDict and a stalled process, in flight', () => {
  it('a stall with commands in flight does not eject nodes whose replies were waiting', async () => {
    const dict = fixture.dict({ commandTimeout: 200 });
    const events = collect(dict);
    // Every node connected first: this is about replies waiting in the sockets. A connect still
    // under way (HELLO, CLIENT SETINFO…) could take longer than its second 200 ms after the stall
    // when the whole suite shares 2 cores, and eject its node.
    await dict.connect();
    await dict.set('warm', 1);
    const pending = Array.from({ length: 30 }, (_, i) => dict.get(`stall${i}`));
    const until = Date.now() + 350;
    while (Date.now() < until) {
      // The process is busy: replies wait in the sockets, timers expire meanwhile.
    }
    const values = await Promise.all(pending);
    expect(values.every((v) => v === undefined)).toBe(true);
    expect(events).toEqual([]);
  });
});
