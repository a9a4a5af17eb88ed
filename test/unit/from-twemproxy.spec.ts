import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runCli, USAGE, type CliIo } from '../../lib/cli.js';
import { RingConfigError } from '../../lib/core/errors.js';
import { HashRing } from '../../lib/core/hashing/hash-ring.js';
import { validateNodes } from '../../lib/core/config/ring-config.js';
import { resolveRingDictOptions } from '../../lib/core/config/ring-dict-options.js';
import { formatTwemproxyImport } from '../../lib/twemproxy/format-import.js';
import { fromTwemproxy } from '../../lib/twemproxy/from-twemproxy.js';
import { parseTwemproxyServer } from '../../lib/twemproxy/servers.js';
import { TwemproxyConfigError } from '../../lib/twemproxy/twemproxy-config-error.js';

/** The example from twemproxy's README, slightly extended. */
const SAMPLE = `
alpha:
  listen: 127.0.0.1:22121
  hash: fnv1a_64
  hash_tag: "{}"
  distribution: ketama
  auto_eject_hosts: true
  redis: true
  timeout: 400
  server_retry_timeout: 2000
  server_failure_limit: 1
  servers:
   - 127.0.0.1:6380:1 server1
   - 127.0.0.1:6381:1 server2
   - 127.0.0.1:6382:2 server3

beta:
  listen: 127.0.0.1:22122
  redis: true
  servers:
   - 10.0.0.1:6379:29
   - 10.0.0.2:6379:30
   - cache.internal:11211:61
`;

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
    const { group } = fromTwemproxy(`
p:
  listen: 0.0.0.0:22121
  redis: true
  redis_auth: s3cr3t:"x'
  redis_db: 3
  servers:
   - 10.0.0.1:6379:1 a
   - /tmp/r.sock:1 b
`);
    expect(group.nodes).toEqual({
      a: {
        capacity: 1,
        connection: { host: '10.0.0.1', port: 6379, password: 's3cr3t:"x\'', db: 3 },
      },
      b: { capacity: 1, connection: { path: '/tmp/r.sock', password: 's3cr3t:"x\'', db: 3 } },
    });
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
    [
      'a bad timeout',
      'p:\n  redis: true\n  timeout: 1s\n  servers: ["h:1:1"]\n',
      {},
      /timeout: expected a whole number/,
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

describe('formatTwemproxyImport', () => {
  it('prints JSON that parses back to the group', () => {
    const result = fromTwemproxy(SAMPLE, { pool: 'alpha' });
    expect(JSON.parse(formatTwemproxyImport(result, 'json'))).toEqual(result.group);
  });

  it('prints a TypeScript module with the warnings as comments', () => {
    const result = fromTwemproxy(SAMPLE, { pool: 'beta' });
    const ts = formatTwemproxyImport(result, 'ts');
    expect(ts).toContain("import type { RingDictOptions } from 'nestjs-ring-redis';");
    expect(ts).toContain('export const beta = {');
    expect(ts).toContain(
      [
        "    '10.0.0.1:6379': {",
        '      capacity: 29,',
        "      connection: 'redis://10.0.0.1:6379',",
        '    },',
      ].join('\n'),
    );
    expect(ts).toContain("  distribution: 'ketama',");
    expect(ts).toContain("  hashFunction: 'fnv1a_64',");
    expect(ts).toContain('} satisfies RingDictOptions;');
    expect(ts).toMatch(/^\/\/ - auto_eject_hosts: /m);
    expect(ts).toContain('groupOptions: { beta: options }');
  });

  it('escapes strings and names the constant after the pool', () => {
    const result = fromTwemproxy(`my-pool.v2:
  redis: true
  redis_auth: "it's \\\\ secret"
  servers: ["h:1:1 node'1"]
`);
    const ts = formatTwemproxyImport(result, 'ts');
    expect(ts).toContain('export const myPoolV2 = {');
    expect(ts).toContain("'node\\'1': {");
    expect(ts).toContain("password: 'it\\'s \\\\ secret',");
    const numeric = formatTwemproxyImport(
      fromTwemproxy('1:\n  redis: true\n  servers: ["h:1:1"]\n'),
      'ts',
    );
    expect(numeric).toContain('export const pool_1 = {');
    // Names a module cannot bind: a keyword, and the two strict mode refuses.
    for (const pool of ['class', 'eval', 'arguments']) {
      const ts = formatTwemproxyImport(
        fromTwemproxy(`${pool}:\n  redis: true\n  servers: ["h:1:1"]\n`),
        'ts',
      );
      expect(ts).toContain(`export const ${pool}Pool = {`);
    }
  });
});

describe('nestjs-ring-redis from-twemproxy (CLI)', () => {
  function run(argv: string[], files: Record<string, string> = {}) {
    let stdout = '';
    let stderr = '';
    const io: CliIo = {
      stdout: (text) => (stdout += text),
      stderr: (text) => (stderr += text),
      readFile: (path) => {
        if (!Object.hasOwn(files, path)) {
          throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
        }
        return files[path];
      },
    };
    const code = runCli(argv, io);
    return { code, stdout, stderr };
  }

  it('exits quietly when its reader leaves early (| head -1)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ring-cli-'));
    try {
      const servers = Array.from(
        { length: 20_000 },
        (_, i) => `   - 10.0.${i >> 8}.${i & 255}:6379:1`,
      );
      const file = join(dir, 'big.yml');
      await writeFile(
        file,
        `p:\n  redis: true\n  timeout: 400\n  servers:\n${servers.join('\n')}\n`,
      );
      const cli = fileURLToPath(new URL('../../.run/lib/cli.js', import.meta.url));
      const child = spawn(process.execPath, [cli, 'from-twemproxy', file], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      // The reader takes one chunk and leaves, as `head -1` does.
      child.stdout.once('data', () => child.stdout.destroy());
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect(stderr).not.toMatch(/EPIPE|Error/);
      expect(code).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 20_000);

  it('prints usage and exits 2 with no arguments; --help exits 0', () => {
    expect(run([])).toEqual({ code: 2, stdout: '', stderr: USAGE });
    const help = run(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toBe(USAGE);
  });

  it('prints the group as JSON, warnings on stderr', () => {
    const { code, stdout, stderr } = run(['from-twemproxy', 'nc.yml', '--pool', 'alpha'], {
      'nc.yml': SAMPLE,
    });
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual(fromTwemproxy(SAMPLE, { pool: 'alpha' }).group);
    expect(stderr).toMatch(/^warning: listen: /m);
    expect(stderr.trim().split('\n')).toHaveLength(4);
  });

  it('prints TypeScript with --ts', () => {
    const { code, stdout } = run(['from-twemproxy', '--ts', 'nc.yml', '--pool=beta'], {
      'nc.yml': SAMPLE,
    });
    expect(code).toBe(0);
    expect(stdout).toContain('export const beta = {');
  });

  it('exits 2 with a clear message on a missing file, bad YAML, or an unknown pool', () => {
    const missing = run(['from-twemproxy', 'nope.yml']);
    expect(missing).toMatchObject({ code: 2, stdout: '' });
    expect(missing.stderr).toBe('nestjs-ring-redis: cannot read nope.yml: no such file\n');

    const bad = run(['from-twemproxy', 'bad.yml'], { 'bad.yml': 'a: [\n' });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^nestjs-ring-redis: bad\.yml: invalid YAML/);

    const pool = run(['from-twemproxy', 'nc.yml', '--pool', 'zeta'], { 'nc.yml': SAMPLE });
    expect(pool.code).toBe(2);
    expect(pool.stderr).toMatch(/unknown pool "zeta"; the config defines: alpha, beta/);

    const ambiguous = run(['from-twemproxy', 'nc.yml'], { 'nc.yml': SAMPLE });
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.stderr).toMatch(/--pool NAME/);
  });

  it('exits 2 on bad usage', () => {
    for (const argv of [
      ['frobnicate'],
      ['from-twemproxy'],
      ['from-twemproxy', 'a.yml', 'b.yml'],
      ['from-twemproxy', 'a.yml', '--frob'],
      ['from-twemproxy', 'a.yml', '--pool'],
    ]) {
      const result = run(argv, { 'a.yml': SAMPLE });
      expect(result.code, argv.join(' ')).toBe(2);
      expect(result.stdout).toBe('');
      expect(result.stderr).toContain('Usage:');
    }
  });
});
