/**
 * Section 12's invalidation rows: how long a write takes to be visible in another process that
 * holds the key in its near cache (a real child process, near-watcher.ts), written here with
 * `RingDict.set` and with `redis-cli SET`; and, for scale, a PUBLISH heard by a subscriber in
 * that process — the same trip through Redis without the near cache. The three take turns,
 * sample by sample.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { RingDict, type RingNodesConfig } from '../lib/index.js';
import type { RedisFleet } from '../test/helpers/redis-fleet.js';
import { track } from './cleanup.js';
import { sig, verdict, type Row } from './report.js';

/** A JSON object; each write sets its `id`. */
type Value = Record<string, unknown> & { id?: number };

/** The second process: see near-watcher.ts. */
class Watcher {
  private readonly child: ChildProcess;
  private readonly inbox: unknown[] = [];
  private waiting?: (message: unknown) => void;
  readonly stop: () => Promise<void>;

  constructor() {
    this.child = fork(fileURLToPath(new URL('./near-watcher.js', import.meta.url)), [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('message', (message) => {
      const waiting = this.waiting;
      this.waiting = undefined;
      if (waiting) waiting(message);
      else this.inbox.push(message);
    });
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.stop = track(async () => {
      if (this.child.exitCode === null) this.child.send({ stop: true });
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 2_000);
      await exited;
      clearTimeout(timer);
    });
  }

  send(message: object): void {
    this.child.send(message);
  }

  next(): Promise<unknown> {
    if (this.inbox.length > 0) return Promise.resolve(this.inbox.shift());
    return new Promise((resolve) => (this.waiting = resolve));
  }
}

/** A redis-cli reading commands from its stdin, one line at a time. */
function redisCli(port: number): { send(line: string): void; stop(): Promise<void> } {
  const cli = spawn('redis-cli', ['-p', String(port)], { stdio: ['pipe', 'ignore', 'inherit'] });
  const exited = new Promise<void>((resolve) => cli.once('exit', () => resolve()));
  return {
    send: (line) => cli.stdin.write(`${line}\n`),
    stop: track(async () => {
      cli.stdin.end();
      const timer = setTimeout(() => cli.kill('SIGKILL'), 2_000);
      await exited;
      clearTimeout(timer);
    }),
  };
}

export async function invalidationRows(
  nodes: RingNodesConfig,
  fleet: RedisFleet,
  base: Value,
  samples: number,
): Promise<Row[]> {
  const prefix = 'near:seen:';
  const writer = new RingDict<Value>({ nodes, prefix });
  const watcher = new Watcher();
  const key = 'k';
  const entry = writer.getEntry(key);
  const owner = fleet.servers[Number(writer.aliveHash.locate(entry)!.slice('node'.length))];
  const cli = redisCli(owner.port);
  const publisher = new Redis({ host: '127.0.0.1', port: owner.port });
  let id = 0;
  try {
    watcher.send({ nodes, prefix });
    if ((await watcher.next()) !== 'ready') throw new Error('the watcher did not start');
    watcher.send({ subscribe: 'near:seen', port: owner.port });
    if ((await watcher.next()) !== 'ready') throw new Error('the watcher did not subscribe');
    await writer.set(key, { ...base, id: id++ });
    const watch = (expect: number) => ({ watch: key, expect });
    const ways: Way[] = [
      { arm: watch, write: (value) => writer.set(key, value), ms: [] },
      { arm: watch, write: (value) => cli.send(`SET ${entry} '${JSON.stringify(value)}'`), ms: [] },
      {
        arm: (expect) => ({ listen: String(expect) }),
        write: (value) => publisher.publish('near:seen', String(value.id)),
        ms: [],
      },
    ];
    // In turns, each first every third sample: the three see the same phases of the machine.
    for (let i = 0; i < samples; i++) {
      for (let j = 0; j < ways.length; j++) {
        const way = ways[(i + j) % ways.length];
        way.ms.push(await once(watcher, way, { ...base, id: id++ }));
      }
    }
    const [bySet, byCli, published] = ways.map((way) => way.ms);
    return [
      seenRow('written with RingDict.set in this process', bySet),
      seenRow('written with redis-cli SET (from its stdin)', byCli),
      {
        item: 12,
        what: `(for scale) a PUBLISH from this process heard by a subscriber in the other (${samples} messages)`,
        ours: `p50 ${sig(quantile(published, 0.5))} ms, p99 ${sig(quantile(published, 0.99))} ms`,
        baseline: `max ${sig(quantile(published, 1))} ms`,
        ratio: '—',
        goal: 'not a goal',
        verdict: 'info',
      },
    ];
  } finally {
    publisher.disconnect();
    await cli.stop();
    await watcher.stop();
    await writer.close();
  }
}

/** One way to make a change seen by the watcher, and its samples (ms). */
interface Way {
  arm(id: number): object;
  write(value: Value): unknown;
  readonly ms: number[];
}

/** Arms the watcher for `value`, writes it, and answers how long until the watcher saw it. */
async function once(watcher: Watcher, way: Way, value: Value): Promise<number> {
  watcher.send(way.arm(value.id!));
  if ((await watcher.next()) !== 'armed') throw new Error('the watcher did not arm');
  const start = process.hrtime.bigint();
  void way.write(value);
  const { seen } = (await watcher.next()) as { seen: string };
  return Number(BigInt(seen) - start) / 1e6;
}

/** The `q` quantile of `ms` (1: the largest). */
function quantile(ms: readonly number[], q: number): number {
  const sorted = [...ms].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function seenRow(how: string, ms: number[]): Row {
  const p50 = quantile(ms, 0.5);
  const p99 = quantile(ms, 0.99);
  return {
    item: 12,
    what: `a write visible in another process's near cache, ${how} (${ms.length} writes)`,
    ours: `p50 ${sig(p50)} ms, p99 ${sig(p99)} ms`,
    baseline: `max ${sig(quantile(ms, 1))} ms`,
    ratio: '—',
    goal: 'p50 ≤ 1 ms, p99 ≤ 5 ms',
    verdict: verdict(p50 <= 1 && p99 <= 5),
  };
}
