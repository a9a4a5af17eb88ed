import { readFileSync } from 'node:fs';
import { Test } from '@nestjs/testing';
import { TerminusModule } from '@nestjs/terminus';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RingRedisHealthIndicator } from '../../lib/health/index.js';
import {
  parseRingNodes,
  RingConfigError,
  RingDict,
  RingRedisModule,
  type RingNodesConfig,
} from '../../lib/index.js';
import { redisCommand } from '../helpers/redis-command.js';
import { freePort, RedisServer } from '../helpers/redis-servers.js';
import {
  makeTestCertificates,
  tlsServerArgs,
  type TestCertificates,
} from '../helpers/tls-certs.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { until } from '../helpers/wait.js';

/**
 * TLS: two redis-servers with a TLS port each, their certificate signed by a CA made for the
 * run (openssl, in a temporary directory). The ring talks to them with the CA given as ioredis
 * options or named by a `rediss://` URL (`?ca=file`), and refuses a server it cannot verify.
 */

let certs: TestCertificates;
const servers: { server: RedisServer; tlsPort: number }[] = [];
const dicts: RingDict<unknown, unknown>[] = [];

beforeAll(async () => {
  certs = await makeTestCertificates();
  for (let i = 0; i < 2; i++) {
    const tlsPort = await freePort();
    const server = await RedisServer.start({
      name: `tls${i}`,
      extraArgs: tlsServerArgs(certs, tlsPort),
    });
    servers.push({ server, tlsPort });
  }
}, 30_000);

afterEach(async () => {
  await Promise.all(dicts.splice(0).map((dict) => dict.close()));
  for (const { server } of servers) await redisCommand(server.port, 'FLUSHALL');
});

afterAll(async () => {
  await Promise.all(servers.map(({ server }) => server.stop()));
  await certs?.remove();
});

function dict(nodes: RingNodesConfig): RingDict<unknown, unknown> {
  const made = new RingDict<unknown, unknown>({ nodes, heartbeatInterval: 100, retryRatio: 0 });
  dicts.push(made);
  return made;
}

/** The keys the servers hold, read over their plain ports. */
async function storedCount(): Promise<number[]> {
  return Promise.all(
    servers.map(async ({ server }) => Number(await redisCommand(server.port, 'DBSIZE'))),
  );
}

async function exercise(ring: RingDict<unknown, unknown>): Promise<void> {
  for (let i = 0; i < 40; i++) await ring.set(`k${i}`, { i });
  for (let i = 0; i < 40; i++) expect(await ring.get(`k${i}`)).toEqual({ i });
  expect(ring.nodeStates().every((state) => state.alive)).toBe(true);
  // Both servers got their share, through their TLS ports.
  for (const count of await storedCount()) expect(count).toBeGreaterThan(5);
}

describe('TLS with a private CA', () => {
  it('ioredis options: tls: { ca }', async () => {
    const ca = readFileSync(certs.caFile);
    await exercise(
      dict({
        a: { connection: { host: '127.0.0.1', port: servers[0].tlsPort, tls: { ca } } },
        b: { connection: { host: 'localhost', port: servers[1].tlsPort, tls: { ca } } },
      }),
    );
  });

  it('a rediss:// URL naming the CA file: ?ca=', async () => {
    await exercise(
      dict({
        a: `rediss://127.0.0.1:${servers[0].tlsPort}?ca=${encodeURIComponent(certs.caFile)}`,
        b: `rediss://localhost:${servers[1].tlsPort}/0?ca=${certs.caFile}`,
      }),
    );
  });

  it('the same through parseRingNodes, as an environment variable gives it', async () => {
    const spec = servers
      .map(({ tlsPort }, i) => `n${i}=rediss://127.0.0.1:${tlsPort}?ca=${certs.caFile}`)
      .join(',');
    await exercise(dict(parseRingNodes(spec)));
  });

  // A TLS socket counts only the bytes it decrypted: with the greeting's first reply past
  // commandTimeout, the revival's budget never doubled and the node stayed out for good.
  it('a node ejected over a slow TLS link comes back', { timeout: 20_000 }, async () => {
    const link = await TcpProxy.start(servers[0].tlsPort);
    try {
      const ca = readFileSync(certs.caFile);
      const ring = new RingDict<unknown, unknown>({
        nodes: {
          a: { connection: { host: '127.0.0.1', port: link.port, tls: { ca } } },
          b: { connection: { host: '127.0.0.1', port: servers[1].tlsPort, tls: { ca } } },
        },
        commandTimeout: 200,
        heartbeatInterval: 50,
        retryRatio: 0,
      });
      dicts.push(ring);
      await ring.connect();
      const key = Array.from({ length: 100 }, (_, i) => `k${i}`).find(
        (k) => ring.totalHash.locate(ring.getEntry(k)) === 'a',
      )!;
      link.cut();
      await ring.get(key);
      await until(() => !ring.nodeStates()[0].alive, 3000);
      // 60 ms each way: a request (120 ms) fits in commandTimeout, a handshake and greeting not.
      link.heal();
      link.delay(60);
      await until(() => ring.nodeStates()[0].alive, 10_000);
      expect(await ring.set(key, 1)).toBeUndefined();
    } finally {
      await link.close();
    }
  });

  it('refuses a server it cannot verify: without the CA the node is ejected, saying why', async () => {
    const ring = dict({ a: `rediss://127.0.0.1:${servers[0].tlsPort}` });
    await expect(ring.set('k', 1)).rejects.toThrow();
    await until(() => !ring.nodeStates()[0].alive);
    expect(ring.nodeStates()[0].lastError).toMatch(/self[- ]signed certificate/i);
  });

  it('refuses ?ca= on a plain redis:// URL, and a CA file it cannot read, naming the node', () => {
    expect(
      () =>
        new RingDict({ nodes: { a: `redis://127.0.0.1:1?ca=${certs.caFile}` }, lazyConnect: true }),
    ).toThrow(
      /^nodes, node "a".connection: the URL's option "ca" needs a rediss:\/\/ URL \(TLS\)$/,
    );
    const make = () =>
      new RingDict({
        name: 'secure',
        nodes: { a: 'rediss://127.0.0.1:1?ca=/nonexistent/ca.pem' },
        lazyConnect: true,
      });
    expect(make).toThrow(RingConfigError);
    expect(make).toThrow(
      'group "secure", node "a".connection: cannot read the CA file "/nonexistent/ca.pem" named by the URL\'s ca option (ENOENT)',
    );
  });

  it("the health check's PINGs use the CA too", async () => {
    const ref = await Test.createTestingModule({
      imports: [
        TerminusModule,
        RingRedisModule.forRoot({
          groups: {
            default: {
              a: `rediss://127.0.0.1:${servers[0].tlsPort}?ca=${certs.caFile}`,
              b: `rediss://127.0.0.1:${servers[1].tlsPort}`,
            },
          },
        }),
      ],
      providers: [RingRedisHealthIndicator],
    }).compile();
    await ref.init();
    try {
      const result = await ref.get(RingRedisHealthIndicator).isHealthy('tls', { ping: true });
      const { nodes } = result.tls.groups.default;
      expect(nodes.a.ping).toEqual({ ok: true, ms: expect.any(Number) });
      expect(nodes.b.ping).toEqual({ ok: false, error: expect.stringMatching(/self[- ]signed/i) });
    } finally {
      await ref.close();
    }
  });
});
