/**
 * For scale, next to goal 6: what one caller waiting on each reply (1 in flight) costs on this
 * machine below the ring, with no ring at all. It backs bench/README.md's account of why the
 * `@RingCached` row over 3 nodes is level with cache-manager over 1 at 1 in flight:
 * - spreading one caller's GETs over three redis-servers, which share the client's cores,
 *   one call each in turn or 24 calls each in turn (what costs: the servers, or the switching
 *   between them);
 * - cache-manager's client library (`@redis/client`) against ioredis, the ring's;
 * - a bare RESP GET over `node:net`, no client library: the floor a hand-written client
 *   could reach. Only this benchmark uses it; the ring does not ship one.
 */
import { connect, type Socket } from 'node:net';
import { createClient } from '@redis/client';
import { interleavedRounds, median, medianLoad, pairedRatio, type BenchConfig } from './measure.js';
import {
  LOAD_DETAIL_HEADER,
  loadDetail,
  rate,
  textTable,
  times,
  type Row,
  type SectionResult,
} from './report.js';
import { ioredisClient, redisFleet, type Started } from './servers.js';
import type { Redis } from 'ioredis';
import { track } from './cleanup.js';

const KEYS = 1000;
const VALUE = 'v'.repeat(100);

/**
 * GET and nothing else, over one socket: replies come back in order, so a queue of
 * resolvers is the whole client. Handles replies split across reads; nothing more.
 */
class BareGet {
  private readonly waiting: ((reply: string | null) => void)[] = [];
  private pending: Buffer | undefined;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.read(chunk));
  }

  static open(port: number): Promise<BareGet> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port, noDelay: true }, () =>
        resolve(new BareGet(socket)),
      );
      socket.once('error', reject);
    });
  }

  get(key: string): Promise<string | null> {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.socket.write(`*2\r\n$3\r\nGET\r\n$${Buffer.byteLength(key)}\r\n${key}\r\n`);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private read(chunk: Buffer): void {
    const data = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    let at = 0;
    while (at < data.length) {
      const eol = data.indexOf('\r\n', at);
      if (eol < 0) break;
      if (data[at] !== 0x24 /* $ */) throw new Error(`unexpected reply ${data.toString()}`);
      const length = Number(data.toString('latin1', at + 1, eol));
      if (length < 0) {
        this.waiting.shift()!(null);
        at = eol + 2;
        continue;
      }
      if (eol + 2 + length + 2 > data.length) break;
      this.waiting.shift()!(data.toString('utf8', eol + 2, eol + 2 + length));
      at = eol + 2 + length + 2;
    }
    this.pending = at < data.length ? data.subarray(at) : undefined;
  }
}

export async function benchClientFloor(config: BenchConfig): Promise<SectionResult> {
  const warmupMs = config.quick ? 150 : 300;
  const roundMs = config.quick ? 150 : 300;
  const rounds = 11;
  const fleet = await redisFleet(3);
  const started: Started<unknown>[] = [];
  try {
    const servers = fleet.value.servers;
    const ioredis: Redis[] = [];
    for (const server of servers) {
      const client = await ioredisClient(server.port);
      started.push(client);
      ioredis.push(client.value);
    }
    const keys = Array.from({ length: KEYS }, (_, i) => `floor:k${i}`);
    // One SET at a time: one huge command could skew the process's allocation profile (see
    // PIPELINE_CHUNK in lib/core/node/pipeline.ts on pipelines of 250).
    for (const client of ioredis) for (const key of keys) await client.set(key, VALUE);

    const redis = createClient({ url: servers[0].url });
    redis.on('error', () => undefined);
    await redis.connect();
    started.push({ value: redis, stop: track(async () => redis.destroy()) });
    const bare = await BareGet.open(servers[0].port);
    started.push({ value: bare, stop: track(async () => bare.close()) });

    const hit = (reply: string | null) => {
      if (reply !== VALUE) throw new Error('a timed GET missed');
    };
    let calls = 0;
    const contenders = [
      { name: 'ioredis, 1 server', op: (r: number) => ioredis[0].get(keys[r % KEYS]).then(hit) },
      {
        name: 'ioredis, 3 servers',
        op: (r: number) => ioredis[r % 3].get(keys[(r >>> 2) % KEYS]).then(hit),
      },
      {
        // The same three servers taking turns 24 calls at a time, not at every call: tells
        // the cost of three server processes from the cost of switching between them.
        name: 'ioredis, 3 servers, runs of 24',
        op: (r: number) => ioredis[Math.floor(calls++ / 24) % 3].get(keys[r % KEYS]).then(hit),
      },
      { name: '@redis/client, 1 server', op: (r: number) => redis.get(keys[r % KEYS]).then(hit) },
      { name: 'bare RESP GET, 1 server', op: (r: number) => bare.get(keys[r % KEYS]).then(hit) },
    ];
    const samples = await interleavedRounds(
      contenders.map((c) => c.op),
      1,
      rounds,
      roundMs,
      warmupMs,
    );
    console.log(
      textTable(
        LOAD_DETAIL_HEADER,
        contenders.map((c, i) => loadDetail(1, c.name, samples[i], medianLoad(samples[i]))),
      ),
    );
    const perSecond = samples.map((s) => s.map((x) => x.perSecond));
    const [one, three, threeInRuns, redisClient, bareGet] = perSecond;
    const baseline = `raw ioredis GET, 1 server: ${rate(median(one))}`;
    const row = (what: string, ours: number[]): Row => ({
      item: 6,
      what: `(for scale) ${what}, 1 in flight`,
      ours: rate(median(ours)),
      baseline,
      ratio: times(pairedRatio(ours, one)),
      goal: 'not a goal',
      verdict: 'info',
    });
    return {
      rows: [
        row('raw ioredis GET spread over 3 servers', three),
        row('raw ioredis GET over the same 3 servers, 24 calls in a row to each', threeInRuns),
        row('raw @redis/client GET (cache-manager’s client), 1 server', redisClient),
        row('bare RESP GET over node:net, no client library, 1 server', bareGet),
      ],
    };
  } finally {
    for (const s of started.reverse()) await s.stop();
    await fleet.stop();
  }
}
