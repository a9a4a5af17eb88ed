import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import type { INestApplication } from '@nestjs/common';
import { startRedisServers, type RedisFleet } from '../test/helpers/redis-fleet.js';
import { AppModule } from './app.module.js';
import { sampleMetrics } from './sample-metrics.js';

/**
 * Boots the sample app on `port` (0: a free one). Without RING_REDIS_NODES it first starts
 * three local redis-server processes, which `stop()` stops again; with it, it starts nothing.
 * The e2e tests call this; `main.ts` is the command-line entry.
 */
export async function startSample(port: number): Promise<{
  app: INestApplication;
  fleet?: RedisFleet;
  url: string;
  stop: () => Promise<void>;
}> {
  let fleet: RedisFleet | undefined;
  if (!process.env.RING_REDIS_NODES) {
    fleet = await startRedisServers(3);
    process.env.RING_REDIS_NODES = fleet.servers.map((s, i) => `node${i}=${s.url}`).join(',');
  }
  let app: INestApplication | undefined;
  const stop = async () => {
    // The app first: stopping the servers under a running app would log every node ejected
    // and "no node is alive" before the reason we stop.
    await app?.close();
    await fleet?.stop();
  };
  try {
    // Before the rings are built, or they would record nothing.
    sampleMetrics();
    app = await NestFactory.create(AppModule.register(fleet), {
      logger: ['log', 'warn', 'error'],
    });
    await app.listen(port, '127.0.0.1');
    const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    return { app, fleet, url, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
