import 'reflect-metadata';
import { describe, expect, it } from 'vitest';
import { RingRedisModule, RingRedisService, type RingGroupEvent } from '../../lib/index.js';
import { fast, useNestApps } from '../helpers/nest-apps.js';
import { aclUserArgs, startRedisServers } from '../helpers/redis-fleet.js';
import { keysOwnedBy } from '../helpers/ring-dicts.js';
import { freePort } from '../helpers/redis-servers.js';
import { until } from '../helpers/wait.js';

/**
 * What RingRedisModule says about its groups: ejections, rediscoveries and outages logged once
 * each (never with a credential), and every group's events on RingRedisService.events$.
 */

const nest = useNestApps({ logged: true });

describe('events and logging', () => {
  it("logs ejection (warn), rediscovery (log) and unavailability (error) once each, context 'RingRedis'", async () => {
    const app = await nest.boot({
      imports: [RingRedisModule.forRoot({ groups: { logged: nest.nodes() }, defaults: fast })],
    });
    const dict = app.get(RingRedisService).getOrThrow('logged');
    const ringLines = () => nest.logs.ring('logged');
    // The boot's connections, once settled.
    await until(() => ringLines().length === 1);
    expect(ringLines()).toEqual([
      { level: 'log', message: 'group "logged": connected to 3 of 3 nodes', context: 'RingRedis' },
    ]);

    await nest.fleet.servers[1].kill();
    await until(() => dict.aliveHash.size === 2);
    // Many requests after the ejection log nothing more.
    await Promise.all(Array.from({ length: 50 }, (_, i) => dict.get(`k${i}`)));
    await nest.fleet.servers[1].restart();
    await until(() => dict.aliveHash.size === 3);

    await Promise.all([
      nest.fleet.servers[0].kill(),
      nest.fleet.servers[1].kill(),
      nest.fleet.servers[2].kill(),
    ]);
    await until(() => dict.aliveHash.size === 0);
    for (let i = 0; i < 20; i++) await expect(dict.get(`k${i}`)).rejects.toThrow();
    await Promise.all(nest.fleet.servers.map((s) => s.restart()));
    await until(() => dict.aliveHash.size === 3);

    const lines = ringLines();
    const ejected = lines.filter((l) => l.message.includes('ejected'));
    const rediscovered = lines.filter((l) => l.message.includes('rediscovered'));
    const unavailable = lines.filter((l) => l.message.includes('no node is alive'));
    expect(ejected.map((l) => l.level)).toEqual(['warn', 'warn', 'warn', 'warn']);
    expect(ejected.filter((l) => l.message.includes('node "node1"'))).toHaveLength(2);
    expect(ejected[0].message).toMatch(/^group "logged": node "node1" ejected: \S/);
    expect(rediscovered.map((l) => l.level)).toEqual(['log', 'log', 'log', 'log']);
    expect(rediscovered[0].message).toMatch(/^group "logged": node "node1" rediscovered/);
    expect(unavailable.map(({ level, message }) => ({ level, message }))).toEqual([
      { level: 'error', message: 'group "logged": no node is alive' },
    ]);
    // The first node back ends the outage, once.
    const usable = lines.filter((l) => l.message.includes('usable again'));
    expect(usable).toHaveLength(1);
    expect(usable[0].level).toBe('log');
    expect(usable[0].message).toMatch(
      /^group "logged": usable again after \d+\.\d s with no node alive \(node "node\d" is back\)$/,
    );
    expect(lines.indexOf(usable[0])).toBeGreaterThan(lines.indexOf(unavailable[0]));
    expect(lines).toHaveLength(11);
  });

  it('a node setNodes adds alive ends an outage; a rediscovery then does not claim to', async () => {
    const app = await nest.boot({
      imports: [RingRedisModule.forRoot({ groups: { grown: nest.nodes(0, 2) }, defaults: fast })],
    });
    const ring = app.get(RingRedisService);
    const dict = ring.getOrThrow('grown');
    const lines = () => nest.logs.ring('grown').map((l) => `${l.level} ${l.message}`);
    await until(() => lines().length === 1);
    await Promise.all([nest.fleet.servers[0].kill(), nest.fleet.servers[1].kill()]);
    await expect(dict.get('k')).rejects.toThrow();
    await until(() => lines().includes('error group "grown": no node is alive'));
    // An unreachable node added first ends nothing: the line names the one that is alive.
    const ghost = `redis://127.0.0.1:${await freePort()}`;
    await ring.setNodes({ ghost, ...nest.nodes() }, 'grown');
    await dict.set('k', 1);
    await nest.fleet.servers[0].restart();
    await until(() => dict.aliveHash.size === 2);
    const usable = lines().filter((l) => l.includes('usable again'));
    expect(usable).toHaveLength(1);
    expect(usable[0]).toMatch(
      /^log group "grown": usable again after \d+\.\d s with no node alive \(node "node2" was added\)$/,
    );
    expect(lines().indexOf(usable[0])).toBe(
      lines().indexOf('log group "grown": node "node2" added to the ring') + 1,
    );
  });

  it('a node cleared on its return says so in its rediscovered line', async () => {
    const app = await nest.boot({
      imports: [
        RingRedisModule.forRoot({
          groups: { wiped: nest.nodes() },
          defaults: { ...fast, prefix: 'wiped:' },
        }),
      ],
    });
    const dict = app.get(RingRedisService).getOrThrow('wiped');
    await dict.setMany(Array.from({ length: 30 }, (_, i) => [`k${i}`, i] as const));
    const [owned] = keysOwnedBy(dict, 'node1', 1);
    nest.fleet.servers[1].hang();
    try {
      await until(async () => {
        await dict.get(owned).catch(() => undefined);
        return dict.aliveHash.size === 2;
      });
      // Noted for node1, which deletes what it holds before it rejoins.
      await dict.clear();
    } finally {
      nest.fleet.servers[1].resume();
    }
    await until(() => dict.aliveHash.size === 3);
    const [line] = nest.logs.ring('wiped').filter((l) => l.message.includes('rediscovered'));
    expect(line.message).toMatch(
      /^group "wiped": node "node1" rediscovered \(0 entries handed back; cleared [1-9]\d* entries\)$/,
    );
  });

  it('warns at boot, naming the nodes that could not be reached', async () => {
    await nest.fleet.servers[2].kill();
    await nest.boot({
      imports: [RingRedisModule.forRoot({ groups: { partial: nest.nodes() }, defaults: fast })],
    });
    await until(() => nest.logs.ring('partial').some((l) => l.message.includes('connected to')));
    const boot = nest.logs.ring('partial').find((l) => l.message.includes('connected to'))!;
    expect(boot).toMatchObject({
      level: 'warn',
      message: 'group "partial": connected to 2 of 3 nodes; down: "node2"',
    });
  });

  it('never logs a password, a username or a connection URL', async () => {
    const SECRET = 'log-secret-do-not-print';
    const USER = 'ring-admin-user';
    const locked = await startRedisServers(1, {
      extraArgs: [...aclUserArgs(USER, SECRET), '--user', 'default', 'off'],
    });
    nest.track({ close: () => locked.stop() });
    const app = await nest.boot({
      imports: [
        RingRedisModule.forRoot({
          groups: {
            secret: {
              node0: { capacity: 1, connection: nest.fleet.servers[0].url },
              locked: {
                capacity: 1,
                connection: `redis://${USER}:${SECRET}@127.0.0.1:${locked.servers[0].port}`,
              },
            },
          },
          defaults: fast,
        }),
      ],
    });
    const dict = app.get(RingRedisService).getOrThrow('secret');
    await until(() => nest.logs.ring('secret').length === 1);
    await dict.set('k', 1);
    await locked.servers[0].kill();
    await until(() => dict.aliveHash.size === 1);
    await locked.servers[0].restart();
    await until(() => dict.aliveHash.size === 2);
    await nest.fleet.servers[0].kill();
    await locked.servers[0].kill();
    await until(() => dict.aliveHash.size === 0);
    await expect(dict.get('k')).rejects.toThrow();
    const levels = nest.logs.ring('secret').map((l) => l.level);
    expect(levels).toEqual(['log', 'warn', 'log', 'warn', 'warn', 'error']);
    const text = JSON.stringify(nest.logs.lines);
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(USER);
    expect(text).not.toContain('redis://');
  });

  it('events$ carries every group’s events, each tagged with its group', async () => {
    const app = await nest.boot({
      imports: [
        RingRedisModule.forRoot({
          groups: { one: nest.nodes(0, 2), two: nest.nodes(1, 3) },
          defaults: fast,
        }),
      ],
    });
    const rings = app.get(RingRedisService);
    const seen: RingGroupEvent[] = [];
    const subscription = rings.events$.subscribe((event) => seen.push(event));
    await nest.fleet.servers[1].kill();
    await until(() => seen.length === 2);
    subscription.unsubscribe();
    expect(seen.map(({ group, type, node }) => ({ group, type, node })).sort(byGroup)).toEqual([
      { group: 'one', type: 'ejected', node: 'node1' },
      { group: 'two', type: 'ejected', node: 'node1' },
    ]);
    expect(seen[0].at).toBeInstanceOf(Date);
    expect(rings.recentEvents('one').map((e) => e.type)).toEqual(['ejected']);
  });
});

function byGroup(x: { group: string }, y: { group: string }): number {
  return x.group.localeCompare(y.group);
}
