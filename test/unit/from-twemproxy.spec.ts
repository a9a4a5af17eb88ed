import { describe, expect, it } from 'vitest';
import { RingConfigError } from '../../lib/core/errors.js';
import { HashRing } from '../../lib/core/hashing/hash-ring.js';
import { validateNodes } from '../../lib/core/config/ring-config.js';
import { resolveRingDictOptions } from '../../lib/core/config/ring-dict-options.js';
import { fromTwemproxy } from '../../lib/twemproxy/from-twemproxy.js';
import { parseTwemproxyServer } from '../../lib/twemproxy/servers.js';
import { TwemproxyConfigError } from '../../lib/twemproxy/twemproxy-config-error.js';
import { RingArgumentError } from '../../lib/core/errors.js';
import { SAMPLE } from '../helpers/twemproxy-sample.js';

/**
 * fromTwemproxy: a twemproxy (nutcracker) pool read into ring options the ring accepts as
 * they are — servers, weights, hash, hash tag, timeout, credentials — with a warning for
 * each option it cannot keep and a clear error for what it cannot import. How the result is
 * printed, and the command that prints it, are in from-twemproxy-cli.spec.ts.
 */

describe('fromTwemproxy', () => {
  it('imports named servers with weights, hash, hash tag and timeout', () => {
    const { pool, group, warnings } = fromTwemproxy(SAMPLE, { pool: 'alpha' });
    expect(pool).toBe('alpha');
    expect(group).toEqual({
      nodes: {
        server1: { capacity: 1, connection: 'redis://127.0.0.1:6380' },
        server2: { capacity: 1, connection: 'redis://127.0.0.1:6381' },
        server3: { capacity: 2, connection: 'redis://127.0.0.1:6382' },
      },
      distribution: 'ketama',
      hashFunction: 'fnv1a_64',
      hashTag: '{}',
      commandTimeout: 400,
    });
    expect(warnings.map((w) => w.split(':')[0]).sort()).toEqual([
      'auto_eject_hosts',
      'listen',
      'server_failure_limit',
      'server_retry_timeout',
    ]);
  });

  it("names unnamed servers by twemproxy's identity: host:port, or host alone for 11211", () => {
    const { group } = fromTwemproxy(SAMPLE, { pool: 'beta' });
    expect(Object.keys(group.nodes)).toEqual(['10.0.0.1:6379', '10.0.0.2:6379', 'cache.internal']);
    expect(group.nodes['cache.internal']).toEqual({
      capacity: 61,
      connection: 'redis://cache.internal:11211',
    });
    expect(group.hashFunction).toBe('fnv1a_64'); // twemproxy's default
    expect(group.hashTag).toBeUndefined();
    expect(group.commandTimeout).toBeUndefined();
  });

  it('produces options that RingDict and HashRing accept', () => {
    for (const pool of ['alpha', 'beta']) {
      const { group } = fromTwemproxy(SAMPLE, { pool });
      expect(() => validateNodes(group.nodes, pool)).not.toThrow();
      expect(() => resolveRingDictOptions({ ...group, name: pool })).not.toThrow();
      const ring = new HashRing(
        Object.fromEntries(Object.entries(group.nodes).map(([n, v]) => [n, v.capacity])),
        {
          distribution: group.distribution,
          hashFunction: group.hashFunction,
          hashTag: group.hashTag,
        },
      );
      expect(ring.size).toBe(3);
    }
  });

  it('parses server lines from their end, like twemproxy', () => {
    const at = 'test';
    expect(parseTwemproxyServer('127.0.0.1:6379:1', at)).toEqual({
      name: '127.0.0.1:6379',
      weight: 1,
      host: '127.0.0.1',
      port: 6379,
    });
    // The identity is the text as written, not a normalised address.
    expect(parseTwemproxyServer('localhost:06379:3', at).name).toBe('localhost:06379');
    expect(parseTwemproxyServer('localhost:011211:3', at).name).toBe('localhost');
    expect(parseTwemproxyServer('::1:6379:1', at)).toMatchObject({ host: '::1', port: 6379 });
    expect(parseTwemproxyServer('/var/run/redis.sock:2', at)).toEqual({
      name: '/var/run/redis.sock:',
      weight: 2,
      path: '/var/run/redis.sock',
    });
    expect(parseTwemproxyServer('/var/run/redis.sock:2 local', at).name).toBe('local');
    expect(parseTwemproxyServer('h:1:1 name:with:colons', at).name).toBe('name:with:colons');
    for (const bad of [
      '127.0.0.1:6379',
      'host',
      'h:p:1',
      'h:1:x',
      'h:1:0',
      'h:70000:1',
      ':1:1',
      'h:1:1 ',
    ]) {
      expect(() => parseTwemproxyServer(bad, at), bad).toThrow(TwemproxyConfigError);
    }
  });

  it('maps redis_auth and redis_db to connection options', () => {
    const pool = (options: string) =>
      fromTwemproxy(`
p:
  listen: 0.0.0.0:22121
  redis: true
${options}
  servers:
   - 10.0.0.1:6379:1 a
   - /tmp/r.sock:1 b
`);
    expect(pool(`  redis_auth: s3cr3t:"x'`).group.nodes).toEqual({
      a: { capacity: 1, connection: { host: '10.0.0.1', port: 6379, password: 's3cr3t:"x\'' } },
      b: { capacity: 1, connection: { path: '/tmp/r.sock', password: 's3cr3t:"x\'' } },
    });
    expect(pool('  redis_db: 3').group.nodes).toEqual({
      a: { capacity: 1, connection: { host: '10.0.0.1', port: 6379, db: 3 } },
      b: { capacity: 1, connection: { path: '/tmp/r.sock', db: 3 } },
    });
    // Both: nutcracker never selects the database (see nutcracker-compat.spec.ts).
    const both = pool(`  redis_auth: s3cr3t\n  redis_db: 3`);
    expect(both.group.nodes.a.connection).toEqual({
      host: '10.0.0.1',
      port: 6379,
      password: 's3cr3t',
    });
    expect(both.warnings.filter((w) => w.startsWith('redis_db'))).toEqual([
      expect.stringMatching(/^redis_db: 3 with redis_auth: nutcracker sends SELECT before AUTH/),
    ]);
  });

  it('refuses options that are not { pool }, saying what they are', () => {
    const single = 'p:\n  redis: true\n  servers:\n   - 10.0.0.1:6379:1\n';
    // A pool's name given as the options chose the only pool, whatever the name.
    expect(() => fromTwemproxy(single, 'other' as never)).toThrow(
      /^fromTwemproxy: options must be an object such as \{ pool: 'alpha' \}, got "other"$/,
    );
    expect(() => fromTwemproxy(single, { pool: 3 } as never)).toThrow(RingArgumentError);
    expect(() => fromTwemproxy(single, { pool: 3 } as never)).toThrow(/pool must be a string/);
    expect(() => fromTwemproxy(single, { pol: 'p' } as never)).toThrow(/unknown option "pol"/);
    expect(fromTwemproxy(single, null as never).pool).toBe('p');
  });

  it('a host a URL would read otherwise is given as host and port', () => {
    const servers = (...lines: string[]) =>
      fromTwemproxy(`p:\n  redis: true\n  servers:\n${lines.map((l) => `   - ${l}\n`).join('')}`)
        .group.nodes;
    // In a redis:// URL, a#b is host a on port 6379, u@h user u on host h.
    expect(servers('a#b:6380:1 x', 'u@h:6380:1 y', 'h.example:6380:1 z')).toEqual({
      x: { capacity: 1, connection: { host: 'a#b', port: 6380 } },
      y: { capacity: 1, connection: { host: 'u@h', port: 6380 } },
      z: { capacity: 1, connection: 'redis://h.example:6380' },
    });
  });

  it("refuses weights that add up past 2^32 - 1, where nutcracker's total wraps around", () => {
    const big = 2 ** 31 - 1;
    const pool = `p:\n  redis: true\n  servers:\n${[1, 2, 3].map((i) => `   - 10.0.0.${i}:6379:${big}\n`).join('')}`;
    expect(() => fromTwemproxy(pool)).toThrow(TwemproxyConfigError);
    expect(() => fromTwemproxy(pool)).toThrow(/the weights add up to 6442450941, past 2\^32 - 1/);
  });

  it('warns once for each option with no equivalent', () => {
    const { group, warnings } = fromTwemproxy(`
p:
  listen: 0.0.0.0:22121
  hash: md5
  distribution: ketama
  backlog: 1024
  client_connections: 100
  preconnect: true
  server_connections: 2
  tcpkeepalive: true
  reuseport: false
  redis: true
  mystery: 1
  servers:
   - 10.0.0.1:6379:1
`);
    expect(group.hashFunction).toBe('md5');
    const options = warnings.map((w) => w.slice(0, w.indexOf(':')));
    expect(options.sort()).toEqual(
      [
        'auto_eject_hosts',
        'backlog',
        'client_connections',
        'listen',
        'mystery',
        'preconnect',
        'reuseport',
        'server_connections',
        'tcpkeepalive',
        'timeout',
      ].sort(),
    );
    expect(warnings.find((w) => w.startsWith('mystery'))).toMatch(/unknown/);
    // Absent, nutcracker's timeout is none: the ring's default is not the same.
    expect(warnings.find((w) => w.startsWith('timeout'))).toMatch(
      /absent \(nutcracker waits for ever\).*500 ms/,
    );
    expect(warnings.find((w) => w.startsWith('auto_eject_hosts'))).toMatch(/off in nutcracker/);
  });

  it('warns that modula / random placement cannot be kept', () => {
    for (const distribution of ['modula', 'random']) {
      const { group, warnings } = fromTwemproxy(`
p:
  redis: true
  distribution: ${distribution}
  hash: murmur
  servers: [ "10.0.0.1:6379:1" ]
`);
      expect(group.distribution).toBe('ketama');
      expect(group.hashFunction).toBe('fnv1a_64');
      expect(warnings.find((w) => w.startsWith('distribution'))).toMatch(/cold cache/);
      expect(warnings.find((w) => w.startsWith('hash:'))).toMatch(/murmur/);
    }
  });

  it('accepts every hash it can reproduce exactly', () => {
    for (const hash of ['fnv1a_64', 'md5', 'fnv1_64', 'fnv1_32', 'fnv1a_32', 'crc32a']) {
      const { group } = fromTwemproxy(`p:\n  redis: true\n  hash: ${hash}\n  servers: ["h:1:1"]\n`);
      expect(group.hashFunction).toBe(hash);
    }
  });

  const errors: [what: string, yaml: string, options: { pool?: string }, message: RegExp][] = [
    ['bad YAML', 'p:\n  servers: [\n', {}, /invalid YAML/],
    ['duplicate keys', 'p:\n  redis: true\n  redis: true\n', {}, /invalid YAML.*unique/],
    [
      'an alias to no anchor',
      'p:\n  redis: true\n  servers:\n   - *nope\n',
      {},
      /^invalid YAML: .*nope/,
    ],
    [
      'a server named __proto__',
      'p:\n  redis: true\n  servers:\n   - 10.0.0.1:6380:1 __proto__\n',
      {},
      /servers\[0\]: the server name "__proto__" cannot be imported/,
    ],
    ['an empty file', '', {}, /no pool/],
    ['a list at the top', '- a\n- b\n', {}, /mapping of pool name/],
    ['an unknown pool', SAMPLE, { pool: 'gamma' }, /unknown pool "gamma".*alpha, beta/],
    ['several pools and no choice', SAMPLE, {}, /2 pools \(alpha, beta\).*--pool/],
    ['a memcached pool', 'p:\n  servers: ["h:1:1"]\n', {}, /memcached pool/],
    ['a non-boolean', 'p:\n  redis: yes\n', {}, /redis: expected true or false/],
    [
      'an unsupported hash',
      'p:\n  redis: true\n  hash: murmur\n  servers: ["h:1:1"]\n',
      {},
      /murmur is not implemented.*supported: fnv1a_64, md5/,
    ],
    [
      "twemproxy's 15-bit crc32",
      'p:\n  redis: true\n  hash: crc32\n  servers: ["h:1:1"]\n',
      {},
      /crc32 is not implemented/,
    ],
    [
      'an unknown hash',
      'p:\n  redis: true\n  hash: sha1\n  servers: ["h:1:1"]\n',
      {},
      /not a twemproxy hash/,
    ],
    [
      'an unknown distribution',
      'p:\n  redis: true\n  distribution: rendezvous\n',
      {},
      /unknown distribution/,
    ],
    [
      'an unquoted hash tag',
      'p:\n  redis: true\n  hash_tag: {}\n  servers: ["h:1:1"]\n',
      {},
      /hash_tag: expected a single value/,
    ],
    [
      'a long hash tag',
      'p:\n  redis: true\n  hash_tag: "{{}}"\n  servers: ["h:1:1"]\n',
      {},
      /two ASCII characters/,
    ],
    [
      'a non-ASCII hash tag',
      'p:\n  redis: true\n  hash_tag: "é"\n  servers: ["h:1:1"]\n',
      {},
      /two ASCII characters/,
    ],
    // nutcracker takes any two bytes as a hash tag; the ring refuses mismatched brackets.
    [
      'a hash tag of two opening brackets',
      'p:\n  redis: true\n  hash_tag: "{{"\n  servers: ["h:1:1"]\n',
      {},
      /pool "p", hash_tag: .*opening and its closing character .*got "\{\{" \(did you mean '\{\}'\?\)/,
    ],
    [
      'a hash tag of reversed brackets',
      'p:\n  redis: true\n  hash_tag: "}{"\n  servers: ["h:1:1"]\n',
      {},
      /pool "p", hash_tag: .*got "\}\{" \(did you mean '\{\}'\?\)/,
    ],
    [
      'a hash tag of two opening parentheses',
      'p:\n  redis: true\n  hash_tag: "(("\n  servers: ["h:1:1"]\n',
      {},
      /pool "p", hash_tag: .*got "\(\(" \(did you mean '\(\)'\?\)/,
    ],
    [
      'a bad timeout',
      'p:\n  redis: true\n  timeout: 1s\n  servers: ["h:1:1"]\n',
      {},
      /timeout: expected a whole number/,
    ],
    // nutcracker -t refuses both: it finds a port's colon in the path.
    [
      'a unix socket path with a colon',
      'p:\n  redis: true\n  servers: ["/tmp/a:b.sock:1"]\n',
      {},
      /servers\[0\]: "\/tmp\/a:b\.sock:1": nutcracker refuses a unix socket path with a colon/,
    ],
    [
      'a named unix socket path with a colon',
      'p:\n  redis: true\n  servers: ["/tmp/a:b.sock:1 name"]\n',
      {},
      /nutcracker refuses a unix socket path with a colon/,
    ],
    ['no servers', 'p:\n  redis: true\n', {}, /has no servers/],
    ['an empty server list', 'p:\n  redis: true\n  servers: []\n', {}, /non-empty list/],
    [
      'duplicate names',
      'p:\n  redis: true\n  servers: ["h:1:1 a", "h:2:1 a"]\n',
      {},
      /two servers are named "a"/,
    ],
    [
      'duplicate addresses',
      'p:\n  redis: true\n  servers: ["h:1:1 a", "h:1:1 b"]\n',
      {},
      /same server \(h:1\)/,
    ],
  ];
  for (const [what, yaml, options, message] of errors) {
    it(`refuses ${what} with a clear message`, () => {
      let error: unknown;
      try {
        fromTwemproxy(yaml, options);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(TwemproxyConfigError);
      expect(error).toBeInstanceOf(RingConfigError);
      expect((error as Error).message).toMatch(message);
    });
  }
});
