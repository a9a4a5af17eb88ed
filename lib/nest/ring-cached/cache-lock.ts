import type { RingDict } from '../../core/index.js';
import { uniqueId } from './unique-id.js';

/** Lock keys, inside the group's prefix: `__ring-cached__:lock:<n>:<key>`. */
export const LOCK_KEY_PREFIX = '__ring-cached__:lock:';

/** Candidates tried for a lock key on the entry's node (n equal nodes: none with odds e⁻⁶⁴). */
const CANDIDATES_PER_NODE = 64;

/**
 * A lock released this long (or a tenth of its ttl, if longer) before its expiry is certainly
 * still this process's: room for Redis counting expiry on its wall clock, which a step moves.
 */
const RELEASE_MARGIN_MS = 50;

/** A lock this process holds. */
export interface TakenLock {
  readonly taken: true;
  readonly lockKey: string;
  readonly token: string;
  /** Until then (performance.now()) it is certainly still this process's. */
  readonly safeUntil: number;
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
  // Counted from before the SET: the server's expiry is no earlier.
  const safeUntil = performance.now() + ttlMs - Math.max(RELEASE_MARGIN_MS, ttlMs / 10);
  let reply: unknown;
  try {
    reply = await dict.visitRedis('SET', lockKey, token, 'NX', 'PX', Math.ceil(ttlMs));
  } catch {
    return undefined;
  }
  if (reply === 'OK') return { taken: true, lockKey, token, safeUntil };
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
 * Frees a lock this process took, once its value is stored (or the run failed). Well before
 * its expiry it is still this process's: one DEL, written to the socket at once. Close to it,
 * another process may have taken it since: deleted only while it still holds this token (a
 * GET, then a DEL). Never throws: a lock left behind expires by itself.
 */
export async function releaseLock(
  dict: RingDict<unknown, unknown>,
  lock: TakenLock,
): Promise<void> {
  const { lockKey, token, safeUntil } = lock;
  try {
    if (performance.now() < safeUntil) await dict.delete(lockKey);
    else if ((await dict.visitRedis('GET', lockKey)) === token) await dict.delete(lockKey);
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
