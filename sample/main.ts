import { startSample } from './start-sample.js';

/**
 * `npm run sample`. Without RING_REDIS_NODES, starts three local redis-server processes on
 * free ports and stops them on Ctrl-C; with it, uses those nodes and starts nothing.
 */
async function main(): Promise<void> {
  const port = Number(process.env.PORT ?? 3000);
  let sample: Awaited<ReturnType<typeof startSample>>;
  try {
    sample = await startSample(port);
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE') {
      console.error(
        `\nPort ${port} of 127.0.0.1 is taken (${e.message}). Start the sample on another one: PORT=3001 npm run sample (PORT=0 picks a free one).\n`,
      );
      process.exit(1);
    }
    if (e.code === 'REDIS_SERVER_NOT_FOUND') {
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
  curl ${url}/metrics                # Prometheus scrape: ring_redis_* counters, latency, alive nodes
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

await main();
