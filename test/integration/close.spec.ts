import { describe, expect, it } from 'vitest';
import type { RingDict } from '../../lib/index.js';
import { FAILURE_TIMINGS, TEST_TIMEOUT, whileHung } from '../helpers/failure-scenes.js';
import { controlKey } from '../../lib/core/keys/control-keys.js';
import { redisCommand } from '../helpers/redis-command.js';
import { collect, keysOwnedBy, saw, useRingDicts } from '../helpers/ring-dicts.js';
import { sleep, until } from '../helpers/wait.js';

/**
 * close() while work is under way: a request waiting on a hung node, a scan half read, a
 * clear whose catch-up has not run. Each rejects as closed instead of ending quietly.
 */

const fixture = useRingDicts(FAILURE_TIMINGS);

describe('close() with the only node hung', () => {
  it.each([
    ['without onFail', {}],
    ['with onFail', { onFail: () => 'failed' }],
  ])('a request waiting on it rejects as closed, %s', TEST_TIMEOUT, async (_, extra) => {
    const [server] = fixture.fleet.servers;
    const dict = fixture.dict<string, string>({
      nodes: { node0: { capacity: 1, connection: server.url } },
      ...extra,
    });
    await dict.connect();
    await whileHung(server, async () => {
      // Judged from now: the get may reject while close() is still closing.
      const pending = expect(dict.get('k')).rejects.toThrow(/RingDict "default" is closed/);
      await new Promise((resolve) => setTimeout(resolve, 50));
      await dict.close();
      await pending;
    });
  });
});

describe('close() with a node hung', () => {
  /** Sockets this process holds open now. */
  const sockets = () =>
    process.getActiveResourcesInfo().filter((kind) => kind === 'TCPSocketWrap').length;

  // The fleet's and the near cache's connections were ended politely, which a hung server never
  // acknowledges: they stayed open 2–2.5 s after close() resolved.
  it('leaves no socket open, near cache on', TEST_TIMEOUT, async () => {
    const [server0, server1] = fixture.fleet.servers;
    const before = sockets();
    const dict = fixture.dict<string>({
      prefix: 'closehung:',
      nodes: { node0: server0.url, node1: server1.url },
      nearCache: { maxEntries: 100 },
    });
    await dict.connect();
    await dict.getMany(Array.from({ length: 20 }, (_, i) => `k${i}`));
    expect(sockets()).toBeGreaterThan(before);
    await whileHung(server1, async () => {
      await fixture.closeNow(dict);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(sockets()).toBeLessThanOrEqual(before);
    });
  });
});

describe('close() with a node reported out and another hung', () => {
  // The dict counted as closed only once its report was withdrawn from every node, which took
  // the hung one's commandTimeout: requests made or failing over meanwhile were answered by the
  // next node, and the nodes' QUITs took a second commandTimeout.
  it(
    'takes one commandTimeout, and requests waiting or made meanwhile reject as closed',
    TEST_TIMEOUT,
    async () => {
      const dict = fixture.dict<string>({ prefix: 'closereported:', heartbeatInterval: 0 });
      await dict.connect();
      const [out] = keysOwnedBy(dict, 'node0', 1);
      const [waiting] = keysOwnedBy(dict, 'node1', 1);
      const [other] = keysOwnedBy(dict, 'node2', 1);
      await fixture.serverOf('node0').kill();
      // Ejected by this request; this process's report goes to node1 and node2.
      await dict.get(out);
      await sleep(100);
      const hung = fixture.serverOf('node1');
      await whileHung(hung, async () => {
        const waited = expect(dict.get(waiting)).rejects.toThrow(/is closed/);
        await sleep(20);
        const started = performance.now();
        const closing = dict.close();
        const made = expect(dict.get(other)).rejects.toThrow(/is closed/);
        await closing;
        expect(performance.now() - started).toBeLessThan(FAILURE_TIMINGS.commandTimeout + 150);
        await waited;
        await made;
      });
    },
  );
});

describe('close() twice', () => {
  // The second call found the dict closed and answered at once, its sockets still closing.
  it('the second answers when the first is done', TEST_TIMEOUT, async () => {
    const dict = fixture.dict<string>({ prefix: 'closetwice:' });
    await dict.connect();
    const hung = fixture.serverOf('node1');
    await whileHung(hung, async () => {
      let firstDone = false;
      const first = dict.close().then(() => (firstDone = true));
      await dict.close();
      expect(firstDone).toBe(true);
      await first;
    });
  });
});

describe('close() while a revival is under way', () => {
  // close() cut the revival's connect short, and the revival, failing, wrote a fresh report
  // after close() had withdrawn this process's: every process held the node out a lease more.
  it('leaves no report of this process behind', TEST_TIMEOUT, async () => {
    const dict = fixture.dict<string>({ prefix: 'closerevival:' });
    const events = collect(dict);
    await dict.connect();
    const [key] = keysOwnedBy(dict, 'node2', 1);
    const hung = fixture.serverOf('node2');
    await whileHung(hung, async () => {
      await dict.get(key);
      await until(() => saw(events, 'ejected', 'node2') === 1, 3000);
      // Revivals keep failing meanwhile, one connecting at almost any moment.
      await sleep(1500);
      await dict.close();
      await sleep(200);
      const reports = controlKey('closerevival:', 'out');
      expect(await redisCommand(fixture.serverOf('node0').port, 'HKEYS', reports)).toBe('');
    });
  });
});

describe('close() while a scan runs', () => {
  it.each([
    ['keys()', (dict: RingDict<string>) => dict.keys()],
    ['entries()', (dict: RingDict<string>) => dict.entries()],
  ])('%s rejects as closed instead of ending early', TEST_TIMEOUT, async (_, iterate) => {
    const dict = fixture.dict<string>({ prefix: 'closescan:' });
    await dict.setMany(Array.from({ length: 60 }, (_, i) => [`k${i}`, 'v'] as const));
    let seen = 0;
    await expect(
      (async () => {
        for await (const item of iterate(dict)) {
          void item;
          // Closed once the first keys are in: the rest can no longer be read.
          if (seen++ === 0) await dict.close();
        }
      })(),
    ).rejects.toThrow(/RingDict "default" is closed/);
    expect(seen).toBeLessThan(60);
  });
});

describe('close() right after clear() is called', () => {
  it(
    'rejects the clear as closed, even when its commands were answered',
    TEST_TIMEOUT,
    async () => {
      const dict = fixture.dict<string>({
        prefix: 'clrquick:',
        nodes: { node0: { capacity: 1, connection: fixture.fleet.servers[0].url } },
      });
      await dict.connect();
      // The QUIT queues behind the one SCAN already sent: it is answered, and that was the
      // whole scan, but the clear's catch-up never ran.
      // Judged from now: the clear may reject while close() is still closing.
      const cleared = expect(dict.clear()).rejects.toThrow(/RingDict "default" is closed/);
      await dict.close();
      await cleared;
    },
  );
});
