import type { HashFunctionName } from '../core/hashing/hash-functions.js';

/** Where a node's Redis is: what ioredis accepts, spelled as plainly as possible. */
export type TwemproxyConnection =
  | string
  | { host: string; port: number; password?: string; db?: number }
  | { path: string; password?: string; db?: number };

/** The RingDict options equivalent to one nutcracker pool (a `RingDictOptions` subset). */
export interface TwemproxyGroupConfig {
  /** Node name (twemproxy's server identity) → capacity (its weight) and connection. */
  nodes: Record<string, { capacity: number; connection: TwemproxyConnection }>;
  distribution: 'ketama';
  hashFunction: HashFunctionName;
  hashTag?: string;
  /** twemproxy's `timeout`, in milliseconds. */
  commandTimeout?: number;
}

export interface TwemproxyImport {
  /** The pool that was imported. */
  pool: string;
  group: TwemproxyGroupConfig;
  /** One line per twemproxy option or behaviour that has no exact equivalent here. */
  warnings: string[];
}
