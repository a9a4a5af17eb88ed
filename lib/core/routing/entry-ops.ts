import type { Redis } from 'ioredis';
import { toWire } from '../keys/wire.js';

/** A command of the ring on one entry (or on a node's batch of entries). */
export type NodeOp<T, E = string> = (client: Redis, entries: E) => Promise<T>;
export type EntryOp<T> = NodeOp<T>;

// The everyday commands, made once: a request allocates no closure for them.
export const GET: EntryOp<string | null> = (client, entry) => client.get(toWire(entry));
export const GET_BUFFER: EntryOp<Buffer | null> = (client, entry) =>
  client.getBuffer(toWire(entry));

/**
 * The ops that read an entry's value, and whether as bytes: GET, GET_BUFFER, and the near
 * cache's GETs (which store the reply), so that what treats a GET apart — the warm-up's
 * lookup on a moved key's former owner — treats those alike (it missed every moved key with
 * a near cache: 96 of 300 after new capacities).
 */
const reads = new WeakMap<EntryOp<unknown>, boolean>([
  [GET, false],
  [GET_BUFFER, true],
]);

/** `op` reads an entry's value (`binary`: as bytes), as GET does. */
export function readsLikeGet(op: EntryOp<unknown>, binary: boolean): void {
  reads.set(op, binary);
}

/** Whether `op` reads an entry's value as bytes (true) or text (false); undefined for another op. */
export function getKind(op: EntryOp<unknown>): boolean | undefined {
  return reads.get(op);
}

export const DEL: EntryOp<number> = (client, entry) => client.del(toWire(entry));
export const EXISTS: EntryOp<number> = (client, entry) => client.exists(toWire(entry));

// Reply mappers, made once too.
export const orUndefined = <T>(reply: T | null): T | undefined => reply ?? undefined;
export const isPositive = (count: number): boolean => count > 0;
export const nothing = (): void => undefined;
export const asIs = <T>(reply: T): T => reply;

/** What SET answers without NX/XX/GET. */
export type SetReply = 'OK';

/** `SET entry payload [PX ms]`: one atomic write, the TTL in seconds. */
export function setOp(payload: string | Buffer, ttl: number | undefined): EntryOp<SetReply> {
  if (ttl === undefined) return (client, entry) => client.set(toWire(entry), payload);
  const px = pxOf(ttl);
  return (client, entry) => client.set(toWire(entry), payload, 'PX', px);
}

/**
 * Deletes the entry only while it holds ARGV[1]. A script, so that nothing can take the key
 * between the compare and the delete: Redis 7 has no command for it.
 */
const DELETE_IF_HOLDS = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/** `DELETE_IF_HOLDS` on the entry: 1 when it was deleted, 0 when it held something else. */
export function deleteIfHoldsOp(value: string): EntryOp<number> {
  return (client, entry) =>
    client.eval(DELETE_IF_HOLDS, 1, toWire(entry), value) as Promise<number>;
}

/** A TTL in seconds as SET's PX: whole milliseconds, at least 1. */
export function pxOf(ttl: number): number {
  return Math.max(1, Math.round(ttl * 1000));
}

/**
 * Commands that visitRedis may send without a hint for hinted handoff; any other command
 * is assumed to change the entry.
 */
export const READ_ONLY_COMMANDS: ReadonlySet<string> = new Set([
  'GET',
  'MGET',
  'GETRANGE',
  'STRLEN',
  'EXISTS',
  'TTL',
  'PTTL',
  'TYPE',
  'DUMP',
  'HGET',
  'HGETALL',
  'HMGET',
  'HEXISTS',
  'HLEN',
  'HKEYS',
  'HVALS',
  'LRANGE',
  'LLEN',
  'LINDEX',
  'SMEMBERS',
  'SISMEMBER',
  'SCARD',
  'ZRANGE',
  'ZSCORE',
  'ZCARD',
  'ZRANK',
  'ZCOUNT',
  'OBJECT',
]);
