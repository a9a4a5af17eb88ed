import { inspect } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  RingClusterUnavailableError,
  RingDict,
  type RingDictOptions,
  type RingNodeConfig,
  type RingNodesConfig,
} from '../../lib/index.js';
import { startRedisServers, type RedisFleet } from '../helpers/redis-fleet.js';
import { collect, useRingDicts } from '../helpers/ring-dicts.js';
import { dataKeyCountOf } from '../helpers/data-keys.js';

/**
 * Credentials and isolation: passwords and ACL users reach Redis, a wrong password keeps
 * its node out of the ring with a clear reason, no secret ever shows up in what the package
 * says (logs, warnings, errors, events, health), and a dict never touches keys outside its
 * prefix on servers it shares with others.
 */

// Distinctive strings, so a search for them cannot match anything by chance.
const PASSWORD = 'S3cret-pw-7f1c';
const ACL_USER = 'ring-user-9d2';
const ACL_PASSWORD = 'Acl-pw-41bb';
const WRONG_PASSWORD = 'Wr0ng-pw-c0de';
const SECRETS = [PASSWORD, ACL_USER, ACL_PASSWORD, WRONG_PASSWORD];
/** A URL that still carries credentials (`redis://user:pw@host`). */
const URL_WITH_CREDENTIALS = /rediss?:\/\/[^\s/@]*@/i;

const COMMAND_TIMEOUT = 200;
const HEARTBEAT = 100;

let requirepass: RedisFleet;
let acl: RedisFleet;
/** Authenticated admin connections to set up and inspect the servers behind the dict's back. */
let admin: { pass: Redis; acl: Redis };

/** Everything the package said, gathered for the secret search. */
const captured: string[] = [];

beforeAll(async () => {
  requirepass = await startRedisServers(1, { extraArgs: ['--requirepass', PASSWORD] });
  acl = await startRedisServers(1, {
    extraArgs: [
      '--user',
      ACL_USER,
      'on',
      `>${ACL_PASSWORD}`,
      '~*',
      '&*',
      '+@all',
      '--user',
      'default',
      'off',
    ],
  });
  admin = {
    pass: new Redis({ host: '127.0.0.1', port: passPort(), password: PASSWORD, lazyConnect: true }),
    acl: new Redis({
      host: '127.0.0.1',
      port: aclPort(),
      username: ACL_USER,
      password: ACL_PASSWORD,
      lazyConnect: true,
    }),
  };
  await Promise.all([admin.pass.connect(), admin.acl.connect()]);
});

beforeEach(() => {
  captured.length = 0;
  const keep =
    (where: string) =>
    (...args: unknown[]): void => {
      captured.push(
        `${where}: ${args.map((a) => (typeof a === 'string' ? a : inspect(a, { depth: 10 }))).join(' ')}`,
      );
    };
  for (const method of ['log', 'info', 'warn', 'error', 'debug', 'trace'] as const) {
    vi.spyOn(console, method).mockImplementation(keep(`console.${method}`));
  }
  vi.spyOn(process, 'emitWarning').mockImplementation(
    keep('emitWarning') as typeof process.emitWarning,
  );
});

afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all([admin?.pass.flushall(), admin?.acl.flushall()]);
});

afterAll(async () => {
  await Promise.allSettled([admin?.pass.quit(), admin?.acl.quit()]);
  admin?.pass.disconnect();
  admin?.acl.disconnect();
  await Promise.all([requirepass?.stop(), acl?.stop()]);
});

// The servers are the suite's own (above), named in each dict's nodes. Registered after the
// hooks above, so that its afterEach closes the dicts before theirs restores the mocks.
const fixture = useRingDicts(
  { commandTimeout: COMMAND_TIMEOUT, heartbeatInterval: HEARTBEAT, retryRatio: 0 },
  { servers: 0 },
);

function passPort(): number {
  return requirepass.servers[0].port;
}

function aclPort(): number {
  return acl.servers[0].port;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`condition not met in ${timeoutMs} ms`);
    await sleep(5);
  }
}

/** An error as fully as anyone could print it: message, stack, causes, own properties. */
function describeError(error: unknown): string {
  return inspect(error, { depth: Infinity, showHidden: true });
}

/** Fails naming where a secret or a URL with credentials was found. */
function expectNoSecrets(texts: readonly string[]): void {
  for (const text of texts) {
    for (const secret of SECRETS) {
      expect(text.includes(secret), `a secret leaked in: ${text.slice(0, 300)}`).toBe(false);
    }
    expect(text, 'a URL with credentials leaked').not.toMatch(URL_WITH_CREDENTIALS);
  }
}

function keysFor(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `key${i}`);
}

describe('the secret search', () => {
  it('captures console and warnings, and finds secrets and URLs with credentials', () => {
    console.warn('warned', { nested: { error: new Error('deep') } });
    process.emitWarning('a warning');
    expect(captured.join('\n')).toMatch(/console\.warn: warned[\s\S]*deep[\s\S]*a warning/);
    expect(() => expectNoSecrets([`AUTH ${ACL_PASSWORD}`])).toThrow(/secret leaked/);
    expect(() => expectNoSecrets([describeError(new Error('x', { cause: PASSWORD }))])).toThrow();
    expect(() => expectNoSecrets(['connect to redis://u:p@127.0.0.1:1'])).toThrow(/credentials/);
    expect(() =>
      expectNoSecrets(['connect ECONNREFUSED 127.0.0.1:1 (redis://127.0.0.1:1)']),
    ).not.toThrow();
  });
});

describe('credentials reach Redis', () => {
  it('{ password } and { username, password } as ioredis options', async () => {
    const dict = fixture.dict<number>({
      nodes: {
        pass: {
          capacity: 1,
          connection: { host: '127.0.0.1', port: passPort(), password: PASSWORD },
        },
        acl: {
          capacity: 1,
          connection: {
            host: '127.0.0.1',
            port: aclPort(),
            username: ACL_USER,
            password: ACL_PASSWORD,
          },
        },
      },
    });
    const events = collect(dict);
    const keys = keysFor(200);
    for (const [i, key] of keys.entries()) await dict.set(key, i);
    for (const [i, key] of keys.entries()) expect(await dict.get(key)).toBe(i);
    // Both servers hold their share: each node really authenticated.
    expect(await dataKeyCountOf(admin.pass)).toBeGreaterThan(40);
    expect(await dataKeyCountOf(admin.acl)).toBeGreaterThan(40);
    expect((await dataKeyCountOf(admin.pass)) + (await dataKeyCountOf(admin.acl))).toBe(
      keys.length,
    );
    expect(events).toEqual([]);
    expect(dict.nodeStates().every((s) => s.alive && s.ejections === 0)).toBe(true);
    expectNoSecrets([...captured, JSON.stringify(dict.nodeStates())]);
  });

  it('redis://:password@ and redis://user:password@ URLs', async () => {
    const dict = fixture.dict<string>({
      nodes: {
        pass: { capacity: 1, connection: `redis://:${PASSWORD}@127.0.0.1:${passPort()}` },
        acl: {
          capacity: 1,
          connection: `redis://${ACL_USER}:${ACL_PASSWORD}@127.0.0.1:${aclPort()}`,
        },
      },
    });
    const events = collect(dict);
    const keys = keysFor(200);
    for (const key of keys) await dict.set(key, `v-${key}`);
    for (const key of keys) expect(await dict.get(key)).toBe(`v-${key}`);
    expect(await dataKeyCountOf(admin.pass)).toBeGreaterThan(40);
    expect(await dataKeyCountOf(admin.acl)).toBeGreaterThan(40);
    expect(events).toEqual([]);
    expectNoSecrets([...captured, JSON.stringify(dict.nodeStates())]);
  });
});

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

describe('configuration errors with credentials', () => {
  it('never echo the URL or the password', () => {
    const url = `redis://${ACL_USER}:${PASSWORD}@127.0.0.1:1`;
    const attempts: Record<string, unknown>[] = [
      { nodes: { a: { capacity: 0, connection: url } } },
      { nodes: { a: { capacity: 1, connection: url }, b: { capacity: 1, connection: url } } },
      { nodes: { a: { capacity: 1, connection: `redis://${ACL_USER}:${PASSWORD}@[bad` } } },
      { nodes: { a: { capacity: 1, connection: `http://${ACL_USER}:${PASSWORD}@127.0.0.1:1` } } },
      { nodes: { a: { capacity: 1, connection: url, password: PASSWORD } } },
      {
        nodes: {
          a: { capacity: 1, connection: { host: '127.0.0.1', port: 1, password: PASSWORD } },
          b: { capacity: 1, connection: { host: '127.0.0.1', port: 1, password: PASSWORD } },
        },
      },
    ];
    const errors = attempts.map((options) => {
      try {
        new RingDict(options as unknown as RingDictOptions).close();
        return undefined;
      } catch (error) {
        return error;
      }
    });
    for (const error of errors) expect(error).toBeInstanceOf(Error);
    expectNoSecrets([...captured, ...errors.map(describeError)]);
  });
});

describe('isolation: a dict never reads or deletes outside its prefix', () => {
  const FOREIGN = [
    'app',
    'ap:x',
    'App:x',
    'APP:x',
    'app;x',
    'app2:x',
    'xapp:x',
    'other:app:x',
    ' app:x',
    'ap*',
  ];

  async function seedForeign(): Promise<void> {
    for (const client of [admin.pass, admin.acl]) {
      for (const key of FOREIGN) await client.set(key, 'theirs');
      await client.hset('app-hash', 'f', 'theirs');
      await client.rpush('app-list', 'theirs');
    }
  }

  async function expectForeignIntact(): Promise<void> {
    for (const client of [admin.pass, admin.acl]) {
      for (const key of FOREIGN) expect(await client.get(key), key).toBe('theirs');
      expect(await client.hget('app-hash', 'f')).toBe('theirs');
      expect(await client.lrange('app-list', 0, -1)).toEqual(['theirs']);
    }
  }

  function authNodes(): RingNodesConfig {
    return {
      pass: {
        capacity: 1,
        connection: { host: '127.0.0.1', port: passPort(), password: PASSWORD },
      },
      acl: {
        capacity: 1,
        connection: `redis://${ACL_USER}:${ACL_PASSWORD}@127.0.0.1:${aclPort()}`,
      },
    };
  }

  it('keys(), size(), entries(), clearPrefix() and clear() see only their prefix', async () => {
    await seedForeign();
    const dict = fixture.dict<number>({ nodes: authNodes(), prefix: 'app:' });
    const neighbour = fixture.dict<number>({ nodes: authNodes(), prefix: 'app-2:' });
    const ours = [
      ...Array.from({ length: 40 }, (_, i) => `k${i}`),
      ...Array.from({ length: 10 }, (_, i) => `user:${i}`),
      'users',
      'user',
      '',
    ];
    for (const [i, key] of ours.entries()) await dict.set(key, i);
    for (let i = 0; i < 20; i++) await neighbour.set(`n${i}`, i);

    expect(await dict.size()).toBe(ours.length);
    const keys: string[] = [];
    for await (const key of dict.keys()) keys.push(key);
    expect(keys.sort()).toEqual([...ours].sort());
    const entries = new Map<string, number>();
    for await (const [key, value] of dict.entries()) entries.set(key, value);
    expect(entries.size).toBe(ours.length);
    expect(await neighbour.size()).toBe(20);

    // clearPrefix('user:') takes app:user:* only: not app:users, not app:user.
    expect(await dict.clearPrefix('user:')).toBe(10);
    expect(await dict.size()).toBe(ours.length - 10);
    expect(await dict.get('users')).toBe(ours.indexOf('users'));
    expect(await dict.get('user')).toBe(ours.indexOf('user'));
    await expectForeignIntact();

    expect(await dict.clear()).toBe(ours.length - 10);
    expect(await dict.size()).toBe(0);
    await expectForeignIntact();
    expect(await neighbour.size()).toBe(20);
    for (let i = 0; i < 20; i++) expect(await neighbour.get(`n${i}`)).toBe(i);
    // The servers hold exactly the foreign keys plus the neighbour's.
    const total = (await dataKeyCountOf(admin.pass)) + (await dataKeyCountOf(admin.acl));
    expect(total).toBe(2 * (FOREIGN.length + 2) + 20);
    expectNoSecrets([...captured, JSON.stringify(dict.nodeStates())]);
  });

  it('a prefix made of glob characters matches only itself', async () => {
    await seedForeign();
    // 'a[p]p:' as a glob would match "app:" — and with it every key of the dict above.
    const dict = fixture.dict<number>({ nodes: authNodes(), prefix: 'a[p]p:' });
    for (const client of [admin.pass, admin.acl]) await client.set('app:glob', 'theirs');
    for (let i = 0; i < 10; i++) await dict.set(`g${i}`, i);
    expect(await dict.size()).toBe(10);
    const keys: string[] = [];
    for await (const key of dict.keys()) keys.push(key);
    expect(keys).toHaveLength(10);
    expect(await dict.clear()).toBe(10);
    await expectForeignIntact();
    for (const client of [admin.pass, admin.acl])
      expect(await client.get('app:glob')).toBe('theirs');
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
        '--user',
        ACL_USER,
        'on',
        `>${ACL_PASSWORD}`,
        '~*',
        '&*',
        '+@all',
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
