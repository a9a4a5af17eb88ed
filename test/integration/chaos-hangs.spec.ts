import { describe, expect, it } from 'vitest';
import {
  COMMAND_TIMEOUT,
  GOAL_SLOWEST_CALL,
  HEARTBEAT,
  TIME_MARGIN,
  useChaosDicts,
  type Stored,
} from '../helpers/chaos-load.js';
import { sleep } from '../helpers/wait.js';

/**
 * Hangs and stalls met by a burst of calls, on the ring of the chaos suite (chaos.spec.ts):
 * a node that hangs under 64 requests in flight leaks no listener and arms no timer per
 * request, a stall of the client process ejects no healthy node, two flaps that overlap leave
 * no stale copy to be read, and two nodes that hang at once keep the writes of their keys no
 * longer than a call may wait. Each aims at one way a hang or a stall can go wrong, which the
 * load of chaos.spec.ts would meet only by chance.
 */

const fixture = useChaosDicts();

describe('chaos: hung nodes and a stalled client', () => {
  // Every request that fails on a hung node ejects it, and each ejection used to call ioredis'
  // disconnect() again, adding a 'close' listener to a socket whose peer never answers: past
  // ten requests in flight, Node printed MaxListenersExceededWarning on every hang under load.
  // RingNode.drop() now disconnects once.
  it('a node that hangs under 64 requests in flight: no listener-leak warning', async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(`${warning.name}: ${warning.message}`);
    process.on('warning', onWarning);
    try {
      const dict = fixture.dict<Stored>({ retryRatio: 0 });
      const keys: string[] = [];
      for (let i = 0; keys.length < 64; i++) {
        if (dict.totalHash.locate(dict.getEntry(`h${i}`)) === 'node2') keys.push(`h${i}`);
      }
      for (const key of keys) await dict.set(key, { w: 0, k: 0, v: 1 });
      fixture.serverOf('node2').hang();
      const started = performance.now();
      // All 64 time out on node2 together and are answered by the next nodes.
      const values = await Promise.all(keys.map((key) => dict.get(key)));
      expect(performance.now() - started).toBeLessThan(TIME_MARGIN * GOAL_SLOWEST_CALL);
      expect(values.every((v) => v === undefined)).toBe(true);
      // A few heartbeats against the hung node.
      await sleep(3 * HEARTBEAT);
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings.filter((w) => w.startsWith('MaxListenersExceededWarning'))).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });

  // The ring's requests are watched by one deadline per node (DeadlineWatch), with ioredis'
  // per-command timer switched off around each send. Should an ioredis upgrade stop reading
  // `commandTimeout` per command, every request would arm its own timer again: counted here
  // while 64 requests wait on a hung node.
  it('64 requests waiting on a hung node arm no timer each', async () => {
    const dict = fixture.dict<Stored>({ retryRatio: 0 });
    const keys: string[] = [];
    for (let i = 0; keys.length < 64; i++) {
      if (dict.totalHash.locate(dict.getEntry(`t${i}`)) === 'node2') keys.push(`t${i}`);
    }
    await dict.get(keys[0]); // connected
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    fixture.serverOf('node2').hang();
    const pending = Promise.all(keys.map((key) => dict.get(key)));
    const during = timers();
    const values = await pending;
    expect(values.every((v) => v === undefined)).toBe(true);
    // A timer per request would add 64; a few may come and go for other reasons.
    expect(during - before).toBeLessThan(8);
  });

  it('a 300 ms stall of the client process ejects no healthy node and fails no call', async () => {
    const dict = fixture.dict<Stored>({ retryRatio: 0 });
    const events: string[] = [];
    dict.events$.subscribe((event) => events.push(`${event.type} ${event.node ?? ''}`));
    for (let k = 0; k < 30; k++) await dict.set(`s${k}`, { w: 0, k, v: 1 });
    const pending = Array.from({ length: 30 }, (_, k) =>
      dict.get(`s${k}`).then(
        (value) => value?.k === k || `s${k}: got ${JSON.stringify(value)}`,
        (error: unknown) => `s${k}: ${String(error)}`,
      ),
    );
    // The servers answer within microseconds; this process just does not look for a while.
    const until = performance.now() + 1.5 * COMMAND_TIMEOUT;
    while (performance.now() < until) {
      // busy: a synchronous stall
    }
    const results = await Promise.all(pending);
    expect(results.filter((ok) => ok !== true)).toEqual([]);
    expect(events).toEqual([]);
  });

  // A write for an ejected node's key waits until the other processes are told of the outage:
  // a report sent to every other alive node on the fleet's own connections. Those were made
  // while the node's client connected, which unsets ioredis' command timeout meanwhile, so
  // they had none: a report sent to a second hung node never settled, and the writes of the
  // first node's keys hung with it (the Nest module's lazily connected dicts, every time).
  it('two nodes hang at once: the writes of their keys settle on the third within the goal', async () => {
    const dict = fixture.dict<Stored>({ retryRatio: 0, lazyConnect: true });
    await dict.connect();
    await dict.set('warm', { w: 0, k: 0, v: 0 });
    await sleep(2 * HEARTBEAT);
    const keys: string[] = [];
    for (const owner of ['node0', 'node1']) {
      for (let i = 0, mine = 0; mine < 3; i++) {
        if (dict.totalHash.locate(dict.getEntry(`t${i}`)) !== owner) continue;
        keys.push(`t${i}`);
        mine++;
      }
    }
    const hung = [fixture.serverOf('node0'), fixture.serverOf('node1')];
    for (const server of hung) server.hang();
    try {
      const started = performance.now();
      const written = Promise.all(keys.map((key) => dict.set(key, { w: 0, k: 0, v: 1 })));
      const late = sleep(5_000).then(() => 'still waiting after 5 s');
      expect(await Promise.race([written.then(() => 'written'), late])).toBe('written');
      expect(performance.now() - started).toBeLessThan(TIME_MARGIN * GOAL_SLOWEST_CALL);
      expect(dict.aliveHash.nodes).toEqual(['node2']);
      for (const key of keys) expect((await dict.get(key))?.v).toBe(1);
    } finally {
      for (const server of hung) server.resume();
    }
  });

  it('two overlapping flaps: no stale read from a copy left on the first heir', async () => {
    const dict = fixture.dict<Stored>({ retryRatio: 0, heartbeatInterval: 100 });
    const back = (node: string) =>
      new Promise<void>((resolve) => {
        const sub = dict.events$.subscribe((event) => {
          if (event.type === 'rediscovered' && event.node === node) {
            sub.unsubscribe();
            resolve();
          }
        });
      });
    // A key of node0 whose heir, with node0 out, is node1.
    let key = '';
    for (let i = 0; key === ''; i++) {
      const entry = dict.getEntry(`d${i}`);
      const owner = dict.totalHash.locate(entry);
      if (owner === 'node0' && dict.totalHash.without('node0').locate(entry) === 'node1') {
        key = `d${i}`;
      }
    }
    const value = (v: number): Stored => ({ w: 0, k: 0, v });
    await dict.set(key, value(1));
    fixture.serverOf('node0').hang();
    await dict.set(key, value(2)); // times out on node0, lands on node1
    fixture.serverOf('node1').hang();
    for (let i = 0; dict.aliveHash.nodes.includes('node1'); i++) await dict.get(`probe${i}`);
    let rejoined = back('node0');
    fixture.serverOf('node0').resume();
    await rejoined;
    expect((await dict.get(key))?.v ?? 2).toBe(2); // v2, or a miss
    await dict.set(key, value(3)); // on node0
    rejoined = back('node1');
    fixture.serverOf('node1').resume();
    await rejoined;
    fixture.serverOf('node0').hang();
    // node0 out again: its keys are read from node1, which must not hold v2 any more.
    expect((await dict.get(key))?.v ?? 3).toBe(3);
  });
});
