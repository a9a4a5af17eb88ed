import type { RingDict } from '../../core/index.js';
import { deleteIfHolds } from '../../core/read-through.js';
import { CACHE_KEY_SPACE } from './cache-key.js';
import { uniqueId } from './unique-id.js';

/** Lock keys, inside the group's prefix: `__ring-cached__:lock:<n>:<key>`. */
export const LOCK_KEY_PREFIX = `${CACHE_KEY_SPACE}lock:`;

/** Candidates tried for a lock key on the entry's node (n equal nodes: none with odds e⁻⁶⁴). */
const CANDIDATES_PER_NODE = 64;

/** A lock this process holds. */
export interface TakenLock {
  readonly taken: true;
  readonly lockKey: string;
  readonly token: string;
}

/** What trying to take a key's lock answered. */
export type LockAttempt =
  /** Taken: this process runs the method, other processes wait for its value. */
  | TakenLock
  /** Another process holds it. */
  | { readonly taken: false; readonly lockKey: string }
  /** The ring could not say (no node, or its onFail answer): run without the lock. */
  | undefined;

/**
 * The cross-process lock of a cached key: a key of its own, `SET NX PX ttl` with a token, on
 * the node that holds the key's entry (the first candidate name the alive ring places
 * there), so taking it costs the winner one round trip to that node, a node lost drops the
 * lock with the data, and a holder that dies frees the key when the lock expires.
 */
export async function acquireLock(
  dict: RingDict<unknown, unknown>,
  key: string,
  ttlMs: number,
): Promise<LockAttempt> {
  const lockKey = lockKeyOf(dict, key);
  if (lockKey === undefined) return undefined;
  const token = uniqueId();
  let reply: unknown;
  try {
    reply = await dict.visitRedis('SET', lockKey, token, 'NX', 'PX', Math.ceil(ttlMs));
  } catch {
    return undefined;
  }
  if (reply === 'OK') return { taken: true, lockKey, token };
  return reply === null ? { taken: false, lockKey } : undefined;
}

/** True while someone holds `lockKey` (false when the ring cannot say: stop waiting). */
export async function lockHeld(
  dict: RingDict<unknown, unknown>,
  lockKey: string,
): Promise<boolean> {
  try {
    return typeof (await dict.visitRedis('GET', lockKey)) === 'string';
  } catch {
    return false;
  }
}

/**
 * Frees a lock this process took, once its value is stored (or the run failed): deleted only
 * while it still holds this process's token, in one step on its node (one round trip). A
 * plain DEL would free another process's lock when this one expired during a long run, or
 * was lost with a restarted node, and the other took it since. Never throws: a lock left
 * behind expires by itself.
 */
export async function releaseLock(
  dict: RingDict<unknown, unknown>,
  lock: TakenLock,
): Promise<void> {
  try {
    await dict[deleteIfHolds](lock.lockKey, lock.token);
  } catch {
    // It expires by itself.
  }
}

/** The lock key of `key`: the first candidate that the alive ring places on the key's node. */
function lockKeyOf(dict: RingDict<unknown, unknown>, key: string): string | undefined {
  const ring = dict.aliveHash;
  const node = ring.locate(dict.getEntry(key));
  if (node === undefined) return undefined;
  const limit = CANDIDATES_PER_NODE * ring.size;
  for (let n = 0; n < limit; n++) {
    const lockKey = `${LOCK_KEY_PREFIX}${n}:${key}`;
    if (ring.locate(dict.getEntry(lockKey)) === node) return lockKey;
  }
  // No candidate lands there (a hash tag in the group's prefix, say): any one will do.
  return `${LOCK_KEY_PREFIX}0:${key}`;
}
