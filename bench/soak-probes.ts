/**
 * What the soak measures before and after the run to find leaks: heap, the handles keeping
 * the event loop alive, listeners, and the connections each server sees.
 */
import type { Redis } from 'ioredis';
import type { RingDict } from '../lib/index.js';
import { redisCommand } from '../test/helpers/redis-command.js';

/** Full collections with a turn of the event loop between them, for comparable heap figures. */
async function collect(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    globalThis.gc!();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Active resources keeping the loop alive, by type (timers, sockets, child processes…). */
export function activeResources(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const type of process.getActiveResourcesInfo()) {
    counts.set(type, (counts.get(type) ?? 0) + 1);
  }
  // Handles that are unref()ed (the dict's heartbeat) are not in that list; these are.
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  counts.set('(all handles)', handles.length);
  return counts;
}

/**
 * Listeners on each node's ioredis client and its socket. ioredis clients are not part of
 * RingDict's API, so this reaches into its private membership — the only way to see them.
 */
function clientListeners(dict: RingDict<unknown>): number {
  const { membership } = dict as unknown as { membership: { all(): Iterable<{ client: Redis }> } };
  let total = 0;
  for (const { client } of membership.all()) {
    for (const event of client.eventNames()) total += client.listenerCount(event);
    const stream = client.stream as NodeJS.EventEmitter | undefined;
    if (stream) for (const event of stream.eventNames()) total += stream.listenerCount(event);
  }
  return total;
}

export function processListeners(): number {
  return process.eventNames().reduce((sum, event) => sum + process.listenerCount(event), 0);
}

export interface Snapshot {
  heapMB: number;
  resources: Map<string, number>;
  clientListeners: number;
  processListeners: number;
}

export async function snapshot(dict: RingDict<unknown>): Promise<Snapshot> {
  await collect();
  return {
    heapMB: process.memoryUsage().heapUsed / 2 ** 20,
    resources: activeResources(),
    clientListeners: clientListeners(dict),
    processListeners: processListeners(),
  };
}

/** The lines of `CLIENT LIST` on a port: one per connection, this probe's own included. */
export async function clientList(port: number): Promise<string[]> {
  const reply = await redisCommand(port, 'CLIENT', 'LIST');
  return reply.split('\n').filter((line) => line.trim().length > 0);
}
