import 'reflect-metadata';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { NestFactory } from '@nestjs/core';
import type { INestApplication } from '@nestjs/common';
import { startRedisServers, type RedisFleet } from '../test/helpers/redis-servers.js';
import { AppModule } from './app.module.js';

/**
 * `npm run sample`. Without RING_REDIS_NODES, starts three local redis-server processes on
 * free ports and stops them on Ctrl-C; with it, uses those nodes and starts nothing.
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
  try {
    const app = await NestFactory.create(AppModule.register(fleet), {
      logger: ['log', 'warn', 'error'],
    });
    await app.listen(port, '127.0.0.1');
    const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    const stop = async () => {
      await app.close();
      await fleet?.stop();
    };
    return { app, fleet, url, stop };
  } catch (error) {
    await fleet?.stop();
    throw error;
  }
}

async function main(): Promise<void> {
  const port = Number(process.env.PORT ?? 3000);
  let sample: Awaited<ReturnType<typeof startSample>>;
  try {
    sample = await startSample(port);
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    if (e.code === 'REDIS_SERVER_NOT_FOUND' || e.code === 'EADDRINUSE') {
      console.error(`\n${e.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const { url, fleet, stop } = sample;
  console.log(`
ring-redis sample listening on ${url}
nodes: ${process.env.RING_REDIS_NODES}${fleet ? '  (started here; stopped on Ctrl-C)' : ''}

Try:
  curl ${url}/weather/paris          # slow the first time, a hit after
  curl ${url}/ring/nodes
  curl ${url}/ring/locate/user:42
  curl -X PUT ${url}/kv/greeting -H 'content-type: application/json' -d '{"value":"hello","ttl":60}'
  curl ${url}/kv/greeting
  curl -X DELETE ${url}/kv/greeting
  curl ${url}/health
${fleet ? `  npm run sample:chaos              # stops a node, watches failover, restarts it\n` : ''}`);
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping the app${fleet ? ' and its redis-server processes' : ''}…`);
    await stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

/**
 * True when node was started with this file. Compares real paths, not `file://${argv[1]}`,
 * which never matches when the path has a space (import.meta.url has `%20`) or goes through
 * a symlink: the sample would then exit silently without starting anything.
 */
function isMain(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  await main();
}
