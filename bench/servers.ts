/**
 * Starting and stopping what the I/O benchmarks need — redis-server fleets, nutcracker and
 * clients — all on 127.0.0.1, all stopped by the section's `finally` or on SIGINT.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { startNutcracker, type Nutcracker } from '../test/helpers/nutcracker.js';
import { startRedisServers, type RedisFleet } from '../test/helpers/redis-fleet.js';
import type { RingNodesConfig } from '../lib/index.js';
import { track } from './cleanup.js';

export interface Started<T> {
  value: T;
  stop(): Promise<void>;
}

export async function redisFleet(count: number): Promise<Started<RedisFleet>> {
  const fleet = await startRedisServers(count);
  return { value: fleet, stop: track(() => fleet.stop()) };
}

/** nutcracker in front of the fleet: ketama, fnv1a_64, every server at weight 1. */
export async function nutcrackerFor(fleet: RedisFleet): Promise<Started<Nutcracker>> {
  const proxy = await startNutcracker({
    pool: 'bench',
    options: {
      hash: 'fnv1a_64',
      distribution: 'ketama',
      redis: true,
      preconnect: true,
      servers: fleet.servers.map((s) => `127.0.0.1:${s.port}:1`),
    },
  });
  return { value: proxy, stop: track(() => proxy.stop()) };
}

/** ioredis options nutcracker accepts: it rejects HELLO, CLIENT and INFO. */
export const THROUGH_NUTCRACKER: RedisOptions = {
  protocol: 2,
  disableClientInfo: true,
  enableReadyCheck: false,
};

/** An ioredis client, connected, and disconnected by stop(). */
export async function ioredisClient(
  port: number,
  options: RedisOptions = {},
): Promise<Started<Redis>> {
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, ...options });
  // Failed commands reject on their own; without a listener ioredis also logs every error.
  client.on('error', () => undefined);
  const stop = track(async () => {
    try {
      await client.quit();
    } catch {
      // Already gone.
    }
    client.disconnect();
  });
  await client.connect();
  return { value: client, stop };
}

/** The fleet as RingDict nodes `node0…`, capacity 1 each. */
export function ringNodes(fleet: RedisFleet): RingNodesConfig {
  const nodes: RingNodesConfig = {};
  fleet.servers.forEach((server, i) => {
    nodes[`node${i}`] = { capacity: 1, connection: server.url };
  });
  return nodes;
}
