import type { Redis } from 'ioredis';
import { CONTROL_PREFIX } from '../../lib/core/keys/control-keys.js';
import { redisCommand } from './redis-command.js';

/**
 * Counts a server's keys as DBSIZE would, leaving out the ring's own bookkeeping keys (what
 * vouches for a node's data, reports of nodes out, hints): the entries a test wrote.
 */
const COUNT_DATA_KEYS = `
local n, cursor = 0, '0'
repeat
  local reply = redis.call('SCAN', cursor, 'COUNT', 1000)
  cursor = reply[1]
  for _, key in ipairs(reply[2]) do
    if string.sub(key, 1, ${CONTROL_PREFIX.length}) ~= '${CONTROL_PREFIX}' then n = n + 1 end
  end
until cursor == '0'
return n
`;

/**
 * The entries on the server at `port` (see COUNT_DATA_KEYS). It walks the whole database in
 * one script, which blocks the server meanwhile: not for polling a big one (see
 * noDataKeys).
 */
export async function dataKeyCount(port: number): Promise<number> {
  return Number(await redisCommand(port, 'EVAL', COUNT_DATA_KEYS, '0'));
}

/** The ring's own keys on a node are a handful: past this, DBSIZE alone says there are entries. */
const FEW_CONTROL_KEYS = 64;

/** True when the server at `port` holds no entry; cheap to poll while it holds many. */
export async function noDataKeys(port: number): Promise<boolean> {
  if (Number(await redisCommand(port, 'DBSIZE')) > FEW_CONTROL_KEYS) return false;
  return (await dataKeyCount(port)) === 0;
}

/** The entries on the server of `client` (see COUNT_DATA_KEYS). */
export async function dataKeyCountOf(client: Redis): Promise<number> {
  return Number(await client.eval(COUNT_DATA_KEYS, 0));
}
