/**
 * Section 13, replication: what `replicas: 2` costs and buys over `replicas: 1`, side by side
 * in one run. Throughput at 64 in flight (100-byte strings, 10 000 keys, interleaved rounds,
 * both dicts on the same 3 servers under their own prefixes): `set` (every copy written),
 * `get` of present keys (the owner answers), `get` of keys the owner lost (the next copy
 * answers: what an unrepaired owner costs) and of absent keys (every copy asked). Then
 * `locateAll(entry, 2)` against `locate`, the keys still hit after a node is SIGKILLed, and
 * the servers' memory per entry.
 */
import { HashRing, RingDict } from '../lib/index.js';
import { equalNodes, userKeys } from './hash-ring.bench.js';
import {
  interleavedRounds,
  median,
  medianLoad,
  pairedRatio,
  syncOpsPerSecond,
  type BenchConfig,
  type LoadResult,
} from './measure.js';
import {
  LOAD_DETAIL_HEADER,
  loadDetail,
  percent,
  rate,
  sig,
  textTable,
  times,
  verdict,
  type Row,
  type SectionResult,
} from './report.js';
import { ioredisClient, redisFleet, ringNodes } from './servers.js';
import type { RedisFleet } from '../test/helpers/redis-fleet.js';

const SECTION = 13;
const KEY_SPACE = 10_000;
const VALUE = 'v'.repeat(100);
const IN_FLIGHT = 64;
const GOALS = { set: 0.5, get: 0.95, hitsAfterLoss: 0.99 };
/** Keys written before a node is killed, and whose memory is measured. */
const LOSS_KEYS = 20_000;

type Op = (random: number) => Promise<unknown>;

function keysOf(tag: string): string[] {
  return Array.from({ length: KEY_SPACE }, (_, i) => `${tag}:${i}`);
}

const setOn =
  (dict: RingDict<string>, keys: readonly string[]): Op =>
  (r) =>
    dict.set(keys[r % KEY_SPACE], VALUE);
const getOn =
  (dict: RingDict<string>, keys: readonly string[]): Op =>
  (r) =>
    dict.get(keys[r % KEY_SPACE]);

/** Runs `pair` interleaved; answers the detail lines and the paired ratio of the second over the first. */
async function sideBySide(
  names: [string, string],
  pair: [Op, Op],
  config: BenchConfig,
): Promise<{ lines: string[][]; ratio: number; rates: [number, number] }> {
  const samples: LoadResult[][] = await interleavedRounds(
    pair,
    IN_FLIGHT,
    config.quick ? 3 : 9,
    config.quick ? 150 : 500,
    config.quick ? 150 : 400,
  );
  const [base, ours] = samples.map((s) => s.map((r) => r.perSecond));
  return {
    lines: samples.map((s, i) => loadDetail(IN_FLIGHT, names[i], s, medianLoad(s))),
    ratio: pairedRatio(ours, base),
    rates: [median(base), median(ours)],
  };
}

/** Throughput rows: set, get, get when the owner lost the key, get of absent keys. */
async function throughputRows(config: BenchConfig): Promise<Row[]> {
  const fleet = await redisFleet(3);
  const nodes = ringNodes(fleet.value);
  const one = new RingDict<string>({ nodes, codec: 'string', prefix: 'r1:' });
  const two = new RingDict<string>({ nodes, codec: 'string', prefix: 'r2:', replicas: 2 });
  try {
    const keys = keysOf('key');
    const lost = keysOf('lost');
    const absent = keysOf('absent');
    await one.setMany(keys.map((k) => [k, VALUE]));
    await two.setMany([...keys, ...lost].map((k) => [k, VALUE]));
    await dropOwnerCopies(fleet.value, two, lost);
    const set = await sideBySide(
      ['set, replicas 1', 'set, replicas 2'],
      [setOn(one, keys), setOn(two, keys)],
      config,
    );
    const get = await sideBySide(
      ['get, replicas 1', 'get, replicas 2'],
      [getOn(one, keys), getOn(two, keys)],
      config,
    );
    const copyHit = await sideBySide(
      ['get, replicas 2, owner has it', 'get, replicas 2, owner lost it'],
      [getOn(two, keys), getOn(two, lost)],
      config,
    );
    const miss = await sideBySide(
      ['get miss, replicas 1', 'get miss, replicas 2'],
      [getOn(one, absent), getOn(two, absent)],
      config,
    );
    console.log(
      textTable(
        LOAD_DETAIL_HEADER,
        [set, get, copyHit, miss].flatMap((part) => part.lines),
      ),
    );
    const row = (what: string, part: typeof set, base: string, goal?: number): Row => ({
      item: SECTION,
      what: `${what}, ${IN_FLIGHT} in flight`,
      ours: rate(part.rates[1]),
      baseline: `${base}: ${rate(part.rates[0])}`,
      ratio: times(part.ratio),
      goal: goal === undefined ? '(measured)' : `≥ ${goal}×`,
      verdict: goal === undefined ? 'info' : verdict(part.ratio >= goal),
    });
    return [
      row('set, replicas 2 of 3 nodes', set, 'replicas 1', GOALS.set),
      row('get (hits), replicas 2 of 3 nodes', get, 'replicas 1', GOALS.get),
      row('get, owner lost the key, copy has it', copyHit, 'owner has it'),
      row('get of absent keys, replicas 2', miss, 'replicas 1'),
    ];
  } finally {
    await Promise.all([one.close(), two.close()]);
    await fleet.stop();
  }
}

/** Deletes `keys` on their owners' servers only, as an owner that restarted empty lost them. */
async function dropOwnerCopies(
  fleet: RedisFleet,
  dict: RingDict<string>,
  keys: readonly string[],
): Promise<void> {
  for (const [i, server] of fleet.servers.entries()) {
    const client = await ioredisClient(server.port);
    try {
      const owned = keys
        .map((k) => dict.getEntry(k))
        .filter((e) => dict.totalHash.locate(e) === `node${i}`);
      for (let at = 0; at < owned.length; at += 500)
        await client.value.del(...owned.slice(at, at + 500));
    } finally {
      await client.stop();
    }
  }
}

/** `locateAll(entry, 2)` against `locate` on 3 equal nodes, 100 000 keys. */
function locateRow(config: BenchConfig): Row {
  const ring = new HashRing(equalNodes(3));
  const keys = userKeys();
  const minMs = config.quick ? 100 : 300;
  const chunk = (fn: (key: string) => unknown) => {
    let at = 0;
    return () => {
      for (let i = 0; i < 10_000; i++) fn(keys[(at + i) % keys.length]);
      at += 10_000;
      return 10_000;
    };
  };
  const rounds = config.quick ? 3 : 5;
  const base: number[] = [];
  const ours: number[] = [];
  for (let r = 0; r < rounds; r++) {
    base.push(
      syncOpsPerSecond(
        chunk((k) => ring.locate(k)),
        minMs,
      ),
    );
    ours.push(
      syncOpsPerSecond(
        chunk((k) => ring.locateAll(k, 2)),
        minMs,
      ),
    );
  }
  const ratio = pairedRatio(ours, base);
  return {
    item: SECTION,
    what: 'HashRing.locateAll(entry, 2), 3 equal nodes',
    ours: rate(median(ours), 'lookups/s'),
    baseline: `locate: ${rate(median(base), 'lookups/s')}`,
    ratio: times(ratio),
    goal: '(measured)',
    verdict: 'info',
  };
}

/** Sum of `used_memory` over the fleet's servers. */
async function usedMemory(fleet: RedisFleet): Promise<number> {
  let total = 0;
  for (const server of fleet.servers) {
    const client = await ioredisClient(server.port);
    try {
      const info = await client.value.info('memory');
      total += Number(/used_memory:(\d+)/.exec(info)?.[1]);
    } finally {
      await client.stop();
    }
  }
  return total;
}

/** With `replicas`: memory per entry, then the share of keys that still hit once node1 is SIGKILLed. */
async function lossAndMemory(replicas: number): Promise<{ hits: number; bytes: number }> {
  const fleet = await redisFleet(3);
  const dict = new RingDict<string>({
    nodes: ringNodes(fleet.value),
    codec: 'string',
    prefix: 'loss:',
    replicas,
    commandTimeout: 300,
  });
  try {
    const keys = Array.from({ length: LOSS_KEYS }, (_, i) => `loss:${i}`);
    await dict.connect();
    const before = await usedMemory(fleet.value);
    await dict.setMany(keys.map((k) => [k, VALUE]));
    const bytes = ((await usedMemory(fleet.value)) - before) / LOSS_KEYS;
    await fleet.value.servers[1].kill();
    let hits = 0;
    let next = 0;
    const reader = async () => {
      while (next < keys.length) if ((await dict.get(keys[next++])) !== undefined) hits++;
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, reader));
    return { hits: hits / LOSS_KEYS, bytes };
  } finally {
    await dict.close();
    await fleet.stop();
  }
}

export async function benchReplication(config: BenchConfig): Promise<SectionResult> {
  const rows = await throughputRows(config);
  rows.push(locateRow(config));
  const one = await lossAndMemory(1);
  const two = await lossAndMemory(2);
  rows.push(
    {
      item: SECTION,
      what: `keys still hit after 1 of 3 nodes is SIGKILLed (${LOSS_KEYS} keys), replicas 2`,
      ours: percent(two.hits),
      baseline: `replicas 1: ${percent(one.hits)}`,
      ratio: times(two.hits / one.hits),
      goal: `≥ ${percent(GOALS.hitsAfterLoss, 0)}`,
      verdict: verdict(two.hits >= GOALS.hitsAfterLoss),
    },
    {
      item: SECTION,
      what: 'server memory per entry (100-byte value, used_memory over 3 servers), replicas 2',
      ours: `${sig(two.bytes)} B`,
      baseline: `replicas 1: ${sig(one.bytes)} B`,
      ratio: times(two.bytes / one.bytes),
      goal: '(measured: ×R)',
      verdict: 'info',
    },
  );
  return { rows };
}
