import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_CHAOS_OPTIONS,
  runScenario,
  type ChaosOptions,
  type ScenarioResult,
} from '../helpers/chaos-run.js';
import { pickScenarios } from '../helpers/chaos-scenarios.js';
import { startRedisServers, type RedisFleet } from '../helpers/redis-fleet.js';

/**
 * Correctness across processes: four worker processes share three nodes, each through its
 * own proxies, and every call is judged by the stale-read analyser (see chaos-scenarios.ts,
 * chaos-run.ts and stale-analyser.ts). A bounded subset of `npm run chaos:cluster`: shorter
 * faults, the same goals —
 * - after any fault heals: no stale read that begins more than 1 s after the heal, and no key
 *   stale in the final sweep (misses are allowed, stale values are not);
 * - during an asymmetric partition: at most 1 % of the stale reads measured before the
 *   processes shared a view of which nodes are out (22 200 with a cut, 6 138 with a hang);
 * - a process stall of 1.0–1.5 × commandTimeout throws no call and ejects no healthy node;
 * - never a value of another key.
 */

/** Short faults; 1.6 s after the heal leaves 0.6 s of reads that must all be fresh. */
const OPTIONS: ChaosOptions = {
  ...DEFAULT_CHAOS_OPTIONS,
  beforeMs: 300,
  faultMs: 1_500,
  afterMs: 1_600,
};

/** Stale reads during an asymmetric partition before the redesign; the goal is ≤ 1 % of them. */
const BASELINE_DURING_PARTITION = { cut: 22_200, hang: 6_138 };
/**
 * Those figures were taken over partitions of a few seconds: the partitions here last as long
 * as in `npm run chaos:cluster` (3 s), or a shorter one would pass the bound on fewer reads.
 */
const PARTITION = { ...OPTIONS, faultMs: DEFAULT_CHAOS_OPTIONS.faultMs };

/** A scenario: set-up, fault, heal, read-only and sweep take 5–11 s; the rest is margin. */
const SCENARIO_TIMEOUT_MS = 40_000;

let fleet: RedisFleet | undefined;

beforeAll(async () => {
  fleet = await startRedisServers(3);
});

afterAll(async () => {
  await fleet?.stop();
});

async function run(name: string, options = OPTIONS): Promise<ScenarioResult> {
  if (!fleet) throw new Error('the servers start in beforeAll');
  const [scenario] = pickScenarios(name);
  const result = await runScenario(scenario, fleet, options);
  const r = result.report;
  const ejected = Object.entries(result.ejectedNodes).map(([node, n]) => `${node} ${n}×`);
  const thrown = Object.entries(result.errors).map(([kind, n]) => `${n}× ${kind}`);
  console.log(
    `${result.letter}) ${result.title}: stale during ${r.phases.during.stale}, after the heal ` +
      `${r.staleAfterHeal} (> 1 s: ${r.staleLate}), stale keys at the end ${r.staleKeysAtEnd}/` +
      `${r.keysSwept}, misses ${r.misses}, thrown ${r.errors}, ejections ${result.ejections}` +
      ` (${ejected.join(', ')}), wrong key ${r.wrongKey}, calls ${result.calls}` +
      [...result.notes, ...thrown].map((line) => `\n   ${line}`).join(''),
  );
  return result;
}

/** Goal 1 and the key rule, for every fault. */
function expectHealed(result: ScenarioResult): void {
  const { name, report } = result;
  // The harness itself must have worked: every process read, and read every key at the end.
  expect(report.reads, `${name}: reads`).toBeGreaterThan(1_000);
  expect(report.keysSwept, `${name}: keys read by the final sweep`).toBe(OPTIONS.keys);
  expect(report.unknownVersions, `${name}: values no logged write produced`).toBe(0);
  expect.soft(report.staleLate, `${name}: stale reads begun > 1 s after the heal`).toBe(0);
  expect.soft(report.staleKeysAtEnd, `${name}: keys stale in the final sweep`).toBe(0);
  expect.soft(report.wrongKey, `${name}: values of another key`).toBe(0);
}

describe('correctness across processes (4 processes, 3 nodes, per-process proxies)', () => {
  it.each([
    ['cut', 'one process cut off from a node'],
    ['hang', "one process's path to a node hung"],
  ] as const)(
    '%s: %s: ≤ 1 in 100 of the baseline during, nothing stale after',
    { timeout: SCENARIO_TIMEOUT_MS },
    async (name, _what) => {
      const result = await run(name, PARTITION);
      expectHealed(result);
      expect
        .soft(result.report.phases.during.stale, `${name}: stale reads during the partition`)
        .toBeLessThanOrEqual(BASELINE_DURING_PARTITION[name] / 100);
    },
  );

  it(
    'a node SIGKILLed and restarted empty: nothing stale after',
    async () => {
      expectHealed(await run('kill'));
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'a node restarted from a snapshot older than the last writes: nothing stale after',
    async () => {
      expectHealed(await run('rdb'));
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'a Sentinel failover to a replica that missed the last writes: nothing stale after',
    async () => {
      const result = await run('sentinel');
      // The fault happened: the replica was behind when its master died.
      expect(result.notes.join(' ')).toMatch(/the replica is [1-9]\d* bytes/);
      expectHealed(result);
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    "a timed-out write's bytes landing after the node rejoined: nothing stale after",
    async () => {
      const result = await run('late');
      // The fault happened: bytes were held past the rejoin (delivered then, or dropped when
      // the server had closed their connection).
      expect(result.notes.join(' ')).toMatch(/[1-9]\d* bytes held past the rejoin/);
      expectHealed(result);
    },
    SCENARIO_TIMEOUT_MS,
  );

  // Retried: whether a stall ejects depends on where it falls against each node's deadline and
  // on the internal commands that still run on ioredis' own timers (see docs/failure-semantics.md),
  // and with the rest of the suite sharing 2 cores, about 1 run in 5 of this scenario ejected a
  // node and threw. A fault in the stall handling fails every attempt.
  it(
    'process stalls of 1.0–1.5 × commandTimeout under load: no call thrown, no node ejected',
    { retry: 2, timeout: SCENARIO_TIMEOUT_MS },
    async () => {
      const result = await run('stall');
      // The fault happened: every process stalled, 64 times in all.
      expect(result.notes.join(' ')).toMatch(/64 process stalls of \d+–\d+ ms/);
      expectHealed(result);
      expect.soft(result.report.errors, 'stall: calls thrown').toBe(0);
      expect.soft(result.ejections, 'stall: healthy nodes ejected').toBe(0);
    },
  );
});

describe('correctness across processes with replicas 2 (each entry on 2 of the 3 nodes)', () => {
  const REPLICATED = { ...OPTIONS, replicas: 2 };

  it.each([
    ['kill', 'a node SIGKILLed and restarted empty'],
    ['rdb', 'a node restarted from a snapshot older than the last writes'],
    ['sigstop', 'a node SIGSTOPped, then continued'],
  ] as const)(
    '%s: %s: nothing stale after',
    { timeout: SCENARIO_TIMEOUT_MS },
    async (name, _what) => {
      // The harness's goals, as with one copy. Calls thrown are reported, not judged: on a
      // loaded machine a process that stalls can report healthy nodes out for every process.
      expectHealed(await run(name, REPLICATED));
    },
  );
});

describe('the same goals with a near cache in every process', () => {
  it.each([
    ['cut', PARTITION],
    ['hang', PARTITION],
    ['kill', OPTIONS],
    ['sentinel', OPTIONS],
  ] as const)(
    '%s: nothing stale after the heal',
    { timeout: SCENARIO_TIMEOUT_MS },
    async (name, options) => {
      const result = await run(name, { ...options, nearCache: true });
      // The near cache ran: every process tracks every node again once the fault healed.
      expect(result.notes.join(' ')).toMatch(/near cache: 12 of 12 invalidation channels up/);
      expectHealed(result);
      if (name === 'cut' || name === 'hang') {
        expect
          .soft(result.report.phases.during.stale, `${name}: stale reads during the partition`)
          .toBeLessThanOrEqual(BASELINE_DURING_PARTITION[name] / 100);
      }
    },
  );

  // A process that stalled reads its sockets before it serves a hit again: without that, 13–45
  // reads after the heal answered values whose invalidation waited unread, in every run.
  // Under the whole suite on 2 cores an invalidation can also reach a process more than 1 ms
  // after the writer had its reply (1, 1 and 14 stale reads within 1 s of the heal, in the
  // three attempts of one full run in seven): a write counts as before a read 5 ms after it
  // here. That still fails every attempt without the check (5–8 stale reads after the heal,
  // 20–38 at 1 ms; 7–13 of them begun over 1 s after it), and none with it at any slack.
  it(
    'stall: every process stalls under load, nothing stale after the heal',
    { retry: 2, timeout: SCENARIO_TIMEOUT_MS },
    async () => {
      const result = await run('stall', { ...OPTIONS, nearCache: true, slackMs: 5 });
      expect(result.notes.join(' ')).toMatch(/64 process stalls of \d+–\d+ ms/);
      expectHealed(result);
      expect.soft(result.report.staleAfterHeal, 'stall: stale reads after the heal').toBe(0);
    },
  );
});
