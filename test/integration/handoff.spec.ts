import { describe, expect, it } from 'vitest';
import {
  clientsNamed,
  FAILURE_TIMINGS,
  killUntilEjected,
  SETTLE,
  TEST_TIMEOUT,
} from '../helpers/failure-scenes.js';
import { redisCommand } from '../helpers/redis-command.js';
import { taggedNodes } from '../helpers/redis-fleet.js';
import type { RedisServer } from '../helpers/redis-servers.js';
import { collect, keysOwnedBy, saw, useRingDicts } from '../helpers/ring-dicts.js';
import { until } from '../helpers/wait.js';

/**
 * Hinted handoff where it is hardest: copies left on an earlier heir, alive or out itself, and
 * writes that arrive while the handoff runs its passes.
 */

const fixture = useRingDicts(FAILURE_TIMINGS);

/** Waits until a connection named `tag` on `server` is held by CLIENT PAUSE on `command`. */
async function pausedOn(server: RedisServer, tag: string, command: string): Promise<void> {
  await until(
    async () =>
      (await clientsNamed(server, tag)).some(
        (line) => / flags=\w*b/.test(line) && line.includes(` cmd=${command} `),
      ),
    SETTLE,
  );
}

describe('copies left on an earlier heir', () => {
  it(
    'an earlier heir that is out too deletes its copy before it rejoins',
    TEST_TIMEOUT,
    async () => {
      const dict = fixture.dict<string>({ prefix: 'heir:', handoff: 'copy' });
      const events = collect(dict);
      const [key] = keysOwnedBy(dict, 'node0', 1, { heir: 'node1' });
      const entry = dict.getEntry(key);

      await killUntilEjected(fixture, events, 'node0');
      await dict.set(key, 'v1'); // on node1, for node0
      expect(await redisCommand(fixture.serverOf('node1').port, 'GET', entry)).toBe('"v1"');

      fixture.serverOf('node1').hang();
      expect(await dict.get(key)).toBeUndefined(); // times out on node1: ejected, still holding v1
      await dict.set(key, 'v2'); // on node2: node1's v1 is stale now
      expect(dict.aliveHash.nodes).toEqual(['node2']);

      fixture.serverOf('node1').resume();
      await until(() => saw(events, 'rediscovered', 'node1') === 1, SETTLE);
      // node0 is still out, so the key is read on node1 again: a miss, never the stale v1.
      expect(dict.aliveHash.locate(entry)).toBe('node1');
      expect(await dict.get(key)).toBeUndefined();
      expect(await redisCommand(fixture.serverOf('node1').port, 'EXISTS', entry)).toBe('0');
      // The deletion was node1's handoff.
      expect(events.find((e) => e.type === 'rediscovered')?.handoff).toMatchObject({
        entries: 1,
      });

      // node2's v2 no longer stands in for node0 (node1 does again): it went when node1 came
      // back, or a later write on node1 could leave it to resurface, stale, at node1's next
      // outage. node0's return then finds the entry nowhere: a miss.
      expect(await redisCommand(fixture.serverOf('node2').port, 'EXISTS', entry)).toBe('0');
      await fixture.serverOf('node0').restart();
      await until(() => saw(events, 'rediscovered', 'node0') === 1, SETTLE);
      expect(await dict.get(key)).toBeUndefined();
      expect(await redisCommand(fixture.serverOf('node0').port, 'EXISTS', entry)).toBe('0');
    },
  );

  it(
    'an earlier heir that is alive deletes its copy as soon as a newer write lands elsewhere',
    TEST_TIMEOUT,
    async () => {
      const dict = fixture.dict<string>({ prefix: 'heir:', handoff: 'copy' });
      const events = collect(dict);
      // node0's key; with node0 out it goes to node1, with node0 and node1 out to node2.
      const [key] = keysOwnedBy(dict, 'node0', 1, { heir: 'node1' });
      const entry = dict.getEntry(key);
      const node2 = fixture.serverOf('node2').port;

      await fixture.serverOf('node1').kill();
      await fixture.serverOf('node0').kill();
      await until(() => dict.aliveHash.size === 1, SETTLE);
      await dict.set(key, 'v1'); // on node2, for node0
      expect(await redisCommand(node2, 'GET', entry)).toBe('"v1"');

      await fixture.serverOf('node1').restart();
      await until(() => saw(events, 'rediscovered', 'node1') === 1, SETTLE);
      await dict.set(key, 'v2'); // on node1, for node0: node2's v1 is stale now
      expect(dict.aliveHash.locate(entry)).toBe('node1');
      await until(async () => (await redisCommand(node2, 'EXISTS', entry)) === '0', SETTLE);

      await fixture.serverOf('node0').restart();
      await until(() => saw(events, 'rediscovered', 'node0') === 1, SETTLE);
      expect(await dict.get(key)).toBe('v2');
      expect(await redisCommand(fixture.serverOf('node0').port, 'GET', entry)).toBe('"v2"');

      // node0 and node1 out again: the key falls to node2, which must not serve v1.
      await Promise.all([fixture.serverOf('node0').kill(), fixture.serverOf('node1').kill()]);
      await until(() => dict.aliveHash.size === 1, SETTLE);
      expect(await dict.get(key)).toBeUndefined();
    },
  );
});

describe('writes that arrive during a handoff', () => {
  // The handoff takes the hints, copies them back, and takes again what was written
  // meanwhile, three times; what is written after the last pass is deleted on both sides (a
  // miss). CLIENT PAUSE WRITE holds a pass at a write of the ring's, while the test writes.
  it(
    'are handed back by the second and third passes, not lost as misses',
    TEST_TIMEOUT,
    async () => {
      const tag = `passes-${process.pid}`;
      // Long enough for the test to write while a pass waits on a paused server.
      const commandTimeout = 1_500;
      const dict = fixture.dict<string>({
        nodes: taggedNodes(fixture.fleet.servers, tag),
        prefix: 'pass:',
        commandTimeout,
        handoff: 'copy',
      });
      const events = collect(dict);
      await dict.connect();
      const [beforeKey] = keysOwnedBy(dict, 'node0', 1, { heir: 'node1', tag: 'a' });
      const pass1Keys = keysOwnedBy(dict, 'node0', 3, { heir: 'node2', tag: 'b' });
      const pass2Keys = keysOwnedBy(dict, 'node0', 3, { heir: 'node1', tag: 'c' });
      const [node0, node2] = [fixture.serverOf('node0'), fixture.serverOf('node2')];

      try {
        // node0 answers reads, holds writes: the write below times out and ejects it, and the
        // heartbeat's revival then waits in the first pass, at its RESTORE on node0.
        await redisCommand(node0.port, 'CLIENT', 'PAUSE', '60000', 'WRITE');
        await dict.set(beforeKey, 'before'); // on node1, for node0
        expect(dict.aliveHash.nodes).toEqual(['node1', 'node2']);
        await pausedOn(node0, tag, 'restore');

        // Written after the first pass took its hints.
        for (const key of pass1Keys) await dict.set(key, `during pass 1: ${key}`); // on node2
        // The second pass copies those from node2 and waits at its DEL there.
        await redisCommand(node2.port, 'CLIENT', 'PAUSE', '60000', 'WRITE');
        await redisCommand(node0.port, 'CLIENT', 'UNPAUSE');
        await pausedOn(node2, tag, 'del');

        // Written after the second pass took its hints.
        for (const key of pass2Keys) await dict.set(key, `during pass 2: ${key}`); // on node1
        await redisCommand(node2.port, 'CLIENT', 'UNPAUSE');
        await until(() => saw(events, 'rediscovered', 'node0') === 1, SETTLE);
      } finally {
        await redisCommand(node0.port, 'CLIENT', 'UNPAUSE');
        await redisCommand(node2.port, 'CLIENT', 'UNPAUSE');
      }

      expect(await dict.get(beforeKey)).toBe('before');
      for (const key of pass1Keys) expect(await dict.get(key)).toBe(`during pass 1: ${key}`);
      for (const key of pass2Keys) expect(await dict.get(key)).toBe(`during pass 2: ${key}`);
      expect(events.find((e) => e.type === 'rediscovered')?.handoff).toEqual({
        entries: 1 + pass1Keys.length + pass2Keys.length,
        overflowed: false,
      });
      // On node0 itself, and nowhere else.
      for (const key of [beforeKey, ...pass1Keys, ...pass2Keys]) {
        const entry = dict.getEntry(key);
        expect(await redisCommand(node0.port, 'EXISTS', entry)).toBe('1');
        expect(await redisCommand(fixture.serverOf('node1').port, 'EXISTS', entry)).toBe('0');
        expect(await redisCommand(node2.port, 'EXISTS', entry)).toBe('0');
      }
    },
  );
});
