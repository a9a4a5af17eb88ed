/**
 * Proof against the real thing: a nutcracker (twemproxy 0.5) in front of local redis-servers
 * stores a few thousand keys, and every key must sit on the server our ketama ring names.
 *
 * The ring is built the way a migrating user would build it: the exact YAML nutcracker runs
 * with goes through `fromTwemproxy`, and its output configures `HashRing`.
 *
 * About bytes: HashRing hashes the bytes Redis gets for an entry: a string's UTF-8, and for a
 * key that is not valid UTF-8 (e.g. a lone 0xFE byte) its own bytes, which its entry (what a
 * RingDict makes of a Buffer key, `fromWire`) holds as lone surrogates. Every key is checked
 * with `ring.locate(entry)` and, independently, at byte level with the same building blocks
 * (`hashBytes`, `buildKetamaContinuum`, `pointIndex`), both tied to nutcracker's answer; and a
 * RingDict built from the import reads Buffer keys nutcracker wrote.
 */
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pointIndex } from '../../lib/core/hashing/continuum.js';
import { hashBytes } from '../../lib/core/hashing/hash-functions.js';
import { HashRing } from '../../lib/core/hashing/hash-ring.js';
import { RingDict } from '../../lib/core/ring-dict.js';
import { buildKetamaContinuum } from '../../lib/core/hashing/ketama-continuum.js';
import { fromWire } from '../../lib/core/keys/wire.js';
import {
  fromTwemproxy,
  type TwemproxyConnection,
  type TwemproxyGroupConfig,
} from '../../lib/twemproxy/from-twemproxy.js';
import {
  startNutcracker,
  stopAllNutcrackers,
  type PoolOptionValue,
} from '../helpers/nutcracker.js';
import { redisCommand } from '../helpers/redis-command.js';
import { respPipeline, RespError, type RespTarget } from '../helpers/resp.js';
import { startRedisServers, type RedisFleet } from '../helpers/redis-fleet.js';
import { RedisServer, stopAllRedisServers } from '../helpers/redis-servers.js';

interface TestKey {
  bytes: Buffer;
  /** The key as a JS string, when its bytes are valid UTF-8. */
  text?: string;
}

function keysForTest(): TestKey[] {
  const texts: string[] = [''];
  for (let i = 0; i < 400; i++) {
    texts.push(
      `user:${i}`, // ASCII
      `ключ:${i}:значение`, // Cyrillic: two-byte UTF-8, every byte of it ≥ 0x80
      `键${i}値`, // CJK: three-byte UTF-8
      `🔑${i}`, // astral: four-byte UTF-8 (a surrogate pair in JS)
      `a b {c} ${i}`, // spaces and braces
      `a{}b{c}${i}`, // an empty tag first
      `}{${i}{x}`, // a closing brace before the opening one
      `${'x'.repeat(290)}:${i}`, // long keys, about 300 bytes
    );
  }
  for (let i = 0; i < 300; i++) {
    texts.push(`session:{${i % 37}}:data:${i}`, `{tag${i % 11}}:${i}`, `café crème ${i}`);
  }
  texts.push('x'.repeat(1200), 'line\r\nbreak', 'tab\there', '\u0000nul', '{}', '{', '}');
  const keys: TestKey[] = texts.map((text) => ({ bytes: Buffer.from(text, 'utf8'), text }));
  // Bytes ≥ 0x80 that are not UTF-8: only the byte-level path can name their node.
  for (let i = 0; i < 400; i++) {
    const raw = Buffer.from([0x80 + (i % 128), 0xfe, 0xff, ...Buffer.from(String(i))]);
    keys.push({ bytes: raw });
    keys.push({ bytes: Buffer.concat([Buffer.from('{'), raw, Buffer.from('}tail')]) });
  }
  const seen = new Set<string>();
  const unique = keys.filter((k) => {
    const id = k.bytes.toString('hex');
    return !seen.has(id) && (seen.add(id), true);
  });
  // A guard on the fixture, not a test: the comparisons below are only as strong as the keys.
  if (unique.length < 3000 || unique.every((k) => k.text !== undefined)) {
    throw new Error(`keysForTest built ${unique.length} keys; expected 3000+, some not UTF-8`);
  }
  return unique;
}

/** twemproxy's hash tag rule on raw bytes, written independently of HashRing's. */
function tagged(bytes: Buffer, tag: string | undefined): Buffer {
  if (tag === undefined) return bytes;
  const open = bytes.indexOf(tag.charCodeAt(0));
  if (open === -1) return bytes;
  const close = bytes.indexOf(tag.charCodeAt(1), open + 1);
  return close > open + 1 ? bytes.subarray(open + 1, close) : bytes;
}

/** The node twemproxy picks for raw bytes, from the building blocks. */
function byteLevelOwner(
  group: TwemproxyGroupConfig,
  live: readonly string[],
): (bytes: Buffer) => string {
  const continuum = buildKetamaContinuum(
    live,
    live.map((name) => group.nodes[name].capacity),
  );
  return (bytes) => {
    const key = tagged(bytes, group.hashTag);
    const hash = key.length === 0 ? 0 : hashBytes(group.hashFunction, key);
    return live[continuum.owners[pointIndex(continuum.points, hash)]];
  };
}

function ringOf(group: TwemproxyGroupConfig): HashRing {
  const capacities = Object.fromEntries(
    Object.entries(group.nodes).map(([name, node]) => [name, node.capacity]),
  );
  return new HashRing(capacities, {
    distribution: group.distribution,
    hashFunction: group.hashFunction,
    hashTag: group.hashTag,
  });
}

/** Where the importer says a node is: a port (from the URL or options) or a socket path. */
function targetOf(connection: TwemproxyConnection): RespTarget {
  if (typeof connection === 'string') return Number(new URL(connection).port);
  if ('path' in connection) return { path: connection.path };
  return connection.port;
}

let fleet: RedisFleet;
let socketServer: RedisServer;
let socketPath: string;
const allKeys = keysForTest();

beforeAll(async () => {
  socketPath = join(tmpdir(), `ring-nutcracker-${process.pid}-${Date.now()}.sock`);
  [fleet, socketServer] = await Promise.all([
    startRedisServers(3),
    RedisServer.start({
      name: 'unix',
      extraArgs: ['--unixsocket', socketPath, '--unixsocketperm', '700'],
    }),
  ]);
});

afterAll(async () => {
  await stopAllNutcrackers();
  await fleet?.stop();
  await socketServer?.stop();
  await stopAllRedisServers();
});

interface Placement {
  /** Keys checked. */
  checked: number;
  /** Human-readable mismatches (empty when every key is where it should be). */
  mismatches: string[];
}

/**
 * Starts nutcracker with the pool `options`, writes every key through it, then asks every
 * server directly which keys it holds and compares with our placement (`live` nodes only).
 */
async function writeThroughAndCompare(
  options: Record<string, PoolOptionValue>,
  prepare?: (group: TwemproxyGroupConfig, port: number) => Promise<string[]>,
  keys: readonly TestKey[] = allKeys,
): Promise<Placement> {
  const servers = [...fleet.servers, socketServer];
  await Promise.all(servers.map((s) => redisCommand(s.port, 'FLUSHALL')));
  const proxy = await startNutcracker({ options: { redis: true, ...options } });
  try {
    const { group } = fromTwemproxy(proxy.yaml);
    const all = Object.keys(group.nodes);
    const ejected = prepare ? await prepare(group, proxy.port) : [];
    const live = all.filter((name) => !ejected.includes(name));
    let ring = ringOf(group);
    for (const name of ejected) ring = ring.without(name);
    await Promise.all(
      servers.filter((s) => s.running).map((s) => redisCommand(s.port, 'FLUSHALL')),
    );

    const replies = await respPipeline(
      proxy.port,
      keys.map((k) => ['SET', k.bytes, '1']),
    );
    const failed = replies.filter((r) => r !== 'OK');
    expect(failed, `nutcracker refused writes:\n${proxy.log()}`).toEqual([]);

    const holders: string[][] = keys.map(() => []);
    for (const name of live) {
      const exists = await respPipeline(
        targetOf(group.nodes[name].connection),
        keys.map((k) => ['EXISTS', k.bytes]),
      );
      exists.forEach((reply, i) => {
        if (reply instanceof RespError) throw new Error(reply.message);
        if (reply === 1) holders[i].push(name);
      });
    }
    const mismatches: string[] = [];
    const ownerOf = byteLevelOwner(group, live);
    keys.forEach((k, i) => {
      const expected = ownerOf(k.bytes);
      const label = k.text === undefined ? `0x${k.bytes.toString('hex')}` : JSON.stringify(k.text);
      const located = ring.locate(k.text ?? fromWire(k.bytes));
      if (located !== expected) {
        mismatches.push(`${label}: ring.locate ${located} ≠ byte level ${expected}`);
      }
      if (holders[i].length !== 1 || holders[i][0] !== expected) {
        mismatches.push(
          `${label}: nutcracker put it on [${holders[i].join(', ')}], we say ${expected}`,
        );
      }
    });
    return { checked: keys.length, mismatches };
  } finally {
    await proxy.stop();
  }
}

const tcp = (i: number) => `127.0.0.1:${fleet.servers[i].port}`;

describe('nutcracker compatibility: every key on the server nutcracker puts it on', () => {
  it('named servers, weights 1, 1, 2, default hash (fnv1a_64)', async () => {
    const result = await writeThroughAndCompare({
      distribution: 'ketama',
      servers: [`${tcp(0)}:1 alpha`, `${tcp(1)}:1 beta`, `${tcp(2)}:2 gamma`],
    });
    expect(result.mismatches.slice(0, 10)).toEqual([]);
    expect(result.checked).toBeGreaterThanOrEqual(3000);
  });

  it('unnamed servers, weights 29, 30, 61 (identity host:port; float point counts)', async () => {
    const result = await writeThroughAndCompare({
      hash: 'fnv1a_64',
      distribution: 'ketama',
      servers: [`${tcp(0)}:29`, `${tcp(1)}:30`, `${tcp(2)}:61`],
    });
    expect(result.mismatches.slice(0, 10)).toEqual([]);
  });

  it('hash_tag "{}"', async () => {
    const result = await writeThroughAndCompare({
      hash: 'fnv1a_64',
      hash_tag: '{}',
      distribution: 'ketama',
      servers: [`${tcp(0)}:1 alpha`, `${tcp(1)}:1 beta`, `${tcp(2)}:2 gamma`],
    });
    expect(result.mismatches.slice(0, 10)).toEqual([]);
  });

  it('hash: md5, unnamed servers, weights 3, 5, 7', async () => {
    const result = await writeThroughAndCompare({
      hash: 'md5',
      distribution: 'ketama',
      servers: [`${tcp(0)}:3`, `${tcp(1)}:5`, `${tcp(2)}:7`],
    });
    expect(result.mismatches.slice(0, 10)).toEqual([]);
  });

  it('a RingDict from the import reads every key nutcracker wrote, Buffer keys not UTF-8 too', async () => {
    await Promise.all(fleet.servers.map((s) => redisCommand(s.port, 'FLUSHALL')));
    const proxy = await startNutcracker({
      options: {
        redis: true,
        hash_tag: '{}',
        servers: [`${tcp(0)}:1 alpha`, `${tcp(1)}:3 beta`, `${tcp(2)}:2 gamma`],
      },
    });
    const { group } = fromTwemproxy(proxy.yaml);
    const dict = new RingDict<string>({ ...group, codec: 'string', commandTimeout: 2000 });
    try {
      const written = await respPipeline(
        proxy.port,
        allKeys.map((k, i) => ['SET', k.bytes, `v${i}`]),
      );
      expect(written.filter((reply) => reply !== 'OK')).toEqual([]);
      const read = await dict.getMany(allKeys.map((k) => k.text ?? k.bytes));
      const wrong = allKeys.filter((_, i) => read[i] !== `v${i}`);
      expect(wrong.map((k) => k.text ?? `0x${k.bytes.toString('hex')}`).slice(0, 10)).toEqual([]);
    } finally {
      await dict.close();
      await proxy.stop();
    }
  });

  it.each(['fnv1_64', 'fnv1_32', 'fnv1a_32', 'crc32a'])(
    'hash: %s, with hash_tag "<>"',
    async (hash) => {
      const result = await writeThroughAndCompare({
        hash,
        hash_tag: '<>',
        servers: [`${tcp(0)}:10 n-0`, `${tcp(1)}:20 n-1`, `${tcp(2)}:15 n-2`],
      });
      expect(result.mismatches.slice(0, 10)).toEqual([]);
    },
  );

  it('an unnamed unix socket server (identity "/path:")', async () => {
    const result = await writeThroughAndCompare({
      servers: [`${tcp(0)}:1`, `${socketPath}:1`, `${tcp(1)}:2`],
    });
    expect(result.mismatches.slice(0, 10)).toEqual([]);
  });

  it('points shared by two servers go to the first in twemproxy order (shorter name, then bytes)', async () => {
    // MD5 collisions between `name-i` digests, found offline: n789 and n1030 share point
    // 2011699212, n1213 and n1280 share 1718821595. twemproxy sorts servers by name length
    // first, so n789 wins although 'n1030' < 'n789' as JS strings.
    const names = ['n1030', 'n789', 'n1280', 'n1213'];
    const ties = [2011699212, 1718821595];
    const continuum = buildKetamaContinuum(names, [1, 1, 1, 1]);
    const tieKeys: TestKey[] = [];
    for (const tie of ties) {
      const at = continuum.points.indexOf(tie);
      expect(continuum.points[at + 1]).toBe(tie);
      const previous = continuum.points[at - 1];
      for (let i = 0, found = 0; found < 20 && i < 1_000_000; i++) {
        const text = `tie:${i}`;
        const hash = hashBytes('fnv1a_64', Buffer.from(text));
        if (hash > previous && hash <= tie) {
          tieKeys.push({ text, bytes: Buffer.from(text) });
          found++;
        }
      }
    }
    expect(tieKeys).toHaveLength(40);
    const result = await writeThroughAndCompare(
      {
        servers: [
          `${tcp(0)}:1 n1030`,
          `${tcp(1)}:1 n789`,
          `${tcp(2)}:1 n1280`,
          `${socketPath}:1 n1213`,
        ],
      },
      undefined,
      tieKeys,
    );
    expect(result.mismatches).toEqual([]);
    const ring = new HashRing(
      { n1030: 1, n789: 1, n1280: 1, n1213: 1 },
      { distribution: 'ketama', hashFunction: 'fnv1a_64' },
    );
    expect(new Set(tieKeys.map((k) => ring.locate(k.text as string)))).toEqual(
      new Set(['n789', 'n1213']),
    );
  });

  it('ejection (auto_eject_hosts): without() rebuilds the continuum as nutcracker does', async () => {
    const dead = fleet.servers[0];
    try {
      const result = await writeThroughAndCompare(
        {
          auto_eject_hosts: true,
          server_failure_limit: 1,
          server_retry_timeout: 60_000,
          timeout: 2000,
          servers: [`${tcp(0)}:1 alpha`, `${tcp(1)}:1 beta`, `${tcp(2)}:2 gamma`],
        },
        async (group, port) => {
          await dead.kill();
          // A key alpha owns: the first request to it fails and ejects alpha; once the
          // proxy has rebuilt its continuum, the same key is stored elsewhere.
          const ring = ringOf(group);
          const probe = Array.from({ length: 1000 }, (_, i) => `probe:${i}`).find(
            (k) => ring.locate(k) === 'alpha',
          ) as string;
          const deadline = Date.now() + 5_000;
          for (;;) {
            const [reply] = await respPipeline(port, [['SET', probe, '1']]);
            if (reply === 'OK') break;
            if (Date.now() > deadline) throw new Error(`alpha was never ejected: ${String(reply)}`);
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
          // A rebuild from the live nodes differs from filtering alpha's points out when the
          // weights are unequal; make sure this case tells them apart.
          const rebuilt = ring.without('alpha');
          const filteredWouldMove = allKeys.some(
            (k) =>
              k.text !== undefined &&
              ring.locate(k.text) !== 'alpha' &&
              rebuilt.locate(k.text) !== ring.locate(k.text),
          );
          expect(filteredWouldMove).toBe(true);
          return ['alpha'];
        },
      );
      expect(result.mismatches.slice(0, 10)).toEqual([]);
    } finally {
      await dead.restart();
    }
  });
});

describe('nutcracker compatibility: a pool with redis_auth and redis_db', () => {
  const password = 'compat-secret';
  let locked: RedisFleet;
  beforeAll(async () => {
    locked = await startRedisServers(3, { extraArgs: ['--requirepass', password] });
  });
  afterAll(() => locked.stop());

  // nutcracker sends SELECT before AUTH: the server refuses it and the pool stays on database
  // 0. The import said db 3, and a dict made from it found none of the 600 keys.
  it('a RingDict from the import reads every key nutcracker wrote, with a warning', async () => {
    const proxy = await startNutcracker({
      options: {
        redis: true,
        redis_auth: password,
        redis_db: 3,
        servers: locked.servers.map((s, i) => `127.0.0.1:${s.port}:${i + 1} n${i}`),
      },
    });
    const { group, warnings } = fromTwemproxy(proxy.yaml);
    const dict = new RingDict<string>({ ...group, codec: 'string', commandTimeout: 2000 });
    try {
      const keys = Array.from({ length: 600 }, (_, i) => `auth-db:${i}`);
      const [auth, ...written] = await respPipeline(proxy.port, [
        ['AUTH', password],
        ...keys.map((key, i) => ['SET', key, `v${i}`]),
      ]);
      expect([auth, ...new Set(written)]).toEqual(['OK', 'OK']);
      const read = await dict.getMany(keys);
      expect(keys.filter((_, i) => read[i] !== `v${i}`).length).toBe(0);
      expect(warnings.filter((w) => w.includes('redis_db'))).toEqual([
        expect.stringMatching(/SELECT before AUTH, so it stays on database 0/),
      ]);
    } finally {
      await dict.close();
      await proxy.stop();
    }
  });
});
