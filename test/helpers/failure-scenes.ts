import type { RingDict, RingEvent } from '../../lib/index.js';
import { redisCommand } from './redis-command.js';
import type { RedisServer } from './redis-servers.js';
import type { DictDefaults, RingDictFixture } from './ring-dicts.js';
import { saw } from './ring-dicts.js';
import { until } from './wait.js';

/**
 * What the suites on failure paths (unavailable, ejection, scans, clear, close, handoff)
 * share: their dicts' timings and the ways they take a node out.
 */

/** A hung node is ejected after 300 ms; an ejected one is PINGed every 50 ms; no probing. */
export const FAILURE_TIMINGS = {
  heartbeatInterval: 50,
  commandTimeout: 300,
  retryRatio: 0,
} as const satisfies DictDefaults;
/** How long a test waits for something the heartbeat or a reconnect does by itself. */
export const SETTLE = 3_000;
export const TEST_TIMEOUT = { timeout: 10_000 };

/** Kills `node` (its data goes with it) and waits until the dict has ejected it once more. */
export async function killUntilEjected(
  fixture: RingDictFixture,
  events: readonly RingEvent[],
  node: string,
): Promise<void> {
  const before = saw(events, 'ejected', node);
  await fixture.serverOf(node).kill();
  await until(() => saw(events, 'ejected', node) === before + 1, SETTLE);
}

/**
 * Hangs `node` (it keeps its data) and reads `key`, which it owns: the read times out and
 * ejects it once more.
 */
export async function hangUntilEjected(
  fixture: RingDictFixture,
  dict: RingDict<string>,
  events: readonly RingEvent[],
  node: string,
  key: string,
): Promise<void> {
  const before = saw(events, 'ejected', node);
  fixture.serverOf(node).hang();
  await dict.get(key);
  await until(() => saw(events, 'ejected', node) === before + 1, SETTLE);
}

/** CLIENT LIST lines of the connections named `tag` on `server`. */
export async function clientsNamed(server: RedisServer, tag: string): Promise<string[]> {
  const list = await redisCommand(server.port, 'CLIENT', 'LIST');
  return list.split('\n').filter((line) => line.includes(` name=${tag} `));
}

/** Runs `act` with `server` hung (SIGSTOP), resumed afterwards whatever happens. */
export async function whileHung<T>(server: RedisServer, act: () => Promise<T>): Promise<T> {
  server.hang();
  try {
    return await act();
  } finally {
    server.resume();
  }
}
