import { describe, expect, it } from 'vitest';
import { RingDict, type RingDictOptions, type RingNodesConfig } from '../../lib/index.js';
import {
  ACL_PASSWORD,
  ACL_USER,
  PASSWORD,
  describeError,
  expectNoSecrets,
  keysFor,
  useCredentialServers,
} from '../helpers/credentials.js';
import { collect } from '../helpers/ring-dicts.js';
import { dataKeyCountOf } from '../helpers/data-keys.js';

/**
 * Credentials and isolation: passwords and ACL users reach Redis, no secret ever shows up in
 * what the package says (logs, warnings, configuration errors), and a dict never touches keys
 * outside its prefix on servers it shares with others. What happens when a server refuses
 * the credentials (a wrong password, a reply that echoes them) is in credentials-refused.spec.ts.
 */

const { fixture, admin, captured, passPort, aclPort } = useCredentialServers();

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
