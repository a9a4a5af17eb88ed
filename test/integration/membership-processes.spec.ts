import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stage } from '../helpers/cluster-harness.js';
import { now, recordsOf } from '../helpers/cluster-protocol.js';
import { startRedisServers, type RedisFleet } from '../helpers/redis-fleet.js';
import { analyse } from '../helpers/stale-analyser.js';
import { sleep, until } from '../helpers/wait.js';

/**
 * setNodes across processes while one of them cannot reach a node (its own proxy hung): every
 * process holds that node out as soon as it is a member of its list, whether it joins new or
 * comes back, so none reads it for keys the cut-off process writes elsewhere. Three worker
 * processes, versioned writes, the stale-read analyser: misses are allowed, stale reads not.
 */

let fleet: RedisFleet;
beforeAll(async () => {
  fleet = await startRedisServers(4);
});
afterAll(() => fleet.stop());

const NODES = ['node0', 'node1', 'node2', 'node3'];

async function stageOf(prefix: string): Promise<Stage> {
  const targets = Object.fromEntries(
    NODES.map((name, i) => [name, { port: fleet.servers[i].port }]),
  );
  // Workers start on node0-node2: node3 is for the change.
  return Stage.open(targets, {
    workers: 3,
    nodes: NODES.slice(0, 3),
    worker: {
      prefix: `${prefix}${process.pid}:`,
      keys: 150,
      concurrency: 6,
      setRatio: 0.3,
      deleteRatio: 0.1,
      maxRecords: 400_000,
      dict: { commandTimeout: 300, heartbeatInterval: 200, retryRatio: 0 },
    },
  });
}

/** Whether each worker has `node` alive now. */
async function aliveIn(stage: Stage, node: string): Promise<(boolean | undefined)[]> {
  return (await stage.status()).map((s) => s.nodes.find((n) => n.name === node)?.alive);
}

/**
 * Runs the read/write load for `ms`, then checks every call the workers logged since it began:
 * enough reads, each of a version some worker wrote, none stale.
 */
async function loadWithoutStaleReads(stage: Stage, ms: number, during?: () => Promise<void>) {
  const start = now();
  await stage.load('rw');
  await sleep(ms);
  await during?.();
  await stage.all({ cmd: 'stop' });
  const records = (await stage.collect()).flatMap((log) => [...recordsOf(log)]);
  const report = analyse(records, { faultStart: start, heal: Infinity }, { slackMs: 2 });
  expect(report.unknownVersions).toBe(0);
  expect(report.reads).toBeGreaterThan(1_000);
  expect(report.stale).toBe(0);
}

describe('setNodes across processes, one of them cut off from a node', () => {
  it(
    'a node added that one process cannot reach is held out by every process once all changed',
    { timeout: 60_000 },
    async () => {
      const stage = await stageOf('mp-add:');
      try {
        stage.proxy(2, 'node3').hang();
        // No call in flight between the first change and the last.
        for (let w = 0; w < 3; w++) await stage.setNodes(w, NODES);
        // Reported when it joined ejected there: left to its revival's first failed try, the
        // others still had it in 150 ms later.
        await sleep(150);
        expect(await aliveIn(stage, 'node3')).toEqual([false, false, false]);
        await loadWithoutStaleReads(stage, 2_000);
      } finally {
        stage.proxy(2, 'node3').heal();
        await stage.close();
      }
    },
  );

  it(
    'a node taken out and put back by one process stays out while another reports it',
    { timeout: 60_000 },
    async () => {
      const stage = await stageOf('mp-back:');
      try {
        await stage.load('rw');
        await sleep(500);
        stage.proxy(2, 'node2').hang();
        await until(async () => (await aliveIn(stage, 'node2')).every((a) => a === false), 5_000);
        await stage.all({ cmd: 'stop' });
        // With no call in flight, worker 0 alone removes node2 and puts it back.
        await stage.setNodes(0, NODES.slice(0, 2));
        await stage.setNodes(0, NODES.slice(0, 3));
        // It joined alive and, the reports no longer new to it, stayed in for seconds.
        expect(await aliveIn(stage, 'node2')).toEqual([false, false, false]);
        await loadWithoutStaleReads(stage, 2_500, async () => {
          expect(await aliveIn(stage, 'node2')).toEqual([false, false, false]);
        });
      } finally {
        stage.proxy(2, 'node2').heal();
        await stage.close();
      }
    },
  );
});
