/**
 * The second process of section 12's invalidation rows: a RingDict with a near cache that
 * holds one key and reads it until it sees the value the parent is about to write, then says
 * when (process.hrtime, the machine's monotonic clock, shared by every process).
 *
 * Messages from the parent: `{ nodes, prefix }` first, then `{ watch: key, expect: id }` per
 * sample, `{ stop: true }` at the end. Answers: `ready`, `armed` (the key is held in memory),
 * `{ seen: nanoseconds }`.
 */
import { RingDict, type RingNodesConfig } from '../lib/index.js';

type Message =
  { nodes: RingNodesConfig; prefix: string } | { watch: string; expect: number } | { stop: true };

let dict: RingDict<{ id: number }> | undefined;

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
  } else {
    void dict?.close().then(() => process.exit(0));
  }
});
