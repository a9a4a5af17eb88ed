import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { Attributes } from '@opentelemetry/api';
import type { MetricData } from '@opentelemetry/sdk-metrics';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  HashRing,
  RING_EVENT_CHANNEL,
  RingConfigError,
  type RingEventMessage,
} from '../../lib/index.js';
import { ringNodes } from '../helpers/redis-fleet.js';
import { FAILURE_TIMINGS, SETTLE, TEST_TIMEOUT } from '../helpers/failure-scenes.js';
import { InMemoryMetrics, pointsOf, valueAt, type ReadPoint } from '../helpers/metric-reader.js';
import { collect, keysOwnedBy, saw, useRingDicts } from '../helpers/ring-dicts.js';
import { until } from '../helpers/wait.js';

/**
 * The package's OpenTelemetry instruments read back through an in-memory SDK, against real
 * redis-servers: every command counted once on the node that ran it, by outcome, and timed;
 * the alive nodes observed; ejections and rediscoveries counted once each; nothing of a key
 * or a value in any attribute; and ring events on the diagnostics channel.
 */

const fixture = useRingDicts(FAILURE_TIMINGS);
/**
 * For the tests that count exactly: a node is never given up for a slow reply of a loaded
 * machine (a kill is refused at once, whatever the timeout).
 */
const PATIENT = { commandTimeout: 3_000 };
/** Long enough that the nodes that do answer are not given up on a loaded machine. */
const HUNG_TIMEOUT = 1_000;
let sdk: InMemoryMetrics;

beforeAll(() => {
  sdk = InMemoryMetrics.register();
});
afterAll(async () => {
  await sdk.shutdown();
});

const OPERATIONS = 'ring_redis.operations';
const DURATION = 'ring_redis.operation.duration';
const ALIVE = 'ring_redis.nodes.alive';
const TRANSITIONS = 'ring_redis.node.transitions';

/** A group's points as `node|operation|outcome → value` (outcome left out for durations). */
function tally(points: readonly ReadPoint[], group: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const { attributes: a, value } of points) {
    if (a.group !== group) continue;
    const at = [a.node, a.operation, a.outcome].filter((x) => x !== undefined).join('|');
    out[at] = (out[at] ?? 0) + value;
  }
  return out;
}

function add(expected: Record<string, number>, at: string, n = 1): void {
  expected[at] = (expected[at] ?? 0) + n;
}

describe('ring_redis.operations and ring_redis.operation.duration', () => {
  it('count every command once, on its node, by outcome, and time each', async () => {
    const dict = fixture.dict<string>({ name: 'counts', prefix: 'm:', ...PATIENT });
    await dict.connect();
    const ownerOf = (key: string) => dict.totalHash.locate(dict.getEntry(key))!;
    const keys = Array.from({ length: 30 }, (_, i) => `k${i}`);
    const counts: Record<string, number> = {};
    const timings: Record<string, number> = {};
    const single = (key: string, operation: string, outcome: string) => {
      add(counts, `${ownerOf(key)}|${operation}|${outcome}`);
      add(timings, `${ownerOf(key)}|${operation}`);
    };
    /** A batch: one run per node it reaches, each entry counted. */
    const batch = (batchKeys: string[], operation: string, outcomeOf: (k: string) => string) => {
      const nodes = new Set<string>();
      for (const key of batchKeys) {
        add(counts, `${ownerOf(key)}|${operation}|${outcomeOf(key)}`);
        nodes.add(ownerOf(key));
      }
      for (const node of nodes) add(timings, `${node}|${operation}`);
    };

    for (const key of keys.slice(0, 20)) {
      await dict.set(key, `value-${key}`);
      single(key, 'set', 'ok');
    }
    for (const [i, key] of keys.entries()) {
      expect(await dict.get(key)).toBe(i < 20 ? `value-${key}` : undefined);
      single(key, 'get', i < 20 ? 'hit' : 'miss');
    }
    for (const key of [...keys.slice(0, 5), ...keys.slice(25)]) {
      await dict.has(key);
      single(key, 'has', keys.indexOf(key) < 20 ? 'hit' : 'miss');
    }
    for (const key of keys.slice(0, 10)) {
      expect(await dict.delete(key)).toBe(true);
      single(key, 'delete', 'ok');
    }
    expect(await dict.getRaw('k10')).toBe('"value-k10"');
    single('k10', 'getRaw', 'hit');
    await dict.getMany(keys.slice(10));
    batch(keys.slice(10), 'getMany', (k) => (keys.indexOf(k) < 20 ? 'hit' : 'miss'));
    const extra = ['x0', 'x1', 'x2', 'x3', 'x4'];
    await dict.setMany(extra.map((k) => [k, `value-${k}`] as const));
    batch(extra, 'setMany', () => 'ok');
    expect(await dict.deleteMany(extra)).toBe(5);
    batch(extra, 'deleteMany', () => 'ok');
    // A reply error is the node's answer, counted as an error on that node.
    await expect(dict.visitRedis('HGET', 'k10', 'field')).rejects.toThrow(/WRONGTYPE/);
    single('k10', 'visitRedis', 'error');

    const read = await sdk.read();
    const operations = pointsOf(read.get(OPERATIONS));
    const durations = pointsOf(read.get(DURATION));
    expect(tally(operations, 'counts')).toEqual(counts);
    expect(tally(durations, 'counts')).toEqual(timings);
    // Every node served some of the 30 keys; durations are seconds of a local round trip.
    expect(new Set(keys.map(ownerOf)).size).toBe(3);
    for (const point of durations.filter((p) => p.attributes.group === 'counts')) {
      expect(point.sum! / point.value).toBeGreaterThan(0);
      expect(point.sum! / point.value).toBeLessThan(PATIENT.commandTimeout / 1000);
    }
    expectNoKeyOrValue(read, [...keys, ...extra], 'm:');
  });

  it(
    'a command that times out on a hung node is an error there; the retry counts on the next',
    TEST_TIMEOUT,
    async () => {
      const dict = fixture.dict<string>({
        name: 'hung',
        prefix: 'h:',
        commandTimeout: HUNG_TIMEOUT,
      });
      await dict.connect();
      const events = collect(dict);
      const [key] = keysOwnedBy(dict, 'node2', 1, { heir: 'node0' });
      fixture.serverOf('node2').hang();
      expect(await dict.get(key)).toBeUndefined();
      await until(() => saw(events, 'ejected', 'node2') === 1, SETTLE);

      const operations = await sdk.points(OPERATIONS);
      expect(tally(operations, 'hung')).toEqual({ 'node2|get|error': 1, 'node0|get|miss': 1 });
      // The timed-out command is timed too: at least its commandTimeout.
      const durations = await sdk.points(DURATION);
      const [timedOut] = durations.filter(
        (p) => p.attributes.group === 'hung' && p.attributes.node === 'node2',
      );
      expect(timedOut.value).toBe(1);
      expect(timedOut.sum!).toBeGreaterThanOrEqual((HUNG_TIMEOUT - 5) / 1000);
    },
  );

  it('a command in flight on a node setNodes takes out counts on that node', async () => {
    const dict = fixture.dict<string>({ name: 'leaving', prefix: 'l:', ...PATIENT });
    await dict.ping();
    const [key] = keysOwnedBy(dict, 'node2', 1);
    // The dict's first command on node2: nothing maps its connection to the node before.
    const pending = dict.get(key);
    await dict.setNodes(ringNodes(fixture.fleet.servers.slice(0, 2)));
    expect(await pending).toBeUndefined();
    expect(tally(await sdk.points(OPERATIONS), 'leaving')).toEqual({ 'node2|get|miss': 1 });
  });

  it('metrics: false records nothing for that dict; anything but a boolean is refused', async () => {
    const typo = () => fixture.dict({ name: 'typo', metrics: 'no' as never });
    expect(typo).toThrow(RingConfigError);
    expect(typo).toThrow(/^group "typo": metrics: expected a boolean, got "no"$/);
    const dict = fixture.dict<string>({ name: 'quiet', metrics: false });
    await dict.set('a', 'b');
    expect(await dict.get('a')).toBe('b');
    const read = await sdk.read();
    for (const metric of read.values()) {
      expect(pointsOf(metric).filter((p) => p.attributes.group === 'quiet')).toEqual([]);
    }
  });
});

describe('ring_redis.nodes.alive and ring_redis.node.transitions', () => {
  it('follow an ejection and a rediscovery, once each', TEST_TIMEOUT, async () => {
    const dict = fixture.dict<string>({ name: 'moves', ...PATIENT });
    await dict.connect();
    const events = collect(dict);
    const alive = async () => valueAt(await sdk.points(ALIVE), { group: 'moves' });
    const moved = async (node: string, type: string) =>
      valueAt(await sdk.points(TRANSITIONS), { group: 'moves', node, type });
    expect(await alive()).toBe(3);

    await fixture.serverOf('node1').kill();
    // Many requests see the dead node; the ejection is counted once.
    await Promise.all(keysOwnedBy(dict, 'node1', 20).map((key) => dict.get(key)));
    await until(() => saw(events, 'ejected', 'node1') === 1, SETTLE);
    expect(await alive()).toBe(2);
    expect(await moved('node1', 'ejected')).toBe(1);
    expect(await moved('node1', 'rediscovered')).toBe(0);

    await fixture.serverOf('node1').restart();
    await until(() => saw(events, 'rediscovered', 'node1') === 1, SETTLE);
    expect(await alive()).toBe(3);
    expect(await moved('node1', 'ejected')).toBe(1);
    expect(await moved('node1', 'rediscovered')).toBe(1);
    const transitions = (await sdk.points(TRANSITIONS)).filter(
      (p) => p.attributes.group === 'moves',
    );
    expect(transitions.map((p) => p.attributes)).toEqual(
      expect.arrayContaining([
        { group: 'moves', node: 'node1', type: 'ejected' },
        { group: 'moves', node: 'node1', type: 'rediscovered' },
      ]),
    );
    expect(transitions).toHaveLength(2);
  });
});

describe("a migration's own nodes", () => {
  // A node named only in `from` is none of the members: its commands were counted as "unknown".
  it('count their commands under their configured name', TEST_TIMEOUT, async () => {
    const servers = fixture.fleet.servers;
    const from = ringNodes(servers);
    const dict = fixture.dict<string>({
      name: 'migrating',
      prefix: 'mig:',
      ...PATIENT,
      nodes: ringNodes(servers.slice(0, 2)),
      migration: { from, until: Date.now() + 60_000 },
    });
    await dict.connect();
    const before = new HashRing(Object.fromEntries(Object.keys(from).map((name) => [name, 1])));
    const keys = Array.from({ length: 60 }, (_, i) => `k${i}`)
      .filter((key) => before.locate(dict.getEntry(key)) === 'node2')
      .slice(0, 5);
    expect(keys).toHaveLength(5);
    for (const key of keys) await dict.get(key);
    const gets = (await sdk.points(OPERATIONS)).filter(
      (p) => p.attributes.group === 'migrating' && p.attributes.operation === 'get',
    );
    expect(gets.map((p) => [p.attributes.node, p.value])).toEqual([['node2', 5]]);
  });
});

describe(`the diagnostics channel ${RING_EVENT_CHANNEL}`, () => {
  it('carries every ring event with its group', TEST_TIMEOUT, async () => {
    const messages: RingEventMessage[] = [];
    const listener = (message: unknown) => messages.push(message as RingEventMessage);
    subscribe(RING_EVENT_CHANNEL, listener);
    try {
      const dict = fixture.dict<string>({ name: 'diag', ...PATIENT });
      await dict.connect();
      const events = collect(dict);
      await fixture.serverOf('node0').kill();
      await Promise.all(keysOwnedBy(dict, 'node0', 5).map((key) => dict.get(key)));
      await until(() => saw(events, 'ejected', 'node0') === 1, SETTLE);
      await fixture.serverOf('node0').restart();
      await until(() => saw(events, 'rediscovered', 'node0') === 1, SETTLE);

      const ours = messages.filter((m) => m.group === 'diag');
      expect(ours.map((m) => m.event)).toEqual(events);
      expect(ours.map((m) => [m.event.type, m.event.node])).toEqual([
        ['ejected', 'node0'],
        ['rediscovered', 'node0'],
      ]);
    } finally {
      unsubscribe(RING_EVENT_CHANNEL, listener);
    }
  });
});

/** No attribute of any point names a key, an entry or a value, and only the known names are used. */
function expectNoKeyOrValue(
  read: Map<string, MetricData>,
  keys: readonly string[],
  prefix: string,
): void {
  const allowed = new Set(['group', 'node', 'operation', 'outcome', 'type', 'method']);
  const secrets = keys.flatMap((k) => [k, prefix + k, `value-${k}`, `"value-${k}"`]);
  for (const [name, metric] of read) {
    for (const { attributes } of pointsOf(metric)) {
      for (const [attribute, value] of Object.entries(attributes as Attributes)) {
        expect(allowed.has(attribute), `${name}: ${attribute}`).toBe(true);
        for (const secret of secrets)
          expect(String(value), `${name}.${attribute}`).not.toContain(secret);
      }
    }
  }
}
