import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RingArgumentError, RingDict, type RingDictOptions } from '../../lib/index.js';
import { redisCommand } from '../helpers/redis-command.js';
import { RedisServer } from '../helpers/redis-servers.js';
import { collect } from '../helpers/ring-dicts.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { sleep, until } from '../helpers/wait.js';

/**
 * A value longer than a server's `proto-max-bulk-len` is refused before it is sent, wherever it
 * would go: Redis answers it with a protocol error and closes the connection, which failed every
 * command in flight on it and ejected the node. The paths past `set` itself: a write queued
 * before the first handshake, a migration's own node, the warm-up's copy to a new owner. (The
 * check of `set`, `setRaw` and `setMany` against connected nodes is in bad-input.spec.ts.)
 */

const MiB = 1024 * 1024;
let roomy: RedisServer;
let strict: RedisServer;
const open: RingDict<string>[] = [];

beforeAll(async () => {
  [roomy, strict] = await Promise.all([
    RedisServer.start({ name: 'limit-roomy' }),
    RedisServer.start({ name: 'limit-strict', extraArgs: ['--proto-max-bulk-len', '1mb'] }),
  ]);
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((dict) => dict.close()));
  for (const server of [roomy, strict]) await redisCommand(server.port, 'FLUSHALL');
});
afterAll(async () => {
  await Promise.all([roomy, strict].map((server) => server?.stop()));
});

function dict(options: Partial<RingDictOptions<string>>): RingDict<string> {
  const made = new RingDict<string>({
    heartbeatInterval: 100,
    commandTimeout: 500,
    retryRatio: 0,
    codec: 'string',
    nodes: { strict: { capacity: 1, connection: strict.url } },
    ...options,
  });
  open.push(made);
  return made;
}

const refusal = (write: Promise<unknown>) =>
  write.then(
    () => 'written',
    (error: unknown) => (error instanceof RingArgumentError ? 'refused' : String(error)),
  );

describe('a value longer than a server accepts', () => {
  // Its limit was Redis' default until the handshake answered.
  it('written before the first handshake: refused once the node says its limit', async () => {
    const fresh = dict({});
    const events = collect(fresh);
    const batch = fresh.setMany([
      ['small', 'v'],
      ['big', 'x'.repeat(MiB + 10)],
    ]);
    expect(await refusal(fresh.set('k', 'x'.repeat(MiB + 10)))).toBe('refused');
    expect(await refusal(batch)).toBe('refused');
    expect(await fresh.get('small')).toBeUndefined();
    await sleep(200);
    expect(events).toEqual([]);
  });

  // Waiting for a limit must not wait for a node that never answers: every long write waited
  // `connectTimeout` for a black-holed node, again and again (its limit stayed unknown).
  it('a node that never connects: a long value waits one commandTimeout at most, once', async () => {
    const hole = await TcpProxy.start(roomy.port);
    try {
      hole.blackhole();
      const wary = dict({
        lazyConnect: true,
        connectTimeout: 2_000,
        nodes: {
          roomy: { capacity: 1, connection: roomy.url },
          hole: { capacity: 1, connection: hole.url },
        },
      });
      const [first, second] = ['a', 'b'].map((tag) =>
        Array.from({ length: 50 }, (_, i) => `${tag}${i}`).find(
          (key) => wary.totalHash.locate(wary.getEntry(key)) === 'roomy',
        ),
      );
      const value = 'x'.repeat(2 * MiB);
      let started = performance.now();
      await wary.set(first!, value);
      expect(performance.now() - started).toBeLessThan(500 + 400);
      started = performance.now();
      await wary.set(second!, value);
      expect(performance.now() - started).toBeLessThan(200);
    } finally {
      await hole.close();
    }
  });

  // Its own node connects as the migration starts: a value written before its handshake was
  // sent unchecked (red in CI once: the protocol error, then "not reached").
  it('during a migration, on a node only `from` names: refused, its handshake awaited', async () => {
    const slow = await TcpProxy.start(strict.port);
    try {
      slow.delay(30);
      const migrating = dict({
        nodes: { roomy: { capacity: 1, connection: roomy.url } },
        migration: {
          from: { strict: { capacity: 1, connection: slow.url } },
          until: Date.now() + 60_000,
        },
      });
      await migrating.connect();
      const events = collect(migrating);
      const long = 'z'.repeat(1.5 * MiB);
      const writes = [0, 1, 2].map((i) => refusal(migrating.set(`m${i}`, long)));
      expect(await Promise.all(writes)).toEqual(['refused', 'refused', 'refused']);
      await sleep(200);
      expect(events).toEqual([]);
    } finally {
      await slow.close();
    }
  });

  it('held by a former owner: the warm-up copies none to an owner that cannot take it', async () => {
    const growing = dict({
      warmUpWindow: 10_000,
      nodes: { roomy: { capacity: 1, connection: roomy.url } },
    });
    const value = 'x'.repeat(2 * MiB);
    const keys = Array.from({ length: 40 }, (_, i) => `w${i}`);
    for (const key of keys) await growing.set(key, value);
    const events = collect(growing);
    await growing.setNodes({
      roomy: { capacity: 1, connection: roomy.url },
      strict: { capacity: 1, connection: strict.url },
    });
    await until(() => growing.aliveHash.nodes.includes('strict'), 3_000);
    const moved = keys.filter(
      (key) => growing.totalHash.locate(growing.getEntry(key)) === 'strict',
    );
    expect(moved.length).toBeGreaterThan(0);
    for (const key of moved) expect(await growing.get(key)).toBe(value);
    await sleep(200);
    expect(events.filter((event) => event.type === 'ejected')).toEqual([]);
  });
});
