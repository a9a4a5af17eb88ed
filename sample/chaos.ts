/**
 * `npm run sample:chaos`: shows failover live against a running `npm run sample` (which
 * started its own nodes). Stops node1, shows /health and /ring/nodes reporting it ejected
 * while /weather keeps answering, restarts it, shows the rediscovery.
 */
const base = process.env.SAMPLE_URL ?? `http://127.0.0.1:${process.env.PORT ?? 3000}`;
const victim = process.argv[2] ?? 'node1';

async function call(method: string, path: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(base + path, { method });
  return { status: response.status, body: await response.json() };
}

/** Terminus repeats its details under info/error: print the status and the details once. */
async function showHealth(title: string): Promise<void> {
  const { status, body } = await call('GET', '/health');
  const { details } = body as { details: unknown };
  show(`${title}: HTTP ${status}`, details);
}

function show(title: string, value: unknown): void {
  console.log(`\n== ${title}\n${JSON.stringify(value, null, 2)}`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function main(): Promise<void> {
  try {
    await call('GET', '/ring/nodes');
  } catch {
    console.error(`No sample answers at ${base}. Start it first: npm run sample`);
    process.exit(2);
  }
  show('nodes before', (await call('GET', '/ring/nodes')).body);
  for (const city of ['paris', 'tokyo', 'lima', 'oslo']) await call('GET', `/weather/${city}`);

  const killed = await call('POST', `/demo/nodes/${victim}/kill`);
  if (killed.status !== 201) {
    console.error(
      'This sample uses external nodes (RING_REDIS_NODES): stop one yourself to see failover.',
    );
    process.exit(2);
  }
  console.log(`\n>> killed ${victim} (SIGKILL)`);
  for (const city of ['paris', 'tokyo', 'lima', 'oslo']) {
    const started = performance.now();
    const { status, body } = await call('GET', `/weather/${city}`);
    const { hit, node } = body as { hit: boolean; node: string };
    console.log(
      `GET /weather/${city} → ${status} hit=${hit} node=${node} in ${Math.round(performance.now() - started)} ms`,
    );
  }
  await showHealth('health with one node down');
  show('nodes with one node down', (await call('GET', '/ring/nodes')).body);

  await call('POST', `/demo/nodes/${victim}/restart`);
  console.log(`\n>> restarted ${victim}; waiting for the heartbeat to rediscover it`);
  for (let i = 0; i < 50; i++) {
    const { body } = await call('GET', '/ring/nodes');
    if ((body as { alive: number; total: number }).alive === (body as { total: number }).total)
      break;
    await sleep(100);
  }
  show('nodes after rediscovery', (await call('GET', '/ring/nodes')).body);
  await showHealth('health after rediscovery');
}

await main();
