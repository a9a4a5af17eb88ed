import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RingClusterUnavailableError, type RingNodeConfig } from '../../lib/index.js';
import { aclUserArgs, startRedisServers, type RedisFleet } from '../helpers/redis-fleet.js';
import { collect } from '../helpers/ring-dicts.js';
import { dataKeyCountOf } from '../helpers/data-keys.js';
import {
  ACL_PASSWORD,
  ACL_USER,
  HEARTBEAT,
  PASSWORD,
  WRONG_PASSWORD,
  describeError,
  expectNoSecrets,
  keysFor,
  useCredentialServers,
} from '../helpers/credentials.js';
import { sleep } from '../helpers/wait.js';

/**
 * Credentials refused: a wrong password keeps its node out of the ring with a clear reason
 * ("authentication failed") while the others serve, every node wrong is the cluster
 * unavailable, and a server whose reply echoes the user name and password has both scrubbed.
 * No secret may show up in what the package says (logs, warnings, errors, events, health).
 * Credentials that work, and prefix isolation, are in credentials.spec.ts.
 */

const { fixture, admin, captured, passPort, aclPort } = useCredentialServers();

async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`condition not met in ${timeoutMs} ms`);
    await sleep(5);
  }
}

describe('a wrong password', () => {
  /** The right credentials for one server, as ioredis options. */
  function goodConnection(server: 'pass' | 'acl'): RingNodeConfig['connection'] {
    return server === 'pass'
      ? { host: '127.0.0.1', port: passPort(), password: PASSWORD }
      : { host: '127.0.0.1', port: aclPort(), username: ACL_USER, password: ACL_PASSWORD };
  }

  /** How the bad node connects, and which server it points at (the good node gets the other). */
  const wrongConnections: [string, 'pass' | 'acl', () => RingNodeConfig['connection']][] = [
    [
      'options, requirepass',
      'pass',
      () => ({ host: '127.0.0.1', port: passPort(), password: WRONG_PASSWORD }),
    ],
    [
      'options, ACL user',
      'acl',
      () => ({
        host: '127.0.0.1',
        port: aclPort(),
        username: ACL_USER,
        password: WRONG_PASSWORD,
      }),
    ],
    ['URL, ACL user', 'acl', () => `redis://${ACL_USER}:${WRONG_PASSWORD}@127.0.0.1:${aclPort()}`],
    ['URL, requirepass', 'pass', () => `redis://:${WRONG_PASSWORD}@127.0.0.1:${passPort()}`],
  ];

  it.each(wrongConnections)(
    '%s: the node never joins, the others serve, nothing leaks',
    async (_label, badServer, connection) => {
      const goodServer = badServer === 'pass' ? 'acl' : 'pass';
      const dict = fixture.dict<string>({
        nodes: {
          good: { capacity: 1, connection: goodConnection(goodServer) },
          bad: { capacity: 1, connection: connection() },
        },
      });
      const events = collect(dict);
      const bad = () => dict.nodeStates().find((s) => s.name === 'bad')!;
      await until(() => !bad().alive, 2_000);
      const keys = keysFor(100);
      // Every call is served by the good node: a bad password is not the caller's problem.
      for (const key of keys) await dict.set(key, key);
      for (const key of keys) expect(await dict.get(key)).toBe(key);
      expect(await dataKeyCountOf(admin[goodServer])).toBe(keys.length);
      expect(await dataKeyCountOf(admin[badServer])).toBe(0);
      // Several heartbeats later it is still out: it never joins.
      await sleep(5 * HEARTBEAT);
      expect(bad()).toMatchObject({ alive: false, ejections: 1, rediscoveries: 0 });
      expect(dict.aliveHash.nodes).toEqual(['good']);
      // What ioredis reports: WRONGPASS (AUTH / HELLO AUTH) or NOAUTH.
      expect(bad().lastError).toMatch(/WRONGPASS|NOAUTH|auth/i);
      expect(events.map((e) => `${e.type}:${e.node}`)).toEqual(['ejected:bad']);
      expectNoSecrets([
        ...captured,
        JSON.stringify(dict.nodeStates()),
        ...events.map((e) => describeError(e.error) + JSON.stringify(e)),
      ]);
    },
  );

  it('every node wrong: RingClusterUnavailableError, and neither it nor anything else leaks', async () => {
    const dict = fixture.dict<string>({
      nodes: {
        pass: {
          capacity: 1,
          connection: `redis://${ACL_USER}:${WRONG_PASSWORD}@127.0.0.1:${passPort()}`,
        },
        acl: {
          capacity: 1,
          connection: {
            host: '127.0.0.1',
            port: aclPort(),
            username: ACL_USER,
            password: PASSWORD,
          },
        },
      },
    });
    const events = collect(dict);
    // Calls made before and after the nodes' first connection attempts failed.
    const errors: unknown[] = [];
    for (let i = 0; i < 5; i++) {
      errors.push(await dict.get(`k${i}`).catch((error: unknown) => error));
      errors.push(await dict.set(`k${i}`, 'v').catch((error: unknown) => error));
      await sleep(HEARTBEAT);
    }
    for (const error of errors) expect(error).toBeInstanceOf(RingClusterUnavailableError);
    expect(dict.nodeStates().map((s) => s.alive)).toEqual([false, false]);
    expect(events.filter((e) => e.type === 'unavailable')).toHaveLength(1);
    expectNoSecrets([
      ...captured,
      JSON.stringify(dict.nodeStates()),
      ...errors.map(describeError),
      ...events.map((e) => describeError(e.error) + JSON.stringify(e)),
    ]);
  });

  it('the health details and the thrown error say "authentication failed" for the node', async () => {
    const dict = fixture.dict<string>({
      nodes: {
        locked: { capacity: 1, connection: `redis://:${WRONG_PASSWORD}@127.0.0.1:${passPort()}` },
      },
    });
    await until(() => !dict.nodeStates()[0].alive, 2_000);
    expect(dict.nodeStates()[0].lastError).toMatch(/authentication failed/i);
    const error = await dict.get('x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RingClusterUnavailableError);
    expect((error as Error).message).toMatch(/locked.*authentication failed/i);
  });
});

describe('a user name in an error', () => {
  // A server where AUTH and HELLO are renamed away answers the client's
  // `AUTH <user> <password>` with "ERR unknown command 'auth', with args beginning with:
  // '<user>' '<password>'": Redis itself echoes both credentials.
  let echoing: RedisFleet;

  beforeAll(async () => {
    echoing = await startRedisServers(1, {
      extraArgs: [
        ...aclUserArgs(ACL_USER, ACL_PASSWORD),
        '--rename-command',
        'HELLO',
        '',
        '--rename-command',
        'AUTH',
        '',
      ],
    });
  });

  afterAll(async () => {
    await echoing?.stop();
  });

  it.each([
    [
      'ioredis options',
      () => ({
        host: '127.0.0.1',
        port: echoing.servers[0].port,
        username: ACL_USER,
        password: ACL_PASSWORD,
      }),
    ],
    ['a URL', () => `redis://${ACL_USER}:${ACL_PASSWORD}@127.0.0.1:${echoing.servers[0].port}`],
  ])(
    '%s: scrubbed from lastError, events, health and RingClusterUnavailableError',
    async (_label, connection) => {
      const dict = fixture.dict<string>({
        nodes: { echo: { capacity: 1, connection: connection() } },
      });
      const events = collect(dict);
      const state = () => dict.nodeStates()[0];
      await until(() => !state().alive && state().lastError !== undefined, 2_000);
      // The reply really carried the credentials, and both were scrubbed.
      expect(state().lastError).toMatch(
        /unknown command 'auth', with args beginning with: '\*\*\*' '\*\*\*'/,
      );
      const error = await dict.get('k').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RingClusterUnavailableError);
      expect((error as Error).message).toMatch(/echo: .*unknown command 'auth'.*'\*\*\*' '\*\*\*'/);
      expect(events.map((e) => e.type)).toContain('ejected');
      expectNoSecrets([
        ...captured,
        JSON.stringify(dict.nodeStates()),
        describeError(error),
        ...events.map((e) => describeError(e.error) + JSON.stringify(e)),
      ]);
    },
  );
});
