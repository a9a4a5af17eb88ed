import type { RedisOptions } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { nodeAddress, validateNodes } from '../../lib/core/config/ring-config.js';
import { RingConfigError, RingDict, type RingNodesConfig } from '../../lib/index.js';

/** The RingConfigError `validateNodes` throws for `nodes` in group "cache". */
function configError(nodes: unknown): string {
  try {
    validateNodes(nodes, 'cache');
  } catch (error) {
    expect(error).toBeInstanceOf(RingConfigError);
    return (error as Error).message;
  }
  throw new Error('expected a RingConfigError');
}

/** One node "a" on `connection`. */
function oneNode(connection: unknown): unknown {
  return { a: { capacity: 1, connection } };
}

describe('a node connection refused at construction', () => {
  it.each<[string, unknown, RegExp]>([
    // ioredis would send `SELECT NaN` when connecting: an uncaught error, the process dies.
    [
      'a database path that is not a number',
      'redis://127.0.0.1:7000/abc',
      /^group "cache", node "a".connection: the database in the URL's path must be an integer from 0 to 2147483647, got "abc"$/,
    ],
    ['a database path with more after the number', 'redis://127.0.0.1:7000/3abc', /URL's path/],
    ['a database path with a second slash', 'redis://127.0.0.1:7000/1/2', /URL's path/],
    ['a negative database path', 'redis://127.0.0.1:7000/-1', /URL's path.*got "-1"/],
    [
      'a db query option that is not a number',
      'redis://127.0.0.1:7000?db=x',
      /node "a".connection: the URL's db option must be an integer from 0 to 2147483647, got "x"/,
    ],
    [
      'db NaN',
      { host: '127.0.0.1', port: 7000, db: Number.NaN },
      /^group "cache", node "a".connection.db: expected an integer from 0 to 2147483647, got NaN$/,
    ],
    ['db 1.5', { host: '127.0.0.1', port: 7000, db: 1.5 }, /connection.db: .*got 1.5/],
    ['db -1', { host: '127.0.0.1', port: 7000, db: -1 }, /connection.db: .*got -1/],
    ['db null', { host: '127.0.0.1', port: 7000, db: null }, /connection.db: .*got null/],
    ['db "abc"', { host: '127.0.0.1', port: 7000, db: 'abc' }, /connection.db: .*got "abc"/],
    ['db 2^31', { host: '127.0.0.1', port: 7000, db: 2 ** 31 }, /connection.db/],
    [
      'a Sentinel node with db NaN',
      { sentinels: [{ host: '10.0.0.1', port: 26379 }], name: 'mymaster', db: Number.NaN },
      /connection.db: .*got NaN/,
    ],
    // Not ioredis options: ioredis ignores them and connects to localhost.
    [
      '{ hostname, port }',
      { hostname: '10.0.0.5', port: 7000 },
      /^group "cache", node "a".connection: unknown option "hostname" \(not an ioredis connection option; did you mean "host"\?\)$/,
    ],
    [
      'a misspelt option next to a good host',
      { host: '10.0.0.5', port: 7000, pasword: 'x' },
      /connection: unknown option "pasword" \(not an ioredis connection option\)/,
    ],
    ['{ database }', { host: '10.0.0.5', database: 2 }, /unknown option "database".*"db"/],
    [
      '{ hostname } alone',
      { hostname: '10.0.0.5' },
      /connection: names no server \(.*\); unknown option "hostname" \(not an ioredis connection option; did you mean "host"\?\)$/,
    ],
    [
      'a Sentinel node with a foreign field',
      { sentinels: [{ host: '10.0.0.1', port: 26379 }], name: 'm', masterName: 'm' },
      /unknown option "masterName".*"name"/,
    ],
    [
      '{ host: "" }',
      { host: '', port: 7000 },
      /^group "cache", node "a".connection.host: expected a host name or address, got "" \(ioredis would connect to localhost\)$/,
    ],
    [
      '{ host: undefined } (an unset environment variable)',
      { host: undefined, port: 7000 },
      /connection.host: expected a host name or address, got undefined/,
    ],
    ['{ host: null }', { host: null, port: 7000 }, /connection.host: .*got null/],
    ['{ host: 42 }', { host: 42, port: 7000 }, /connection.host: .*got 42/],
    ['{ path: "" }', { path: '' }, /connection.path: expected a unix socket path, got ""/],
    ['port "0x1F90"', { host: 'h', port: '0x1F90' }, /connection.port: .*got "0x1F90"/],
    ['port true', { host: 'h', port: true }, /connection.port: .*got true/],
    ['port null', { host: 'h', port: null }, /connection.port: .*got null/],
    ['a URL with port 0', 'redis://127.0.0.1:0', /the URL's port: .*got "0"/],
    ['a URL with no host', 'redis:///0', /the URL names no host/],
    [
      'a URL query option ioredis would take as a string',
      'redis://127.0.0.1:7000?connectTimeout=100',
      /the URL's option "connectTimeout" is not supported \(a URL may carry db, family, username, password, connectionName/,
    ],
    ['a URL query option ioredis ignores', 'redis://127.0.0.1:7000?hostname=x', /"hostname"/],
  ])('%s', (_label, connection, message) => {
    expect(configError(oneNode(connection))).toMatch(message);
  });

  it('names the group, the node and the field through RingDict too', () => {
    const build = () =>
      new RingDict({
        name: 'sessions',
        nodes: { n1: { capacity: 1, connection: 'redis://127.0.0.1:7000/abc' } },
      });
    expect(build).toThrow(RingConfigError);
    expect(build).toThrow(
      /^group "sessions", node "n1".connection: the database in the URL's path/,
    );
  });
});

describe('the duplicate-address check', () => {
  it.each<[string, unknown, unknown]>([
    ['127.0.0.1 and localhost', 'redis://127.0.0.1:7000', 'redis://localhost:7000'],
    ['localhost and ::1', 'redis://localhost:7000', 'redis://[::1]:7000'],
    [
      '127.0.0.1 and ::1 as options',
      { host: '127.0.0.1', port: 7000 },
      { host: '::1', port: 7000 },
    ],
    ['::1 written in full', { host: '::1', port: 7000 }, 'redis://[0:0:0:0:0:0:0:1]:7000'],
    ['a host in capitals', 'redis://LocalHost:7000', { host: '127.0.0.1', port: 7000 }],
    ['a host with its final dot', 'redis://cache.example:7000', 'redis://cache.example.:7000'],
    ['a port as a string', { host: 'h', port: '7000' }, { host: 'h', port: 7000 }],
    ['db 01 and db 1', 'redis://h:7000/01', { host: 'h', port: 7000, db: 1 }],
    ['db in the query and in the path', 'redis://h:7000?db=2', 'redis://h:7000/2'],
    ['the default port', 'redis://h', { host: 'h', port: 6379 }],
    ['a port only, and localhost', { port: 7000 }, 'redis://localhost:7000'],
    ['two spellings of one socket path', { path: '/tmp/redis.sock' }, { path: '/tmp//redis.sock' }],
  ])('sees one server in %s', (_label, first, second) => {
    expect(
      configError({
        a: { capacity: 1, connection: first },
        b: { capacity: 1, connection: second },
      }),
    ).toMatch(
      /^group "cache", node "b": connection .* is the same server as node "a" \(duplicate address\)$/,
    );
  });

  it('sees one Sentinel master group behind localhost and 127.0.0.1', () => {
    const sentinel = (host: string) => ({
      capacity: 1,
      connection: { sentinels: [{ host, port: 26379 }], name: 'mymaster' },
    });
    expect(configError({ a: sentinel('127.0.0.1'), b: sentinel('localhost') })).toMatch(
      /node "b": .*same Sentinel master group as node "a"/,
    );
  });

  it('keeps other servers and databases apart', () => {
    const nodes = {
      a: { capacity: 1, connection: 'redis://127.0.0.1:7000' },
      b: { capacity: 1, connection: 'redis://127.0.0.2:7000' },
      c: { capacity: 1, connection: 'redis://localhost:7001' },
      d: { capacity: 1, connection: 'redis://localhost:7000/1' },
      e: { capacity: 1, connection: { path: '/tmp/redis.sock' } },
      f: { capacity: 1, connection: { path: '/tmp/redis.sock', db: 1 } },
    };
    expect(validateNodes(nodes, 'cache').size).toBe(6);
  });
});

describe('capacities and hash tags, as RingDict checks them', () => {
  const huge: RingNodesConfig = {
    a: { capacity: 1e308, connection: 'redis://10.0.0.1:7000' },
    b: { capacity: 1e308, connection: 'redis://10.0.0.2:7000' },
  };

  it('capacities whose sum overflows: refused by validateNodes and RingDict', () => {
    expect(configError(huge)).toBe(
      'group "cache": capacity: the nodes\' capacities add up to Infinity, more than a number can hold; use smaller ones (only their ratios matter)',
    );
    expect(() => new RingDict({ nodes: huge, name: 'big' })).toThrow(
      /^group "big": capacity: the nodes' capacities add up to Infinity/,
    );
  });

  it('a hash tag of two unpaired brackets: the group named, the pair meant suggested', () => {
    expect(
      () =>
        new RingDict({
          name: 'sessions',
          nodes: { a: { capacity: 1, connection: 'redis://10.0.0.1:7000' } },
          hashTag: '{{',
          lazyConnect: true,
        }),
    ).toThrow(/^group "sessions": hashTag: .*got "\{\{" \(did you mean '\{\}'\?\)$/);
  });
});

describe('configurations that stay valid', () => {
  it.each<[string, unknown]>([
    ['a URL', 'redis://10.0.0.1:7000'],
    ['a URL with a database', 'redis://10.0.0.1:7000/3'],
    ['a URL with db in the query', 'redis://10.0.0.1:7000?db=3'],
    ['a URL with a trailing slash', 'redis://10.0.0.1:7000/'],
    ['a TLS URL with credentials', 'rediss://user:pw@cache.example:6380/0'],
    ['an IPv6 URL', 'redis://[::1]:7000'],
    ['a URL with family', 'redis://cache.example:7000?family=6'],
    ['host and port', { host: '10.0.0.1', port: 7000 }],
    ['a port as a string', { host: '10.0.0.1', port: '7000' }],
    ['db as a string of digits', { host: '10.0.0.1', port: 7000, db: '2' }],
    ['db undefined', { host: '10.0.0.1', port: 7000, db: undefined }],
    ['TLS options', { host: 'cache.example', port: 6380, tls: { servername: 'cache.example' } }],
    ['a unix socket', { path: '/tmp/redis.sock' }],
    ['a unix socket with host undefined', { path: '/tmp/redis.sock', host: undefined }],
    ['a password undefined', { host: '10.0.0.1', port: 7000, password: undefined }],
    [
      'a Sentinel node with its options',
      {
        sentinels: [{ host: '10.0.0.1', port: 26379 }],
        name: 'mymaster',
        sentinelUsername: 'watcher',
        sentinelPassword: 'pw',
        enableTLSForSentinelMode: false,
        sentinelTLS: {},
        tls: {},
        db: 1,
      },
    ],
    [
      'ioredis options the ring leaves alone',
      { host: '10.0.0.1', port: 7000, connectionName: 'app', keepAlive: 1000, family: 4 },
    ],
  ])('%s', (_label, connection) => {
    expect(validateNodes(oneNode(connection), 'cache').get('a')).toBeDefined();
  });
});

describe('credentials to scrub', () => {
  it('include the user names of every form, not the built-in user "default"', () => {
    expect(
      nodeAddress({ host: 'h', port: 1, username: 'app-user', password: 'pw' }, 'n').secrets,
    ).toEqual(['pw', 'app-user']);
    expect(
      nodeAddress(
        {
          sentinels: [{ host: 'h', port: 26379 }],
          name: 'm',
          username: 'data-user',
          password: 'data-pw',
          sentinelUsername: 'sentinel-user',
          sentinelPassword: 'sentinel-pw',
        } as RedisOptions,
        'n',
      ).secrets,
    ).toEqual(['data-pw', 'sentinel-pw', 'data-user', 'sentinel-user']);
    expect(nodeAddress('redis://url-user:url%40pw@h:1', 'n').secrets).toEqual([
      'url@pw',
      'url-user',
    ]);
    expect(nodeAddress('redis://h:1?username=q-user&password=q-pw', 'n').secrets).toEqual([
      'q-pw',
      'q-user',
    ]);
    expect(nodeAddress({ host: 'h', username: 'default', password: 'pw' }, 'n').secrets).toEqual([
      'pw',
    ]);
    expect(nodeAddress('redis://default:pw@h:1', 'n').secrets).toEqual(['pw']);
  });

  it('never appear in a configuration error', () => {
    const message = configError({
      a: { capacity: 1, connection: { host: 'h', port: 1, username: 'u-s3cret', pasword: 'x' } },
    });
    expect(message).toMatch(/unknown option "pasword"/);
    expect(message).not.toMatch(/s3cret/);
  });
});

describe('a rediss:// URL naming its CA file (?ca=)', () => {
  it('becomes the ioredis options it stands for, with the CA read from the file', async () => {
    const { caFromUrl } = await import('../../lib/core/config/tls-ca-url.js');
    const { mkdtemp, rm, writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = await mkdtemp(join(tmpdir(), 'ring-redis-ca-'));
    try {
      const file = join(dir, 'ca.pem');
      await writeFile(file, 'PEM');
      const url = `rediss://u%40x:p%3Aw@[::1]:6380/2?ca=${encodeURIComponent(file)}&family=6&connectionName=c`;
      expect(caFromUrl(url, 'nodes, node "a"')).toEqual({
        host: '::1',
        port: 6380,
        username: 'u@x',
        password: 'p:w',
        db: 2,
        family: 6,
        connectionName: 'c',
        tls: { ca: Buffer.from('PEM') },
      });
      // The query's values come decoded: a "%" in them is the character (it was a URIError).
      expect(caFromUrl(`rediss://h?password=50%25off&ca=${file}`, 'x')).toEqual({
        host: 'h',
        port: 6379,
        password: '50%off',
        tls: { ca: Buffer.from('PEM') },
      });
      // A password that is not valid percent-encoding: named, not shown (it was a URIError).
      expect(() => caFromUrl(`rediss://u:pw%zz@h?ca=${file}`, 'nodes, node "a"')).toThrow(
        new RingConfigError(
          `nodes, node "a".connection: the URL's password is not valid percent-encoding (write a % as %25)`,
        ),
      );
      // Anything else is left as it is.
      expect(caFromUrl('rediss://h:1', 'x')).toBe('rediss://h:1');
      const options = { host: 'h', port: 1 };
      expect(caFromUrl(options, 'x')).toBe(options);
      // The URL's own checks still speak first.
      expect(() => caFromUrl(`rediss://h:1/abc?ca=${file}`, 'nodes, node "a"')).toThrow(
        /node "a".connection: the database in the URL's path must be an integer/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
