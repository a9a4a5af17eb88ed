import 'reflect-metadata';
import { Controller, Get, Logger, type INestApplication } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { RingRedisHealthIndicator } from '../../lib/health/index.js';
import {
  RingDict,
  RingRedisModule,
  RingRedisService,
  type RingNodesConfig,
} from '../../lib/index.js';
import { redisCommand } from '../helpers/redis-command.js';
import { collect, useRingDicts } from '../helpers/ring-dicts.js';
import {
  FAILOVER_BUDGET_MS,
  startSentinelGroup,
  useSentinelGroup,
  type SentinelGroup,
} from '../helpers/sentinel.js';
import { until } from '../helpers/wait.js';
import { dataKeyCount } from '../helpers/data-keys.js';

/**
 * A ring node may be a Redis Sentinel group (master + replica + three sentinels) instead of
 * one server. When its master dies the node is ejected like any dead node — its keys fall to
 * the next node and no caller waits — and the heartbeat's reconnect asks the sentinels for
 * the master, so the node rejoins on the promoted replica, with the keys written before the
 * failover still there. Everything runs as real processes on 127.0.0.1, stopped by pid.
 */

const COMMAND_TIMEOUT = 200;
const HEARTBEAT = 100;

@Controller('health')
class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly ring: RingRedisHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([() => this.ring.isHealthy('ring-redis')]);
  }
}

/** Two plain servers; dicts with the suite's timings and no probing, closed after each test. */
const fixture = useRingDicts(
  { commandTimeout: COMMAND_TIMEOUT, heartbeatInterval: HEARTBEAT, retryRatio: 0 },
  { servers: 2 },
);
let group: SentinelGroup;

beforeAll(async () => {
  group = await startSentinelGroup();
});

afterEach(() => {
  vi.restoreAllMocks();
});

afterAll(async () => {
  await group?.stop();
});

/** Two plain nodes and the Sentinel node `ha`, in one group. */
function nodes(): RingNodesConfig {
  return {
    plain0: { capacity: 1, connection: fixture.fleet.servers[0].url },
    plain1: { capacity: 1, connection: fixture.fleet.servers[1].url },
    ha: { capacity: 1, connection: group.connection() },
  };
}

describe('a Sentinel-managed ring node', () => {
  it('serves its share of a mixed group through the sentinels', async () => {
    const dict = fixture.dict<number>({
      nodes: nodes(),
      prefix: 'mixed:',
    });
    const owners = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      await dict.set(`k${i}`, i);
      const owner = dict.totalHash.locate(dict.getEntry(`k${i}`))!;
      owners.set(owner, (owners.get(owner) ?? 0) + 1);
    }
    expect([...owners.keys()].sort()).toEqual(['ha', 'plain0', 'plain1']);
    for (let i = 0; i < 300; i++) expect(await dict.get(`k${i}`)).toBe(i);
    // The Sentinel node's keys are on the master the sentinels name.
    const master = await group.currentMaster();
    expect(master).toBe(`127.0.0.1:${group.master.port}`);
    expect(await dataKeyCount(group.master.port)).toBe(owners.get('ha'));
    const ha = dict.nodeStates().find((s) => s.name === 'ha')!;
    expect(ha).toEqual({
      name: 'ha',
      alive: true,
      ejections: 0,
      rediscoveries: 0,
      sentinel: 'mymaster',
      master,
      failovers: 0,
    });
    // Plain nodes report exactly what they always did.
    expect(dict.nodeStates().find((s) => s.name === 'plain0')).toEqual({
      name: 'plain0',
      alive: true,
      ejections: 0,
      rediscoveries: 0,
    });
    await dict.clear();
  });

  it('with lazyConnect, subscribes to its sentinels only once the node first connects', async () => {
    // The failover watch holds one subscription per sentinel: the only clients there whose
    // last command is SUBSCRIBE.
    const watchers = () =>
      Promise.all(
        group.sentinels.map(
          async (sentinel) =>
            (await redisCommand(sentinel.port, 'CLIENT', 'LIST'))
              .split('\n')
              .filter((line) => line.includes(' cmd=subscribe')).length,
        ),
      );
    const before = await watchers();
    const dict = fixture.track(
      new RingDict<number>({
        nodes: { ha: { capacity: 1, connection: group.connection() } },
        prefix: 'lazy:',
        commandTimeout: COMMAND_TIMEOUT,
        heartbeatInterval: HEARTBEAT,
        lazyConnect: true,
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, 150));
    (await watchers()).forEach((count, i) => expect(count).toBeLessThanOrEqual(before[i]));
    await dict.set('k', 1);
    await until(
      async () => (await watchers()).every((count, i) => count === before[i] + 1),
      5_000,
      'one subscription per sentinel',
    );
  });

  it('stays out with a clear reason when the sentinels know no such master group', async () => {
    const dict = fixture.dict<number>({
      nodes: {
        plain0: { capacity: 1, connection: fixture.fleet.servers[0].url },
        typo: { capacity: 1, connection: { ...group.connection(), name: 'mymastr' } },
      },
      prefix: 'typo:',
    });
    for (let i = 0; i < 20; i++) await dict.set(`k${i}`, i);
    for (let i = 0; i < 20; i++) expect(await dict.get(`k${i}`)).toBe(i);
    const tried = group.sentinels.map((s) => `127.0.0.1:${s.port}`).join(', ');
    expect(dict.nodeStates().find((s) => s.name === 'typo')).toMatchObject({
      alive: false,
      sentinel: 'mymastr',
      lastError: `the sentinels (${tried}) know no master group named "mymastr"`,
    });
    await dict.clear();
  });

  it('a failover: no caller error, ejected, rediscovered on the promoted replica, cleared before it serves', async () => {
    const lines: string[] = [];
    for (const level of ['log', 'warn', 'error'] as const) {
      vi.spyOn(Logger.prototype, level).mockImplementation((message: unknown) => {
        lines.push(`${level}: ${String(message)}`);
      });
    }
    const ref = await Test.createTestingModule({
      imports: [
        TerminusModule,
        RingRedisModule.forRoot({
          groups: { cache: nodes() },
          defaults: {
            prefix: 'ha:',
            commandTimeout: COMMAND_TIMEOUT,
            heartbeatInterval: HEARTBEAT,
            retryRatio: 0,
          },
        }),
      ],
      controllers: [HealthController],
      providers: [RingRedisHealthIndicator],
    }).compile();
    const app: INestApplication = ref.createNestApplication({ logger: false });
    await app.init();
    try {
      const dict = app.get(RingRedisService).getOrThrow<string>('cache');
      const events = collect(dict);
      const from = `127.0.0.1:${group.master.port}`;
      const to = `127.0.0.1:${group.replica.port}`;
      await until(() => dict.nodeStates().some((s) => s.master === from), 5000, 'ha connected');

      // Before: 400 keys, about a third of them on the Sentinel node, replicated.
      const before = new Map<string, string>();
      for (let i = 0; i < 400; i++) {
        before.set(`before${i}`, `value-${i}`);
        await dict.set(`before${i}`, `value-${i}`);
      }
      const haKeys = [...before.keys()].filter(
        (k) => dict.totalHash.locate(dict.getEntry(k)) === 'ha',
      );
      expect(haKeys.length).toBeGreaterThan(50);
      // Replication is asynchronous: a write acknowledged by the master a moment before it
      // dies can be lost. Wait for the replica so the test is about the ring, not that race.
      expect(await redisCommand(group.master.port, 'WAIT', '1', '2000')).toBe('1');

      // During: keep the cache busy — reads of every key, writes of other keys — and count
      // the calls that threw. None should: a dead master is a dead node, its keys fall through.
      let calls = 0;
      let thrown = 0;
      let haMisses = 0;
      const errors: string[] = [];
      let running = true;
      const traffic = (async () => {
        for (let i = 0; running; i++) {
          try {
            const key = `before${i % 400}`;
            const [value] = await Promise.all([
              dict.get(key),
              dict.set(`during${i % 200}`, `d${i}`),
            ]);
            calls += 2;
            if (value === undefined && haKeys.includes(key)) haMisses++;
          } catch (error) {
            thrown++;
            if (errors.length < 5) errors.push(String(error));
          }
          if (i % 20 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
        }
      })();
      await new Promise((resolve) => setTimeout(resolve, 200));

      const killedAt = performance.now();
      await group.master.kill();
      await until(
        () => events.some((e) => e.type === 'ejected' && e.node === 'ha'),
        5000,
        'ha ejected',
      );
      const ejectedAfter = performance.now() - killedAt;
      await until(
        () => events.some((e) => e.type === 'rediscovered' && e.node === 'ha'),
        FAILOVER_BUDGET_MS,
        'ha rediscovered',
      );
      const failoverMs = performance.now() - killedAt;
      // A little traffic with the node back, then stop.
      await new Promise((resolve) => setTimeout(resolve, 200));
      running = false;
      await traffic;
      console.log(
        `[sentinel] master ${from} SIGKILLed: ejected after ${ejectedAfter.toFixed(0)} ms, ` +
          `rediscovered on ${to} after ${failoverMs.toFixed(0)} ms; ${calls} calls during the ` +
          `failover, ${thrown} threw, ${haMisses} reads of the node's keys missed meanwhile`,
      );
      expect(errors).toEqual([]);
      expect(thrown).toBe(0);

      // The sentinels agree: the replica is the master now.
      expect(await group.currentMaster()).toBe(to);

      // After: the promoted replica may have missed the last writes (here it did not, but the
      // ring cannot tell), so it was cleared before it served: the Sentinel node's keys are
      // misses, never older values; every other key reads back.
      expect(dict.aliveHash.size).toBe(3);
      for (const [key, value] of before) {
        expect(await dict.get(key)).toBe(haKeys.includes(key) ? undefined : value);
      }
      for (const key of haKeys) {
        expect(dict.aliveHash.locate(dict.getEntry(key))).toBe('ha');
        expect(await redisCommand(group.replica.port, 'GET', dict.getEntry(key))).toBe('(nil)');
      }
      // Writes made on its behalf during the failover were invalidated, not handed back: each
      // such key is on the new master with the value the ring serves (written after it came
      // back), or nowhere.
      for (let i = 0; i < 200; i++) {
        const entry = dict.getEntry(`during${i}`);
        if (dict.totalHash.locate(entry) !== 'ha') continue;
        const onReplica = await redisCommand(group.replica.port, 'GET', entry);
        const served = await dict.get(`during${i}`);
        expect(onReplica).toBe(served === undefined ? '(nil)' : JSON.stringify(served));
      }

      // Events: ejected from the old master, then rediscovered on the new one, once each.
      const ha = events.filter((e) => e.node === 'ha');
      expect(ha.map((e) => e.type)).toEqual(['ejected', 'rediscovered']);
      expect(ha[0]).toMatchObject({ type: 'ejected', master: from });
      expect(ha[1]).toMatchObject({ type: 'rediscovered', master: to, failover: { from, to } });
      expect(ha[1].handoff?.untrusted?.reason).toMatch(/restarted or failed over/);
      expect(ha[1].handoff?.untrusted?.cleared).toBeGreaterThan(0);
      expect(events.filter((e) => e.node !== 'ha')).toEqual([]);

      // Node state and /health name the new master and the failover.
      const state = dict.nodeStates().find((s) => s.name === 'ha')!;
      expect(state).toMatchObject({
        alive: true,
        ejections: 1,
        rediscoveries: 1,
        sentinel: 'mymaster',
        master: to,
        failovers: 1,
        lastFailover: { from, to, at: expect.any(Date) },
      });
      const health = await request(app.getHttpServer()).get('/health').expect(200);
      const details = health.body.details['ring-redis'].groups.cache;
      expect(details.alive).toBe(3);
      // Its last error is the dead master's, not a sentinel's: they answered throughout.
      expect(details.nodes.ha.lastError).toMatch(new RegExp(`ECONNREFUSED ${from}`));
      expect(details.nodes.ha).toMatchObject({
        alive: true,
        sentinel: 'mymaster',
        master: to,
        failovers: 1,
        lastFailover: { from, to, at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) },
      });
      expect(details.nodes.plain0).toEqual({ alive: true, ejections: 0, rediscoveries: 0 });
      expect(
        details.events
          .filter((e: { node?: string }) => e.node === 'ha')
          .map((e: { type: string }) => e.type),
      ).toEqual(['ejected', 'rediscovered']);
      expect(details.events.at(-1)).toMatchObject({ failover: { from, to } });
      console.log(`[sentinel] /health after the failover: ${JSON.stringify(details.nodes.ha)}`);

      // The log says it was a failover, not just a node that came back.
      expect(lines).toContainEqual(
        expect.stringMatching(
          new RegExp(`warn: .*node "ha" ejected \\(Sentinel master ${from}\\)`),
        ),
      );
      expect(lines).toContainEqual(
        expect.stringMatching(
          new RegExp(
            `log: .*node "ha" rediscovered after a Sentinel failover \\(master ${from} → ${to}\\)`,
          ),
        ),
      );
      await dict.clear();
    } finally {
      await app.close();
    }
  }, 40_000);

  it('reaches the master past a hung first sentinel, within commandTimeout', async () => {
    const hung = group.sentinels[0];
    process.kill(hung.pid, 'SIGSTOP');
    try {
      const dict = fixture.dict<string, 'failed'>({
        nodes: { ha: { capacity: 1, connection: group.connection() } },
        prefix: 'hung-sentinel:',
        onFail: () => 'failed',
      });
      const events = collect(dict);
      expect(await dict.set('k', 'v')).toBeUndefined();
      expect(await dict.get('k')).toBe('v');
      expect(events).toEqual([]);
    } finally {
      process.kill(hung.pid, 'SIGCONT');
    }
  });

  it('is ejected with a clear reason when no sentinel answers', async () => {
    // Runs after the failover: the group is down to the promoted replica. Kill the sentinels.
    await Promise.all(group.sentinels.map((s) => s.kill()));
    const dict = fixture.dict<number>({
      nodes: nodes(),
      prefix: 'nosentinel:',
    });
    const events = collect(dict);
    for (let i = 0; i < 50; i++) await dict.set(`k${i}`, i);
    for (let i = 0; i < 50; i++) expect(await dict.get(`k${i}`)).toBe(i);
    const ha = dict.nodeStates().find((s) => s.name === 'ha')!;
    expect(ha.alive).toBe(false);
    const tried = group.sentinels.map((s) => `127.0.0.1:${s.port}`).join(', ');
    expect(ha.lastError).toBe(`no sentinel of "mymaster" answered (${tried})`);
    // It never reached a master, so it names none.
    expect(ha.master).toBeUndefined();
    expect(events).toMatchObject([{ type: 'ejected', node: 'ha' }]);
  });
});

describe('a Sentinel node with passwords', () => {
  const PASSWORD = 'data-s3cret-pw';
  const SENTINEL_PASSWORD = 'sentinel-s3cret-pw';
  const locked = useSentinelGroup({
    name: 'locked',
    password: PASSWORD,
    sentinelPassword: SENTINEL_PASSWORD,
  });

  it('reaches the master with both passwords and never repeats them', async () => {
    const lines: string[] = [];
    for (const level of ['log', 'warn', 'error'] as const) {
      vi.spyOn(Logger.prototype, level).mockImplementation((message: unknown) => {
        lines.push(String(message));
      });
    }
    const good = {
      ...locked.group.connection(),
      password: PASSWORD,
      sentinelPassword: SENTINEL_PASSWORD,
    };
    const dict = fixture.dict<number>({
      nodes: {
        plain0: { capacity: 1, connection: fixture.fleet.servers[0].url },
        good: { capacity: 1, connection: good },
        // Right sentinels, wrong password for them: the node stays out, the ring works.
        badSentinel: {
          capacity: 1,
          connection: { ...good, name: 'locked', db: 1, sentinelPassword: 'wrong-s3cret' },
        },
        // Right sentinels, wrong password for the master.
        badMaster: {
          capacity: 1,
          connection: { ...good, db: 2, password: 'wrong-s3cret-too' },
        },
      },
      prefix: 'locked:',
    });
    const events = collect(dict);
    for (let i = 0; i < 100; i++) await dict.set(`k${i}`, i);
    for (let i = 0; i < 100; i++) expect(await dict.get(`k${i}`)).toBe(i);

    const states = Object.fromEntries(dict.nodeStates().map((s) => [s.name, s]));
    expect(states.good).toMatchObject({
      alive: true,
      sentinel: 'locked',
      master: `127.0.0.1:${locked.group.master.port}`,
    });
    expect(states.badSentinel.alive).toBe(false);
    expect(states.badSentinel.lastError).toMatch(
      /^authentication failed \(no sentinel of "locked" answered \(127\.0\.0\.1:\d+, .*; last error: WRONGPASS/,
    );
    expect(states.badMaster.alive).toBe(false);
    expect(states.badMaster.lastError).toMatch(/WRONGPASS|NOAUTH|auth/i);

    const said = JSON.stringify([dict.nodeStates(), events, events.map((e) => e.error?.message)]);
    for (const secret of [PASSWORD, SENTINEL_PASSWORD, 'wrong-s3cret', 'wrong-s3cret-too']) {
      expect(said).not.toContain(secret);
      expect(lines.join('\n')).not.toContain(secret);
    }
    await dict.clear();
  });
});
