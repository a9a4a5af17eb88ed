import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HashRing, RingDict } from '../../lib/index.js';
import { clockOffset, WorkerProcess } from '../helpers/cluster-harness.js';
import {
  moveToClock,
  recordsOf,
  type WorkerConfig,
  type WorkerLog,
  type WorkerNodes,
} from '../helpers/cluster-protocol.js';
import { clientsNamed } from '../helpers/failure-scenes.js';
import { startRedisServers, taggedNodes, type RedisFleet } from '../helpers/redis-fleet.js';
import { analyse } from '../helpers/stale-analyser.js';
import { redisCommand } from '../helpers/redis-command.js';
import { sleep, until } from '../helpers/wait.js';

/**
 * A rolling change of membership across processes: processes still on the old nodes and
 * processes on the new ones (with the `migration` option) share keys, each doing versioned
 * reads, writes and deletes; the stale-read analyser judges every call on one clock. The old
 * processes stop before `until`; the new ones go on through it.
 */

let fleet: RedisFleet | undefined;

beforeAll(async () => {
  fleet = await startRedisServers(4);
});

afterAll(async () => {
  await fleet?.stop();
});

/** node0–node2 on servers 0–2 (old), or node0, node1 and node3 on servers 0, 1, 3 (new). */
function nodes(which: 'old' | 'new'): WorkerNodes {
  const servers = fleet!.servers;
  const picked = which === 'old' ? [0, 1, 2] : [0, 1, 3];
  return Object.fromEntries(
    picked.map((i) => [`node${i}`, { capacity: 1, connection: servers[i].url }]),
  );
}

describe('migration: processes on the old and on the new nodes side by side', () => {
  it('0 stale reads before, across and after `until`', { timeout: 90_000 }, async () => {
    const base: Omit<WorkerConfig, 'id' | 'nodes'> = {
      prefix: `mig${process.pid}:`,
      keys: 200,
      concurrency: 8,
      setRatio: 0.3,
      deleteRatio: 0.1,
      dict: { commandTimeout: 1_000, heartbeatInterval: 200 },
      maxRecords: 400_000,
    };
    const workers: WorkerProcess[] = [];
    try {
      for (const id of [1, 2]) {
        workers.push(await WorkerProcess.spawn({ ...base, id, nodes: nodes('old') }));
      }
      const end = Date.now() + 6_000;
      const migration = { from: nodes('old'), until: end };
      for (const id of [3, 4]) {
        const dict = { ...base.dict, migration };
        workers.push(await WorkerProcess.spawn({ ...base, dict, id, nodes: nodes('new') }));
      }
      const offsets: { offset: number }[] = [];
      for (const worker of workers) offsets.push(await clockOffset(worker));
      const [old1, old2, new1, new2] = workers;
      await Promise.all(workers.map((w) => w.request({ cmd: 'load', mode: 'rw' })));
      // The old processes are redeployed before `until`.
      await sleep(Math.max(0, end - Date.now() - 500));
      await Promise.all([old1, old2].map((w) => w.request({ cmd: 'stop' })));
      await sleep(Math.max(0, end - Date.now()) + 2_000);
      await Promise.all([new1, new2].map((w) => w.request({ cmd: 'stop' })));
      await Promise.all([new1, new2].map((w) => w.request({ cmd: 'sweep' })));
      const logs = await Promise.all(workers.map((w) => w.request<WorkerLog>({ cmd: 'collect' })));
      const records = logs.flatMap((log, w) => {
        moveToClock(log, offsets[w].offset);
        return [...recordsOf(log)];
      });
      // The records are on this process's clock, which is Date.now()'s give or take a few ms.
      const report = analyse(records, { faultStart: end, heal: end }, { slackMs: 1 });
      console.log(
        `migration: reads ${report.reads}, stale ${report.stale}, misses ${report.misses}, errors ${report.errors}, ` +
          `before until ${report.phases.before.reads}, after ${report.phases.afterHeal.reads + report.phases.late.reads}`,
      );
      expect(report.examples).toEqual([]);
      expect(report.stale).toBe(0);
      expect(report.wrongKey).toBe(0);
      expect(report.unknownVersions).toBe(0);
      expect(report.errors).toBe(0);
      // Both kinds of process read and wrote, before and after `until`.
      expect(report.phases.before.reads).toBeGreaterThan(1_000);
      expect(report.phases.afterHeal.reads + report.phases.late.reads).toBeGreaterThan(200);
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
    }
  });

  it(
    'nodes named only in `from` are used until `until`, then closed; the rings describe `nodes`',
    { timeout: 20_000 },
    async () => {
      const tag = `from-only-${process.pid}`;
      const all = taggedNodes(fleet!.servers, tag);
      const { node2, node3, ...shared } = all;
      const ends = Date.now() + 1_500;
      const dict = new RingDict<string>({
        nodes: { ...shared, node3 },
        prefix: 'fo:',
        migration: { from: { ...shared, node2 }, until: ends },
      });
      try {
        expect(dict.totalHash.nodes).toEqual(['node0', 'node1', 'node3']);
        expect(dict.nodeStates().map((s) => s.name)).toEqual(['node0', 'node1', 'node3']);
        // A key `from` places on node2 is written there and read from there.
        const from = new HashRing({ node0: 1, node1: 1, node2: 1 });
        let key = 0;
        while (from.locate(`fo:${key}`) !== 'node2') key++;
        await dict.set(String(key), 'v');
        expect(await dict.get(String(key))).toBe('v');
        expect(await clientsNamed(fleet!.servers[2], tag)).toHaveLength(1);
        // After `until`: the new placement; the value node2 held is gone with it (a miss). A
        // write just after it still deletes the key on node2, for the processes whose clocks
        // have not reached `until` yet; then node2 is closed.
        await sleep(ends - Date.now() + 100);
        expect(await dict.get(String(key))).toBeUndefined();
        await dict.set(String(key), 'w');
        expect(await redisCommand(fleet!.servers[2].port, 'EXISTS', `fo:${key}`)).toBe('0');
        expect(await dict.get(String(key))).toBe('w');
        await until(async () => (await clientsNamed(fleet!.servers[2], tag)).length === 0, 5_000);
      } finally {
        await dict.close();
      }
    },
  );

  it(
    'a node of `from` that is down: its keys go to the next one of `from`, no call fails',
    { timeout: 20_000 },
    async () => {
      const all = nodes('old');
      const fresh = nodes('new');
      const dict = new RingDict<string>({
        nodes: fresh,
        prefix: 'down:',
        commandTimeout: 300,
        migration: { from: all, until: Date.now() + 60_000 },
      });
      const server = fleet!.servers[2];
      try {
        const from = new HashRing({ node0: 1, node1: 1, node2: 1 });
        const keys = Array.from({ length: 200 }, (_, i) => `k${i}`).filter(
          (key) => from.locate(`down:${key}`) === 'node2',
        );
        await server.kill();
        await dict.setMany(keys.map((key) => [key, 'v'] as const));
        expect(await dict.getMany(keys)).toEqual(keys.map(() => 'v'));
        for (const key of keys.slice(0, 5)) {
          await dict.set(key, 'w');
          expect(await dict.get(key)).toBe('w');
          expect(await dict.delete(key)).toBe(true);
        }
      } finally {
        await dict.close();
        if (!server.running) await server.restart();
      }
    },
  );

  it(
    'a node only `from` names, hung just after `until`: one write waits its commandTimeout, the next do not',
    { timeout: 20_000 },
    async () => {
      const tag = `hung-after-${process.pid}`;
      const { node2, node3, ...shared } = taggedNodes(fleet!.servers, tag);
      const ends = Date.now() + 800;
      const dict = new RingDict<string>({
        nodes: { ...shared, node3 },
        prefix: 'ha:',
        commandTimeout: 300,
        migration: { from: { ...shared, node2 }, until: ends },
      });
      const server = fleet!.servers[2];
      try {
        const key = keyOn('ha:', OLD_RING, 'node2');
        await dict.set(key, 'v');
        await sleep(ends - Date.now() + 50);
        server.hang();
        const took: number[] = [];
        for (let i = 0; i < 3; i++) {
          const started = performance.now();
          await dict.set(key, `w${i}`);
          took.push(performance.now() - started);
        }
        // The first write's delete there times out; the node is not asked again.
        expect(took[0]).toBeLessThan(300 + 150);
        expect(Math.max(took[1], took[2])).toBeLessThan(100);
      } finally {
        if (server.isHung) server.resume();
        await dict.close();
      }
    },
  );

  it(
    'setNodes just after `until` takes out a node both lists name: it is retired, as without a migration',
    { timeout: 20_000 },
    async () => {
      const tag = `retire-after-${process.pid}`;
      const { node0, node1, node2, node3 } = taggedNodes(fleet!.servers, tag);
      const nodes = { node0, node1, node3 };
      const ends = Date.now() + 500;
      const dict = new RingDict<string>({
        nodes,
        prefix: 'rt:',
        warmUpWindow: 0,
        migration: { from: { node0, node1, node2 }, until: ends },
      });
      try {
        await sleep(ends - Date.now() + 100);
        const key = keyOn('rt:', dict.totalHash, 'node0');
        await dict.set(key, 'old');
        await dict.setNodes({ node1, node3 });
        await dict.set(key, 'new');
        // A process started later with node0 in its list must not trust what node0 kept.
        const later = new RingDict<string>({ nodes, prefix: 'rt:' });
        try {
          expect(await later.get(key)).not.toBe('old');
        } finally {
          await later.close();
        }
      } finally {
        await dict.close();
      }
    },
  );

  it(
    'a node that keeps its name on another server: a write just after `until` deletes on the old one',
    { timeout: 20_000 },
    async () => {
      const { node0, node1, node2, node3 } = taggedNodes(fleet!.servers, `moved-${process.pid}`);
      const ends = Date.now() + 800;
      const dict = new RingDict<string>({
        nodes: { node0, node1, node2: node3 },
        prefix: 'mv:',
        migration: { from: { node0, node1, node2 }, until: ends },
      });
      try {
        const key = keyOn('mv:', OLD_RING, 'node2');
        await dict.set(key, 'v');
        expect(await redisCommand(fleet!.servers[2].port, 'GET', `mv:${key}`)).toBe('"v"');
        await sleep(ends - Date.now() + 50);
        // Read where the new list places it (the new server): a miss, not the old server's.
        expect(await dict.get(key)).toBeUndefined();
        await dict.set(key, 'w');
        expect(await redisCommand(fleet!.servers[2].port, 'EXISTS', `mv:${key}`)).toBe('0');
        expect(await dict.get(key)).toBe('w');
      } finally {
        await dict.close();
      }
    },
  );
});

const OLD_RING = new HashRing({ node0: 1, node1: 1, node2: 1 });

/** The first key `<i>` whose entry (`prefix` + key) `ring` places on `node`. */
function keyOn(prefix: string, ring: HashRing, node: string): string {
  let i = 0;
  while (ring.locate(`${prefix}${i}`) !== node) i++;
  return String(i);
}
