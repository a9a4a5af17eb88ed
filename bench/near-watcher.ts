/**
 * The second process of section 12's invalidation rows: a RingDict with a near cache that
 * holds one key and reads it until it sees the value the parent is about to write, then says
 * when (process.hrtime, the machine's monotonic clock, shared by every process).
 *
 * For scale, the same for a message published on a channel it subscribes to: the path of an
 * invalidation (a process writes, Redis pushes to another) without the near cache.
 *
 * Messages from the parent: `{ nodes, prefix }` first, then `{ watch: key, expect: id }` per
 * sample; `{ subscribe: channel, port }` once, then `{ listen: message }` per sample; `{ stop:
 * true }` at the end. Answers: `ready`, `armed` (the key is held in memory, or the subscriber
 * waits), `{ seen: nanoseconds }`.
 */
import { Redis } from 'ioredis';
import { RingDict, type RingNodesConfig } from '../lib/index.js';

type Message =
  | { nodes: RingNodesConfig; prefix: string }
  | { watch: string; expect: number }
  | { subscribe: string; port: number }
  | { listen: string }
  | { stop: true };

let dict: RingDict<{ id: number }> | undefined;
let subscriber: Redis | undefined;
let heard: string | undefined;

function send(message: unknown): void {
  process.send!(message);
}

async function watch(key: string, expect: number): Promise<void> {
  const d = dict!;
  // Read into the near cache: the first read after the last write goes to Redis.
  for (let i = 0; i < 3; i++) await d.get(key);
  send('armed');
  for (;;) {
    const value = await d.get(key);
    if (value?.id === expect) break;
    // A turn of the loop per read: the time measured is the invalidation's, not the near
    // cache's own 1 ms bound on a loop that does not poll.
    await new Promise((resolve) => setImmediate(resolve));
  }
  send({ seen: process.hrtime.bigint().toString() });
}

async function subscribe(channel: string, port: number): Promise<void> {
  subscriber = new Redis({ host: '127.0.0.1', port });
  subscriber.on('message', (_channel: string, message: string) => (heard = message));
  await subscriber.subscribe(channel);
  send('ready');
}

/** Waits for `message` turning the loop as `watch` does, so both run on the same terms. */
async function listen(message: string): Promise<void> {
  send('armed');
  while (heard !== message) await new Promise((resolve) => setImmediate(resolve));
  send({ seen: process.hrtime.bigint().toString() });
}

process.on('message', (message: Message) => {
  if ('nodes' in message) {
    dict = new RingDict({ nodes: message.nodes, prefix: message.prefix, nearCache: {} });
    const up = () => dict!.nodeStates().every((state) => state.invalidation === 'up');
    const poll = setInterval(() => {
      if (!up()) return;
      clearInterval(poll);
      send('ready');
    }, 5);
  } else if ('watch' in message) {
    void watch(message.watch, message.expect);
  } else if ('subscribe' in message) {
    void subscribe(message.subscribe, message.port);
  } else if ('listen' in message) {
    void listen(message.listen);
  } else {
    subscriber?.disconnect();
    void dict?.close().then(() => process.exit(0));
  }
});
