import type { TwemproxyGroupConfig } from './import-result.js';
import { readKeyPlacement } from './key-placement.js';
import { PoolOptions } from './pool-options.js';
import { warnProxyOnlyOptions } from './proxy-only-options.js';
import { readServers, type ServerCredentials } from './servers.js';
import { TwemproxyConfigError } from './twemproxy-config-error.js';

/**
 * One nutcracker pool as a RingDict group that places every key where the pool does, and the
 * warnings for what does not carry over. Options are read (and refused) in a fixed order, so
 * a file with several mistakes always reports the same one first.
 */
export function poolToGroup(
  pool: string,
  body: Record<string, unknown>,
): { group: TwemproxyGroupConfig; warnings: string[] } {
  const options = new PoolOptions(pool, body);
  // Redis only: a memcached pool cannot be served by a Redis client.
  if (!options.has('redis') || !options.bool('redis')) {
    throw new TwemproxyConfigError(
      `pool "${pool}" is a memcached pool (it lacks "redis: true"); only Redis pools can be imported`,
    );
  }
  const { hashFunction, hashTag } = readKeyPlacement(options);
  const commandTimeout = readTimeout(options);
  const credentials = readCredentials(options);
  warnProxyOnlyOptions(options);
  const nodes = readServers(options, credentials);

  const group: TwemproxyGroupConfig = { nodes, distribution: 'ketama', hashFunction };
  if (hashTag !== undefined) group.hashTag = hashTag;
  if (commandTimeout !== undefined) group.commandTimeout = commandTimeout;
  return { group, warnings: options.warnings };
}

/** twemproxy's `timeout` (ms) as `commandTimeout`, when it sets one. */
function readTimeout(options: PoolOptions): number | undefined {
  const timeout = options.has('timeout') ? options.digits('timeout') : 0;
  if (timeout > 0) return timeout;
  // nutcracker waits for ever when `timeout` is 0 or absent (its default).
  options.warn(
    'timeout',
    `${options.has('timeout') ? '0' : 'absent'} (nutcracker waits for ever) cannot be expressed (commandTimeout must be > 0); the default 500 ms applies`,
  );
  return undefined;
}

/** `redis_auth` and `redis_db`, left out when they say what Redis assumes anyway. */
function readCredentials(options: PoolOptions): ServerCredentials {
  const credentials: ServerCredentials = {};
  if (options.has('redis_auth')) {
    const password = options.string('redis_auth');
    if (password !== '') credentials.password = password;
  }
  if (options.has('redis_db')) {
    const db = options.digits('redis_db');
    if (db !== 0 && credentials.password !== undefined) {
      // nutcracker 0.5 sends its SELECT before its AUTH, which the server refuses: such a
      // pool's keys are in database 0 (measured: 600 of 600 keys missed with db 3).
      options.warn(
        'redis_db',
        `${db} with redis_auth: nutcracker sends SELECT before AUTH, so it stays on database 0, where its keys are; the nodes use database 0 (set db: ${db} only with a nutcracker that selects it)`,
      );
    } else if (db !== 0) credentials.db = db;
  }
  return credentials;
}
