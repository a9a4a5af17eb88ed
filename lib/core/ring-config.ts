import type { RedisOptions } from 'ioredis';
import { RingConfigError } from './errors.js';

/** One Redis server of the ring. */
export interface RingNodeConfig {
  /** Relative weight, > 0: a node's share of the keys is proportional to it. */
  capacity: number;
  /** ioredis options (host, port, db, username, password, tls, …) or a `redis://` URL. */
  connection: RedisOptions | string;
}

/** Node name → node. Keys are placed by node NAME, so an address can change without moving keys. */
export type RingNodesConfig = Record<string, RingNodeConfig>;

/** Group name → nodes, e.g. `{ test: {...}, sessions: {...} }`. */
export type RingGroupsConfig = Record<string, RingNodesConfig>;

/** Where a node's server is, for duplicate detection and messages. Never holds a credential. */
export interface NodeAddress {
  /** `host:port` or the unix socket path. */
  readonly label: string;
  /** `label` plus the database number: two nodes with the same identity are one server. */
  readonly identity: string;
  /** The password, if any, so messages can be scrubbed of it. */
  readonly secrets: readonly string[];
}

/** Parses a node's connection far enough to name its address without its credentials. */
export function nodeAddress(connection: RedisOptions | string, where: string): NodeAddress {
  if (typeof connection === 'string') {
    let url: URL;
    try {
      url = new URL(connection);
    } catch {
      throw new RingConfigError(`${where}.connection: not a valid redis:// URL`);
    }
    if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
      throw new RingConfigError(
        `${where}.connection: expected a redis:// or rediss:// URL, got ${url.protocol}//…`,
      );
    }
    const label = `${url.hostname || 'localhost'}:${url.port || 6379}`;
    const db = url.pathname.replace(/^\//, '') || url.searchParams.get('db') || '0';
    const secrets = [url.password, url.username]
      .map((s) => decodeURIComponent(s))
      .filter((s) => s.length > 0);
    return { label, identity: `${label}/${db}`, secrets };
  }
  if (connection === null || typeof connection !== 'object') {
    throw new RingConfigError(
      `${where}.connection: expected ioredis options or a redis:// URL, got ${connection === null ? 'null' : typeof connection}`,
    );
  }
  const label = connection.path ?? `${connection.host ?? 'localhost'}:${connection.port ?? 6379}`;
  const secrets = [connection.password].filter((s): s is string => !!s);
  return { label, identity: `${label}/${connection.db ?? 0}`, secrets };
}

/**
 * Checks a group's nodes: at least one, each with a finite capacity > 0 and a connection,
 * no two on the same server. `group` names the group in messages.
 */
export function validateNodes(nodes: unknown, group?: string): Map<string, NodeAddress> {
  const where = group === undefined ? 'nodes' : `group "${group}"`;
  if (nodes === null || typeof nodes !== 'object' || Array.isArray(nodes)) {
    throw new RingConfigError(
      `${where}: expected an object of node name → { capacity, connection }`,
    );
  }
  const entries = Object.entries(nodes as Record<string, unknown>);
  if (entries.length === 0) throw new RingConfigError(`${where}: no nodes configured`);
  if (entries.length > 0xffff) throw new RingConfigError(`${where}: at most 65535 nodes`);
  const seen = new Map<string, string>();
  const addresses = new Map<string, NodeAddress>();
  for (const [name, node] of entries) {
    const at = `${where}, node "${name}"`;
    if (name.length === 0) throw new RingConfigError(`${where}: a node has an empty name`);
    if (node === null || typeof node !== 'object') {
      throw new RingConfigError(`${at}: expected { capacity, connection }`);
    }
    const { capacity, connection } = node as Partial<RingNodeConfig>;
    if (typeof capacity !== 'number' || !Number.isFinite(capacity) || capacity <= 0) {
      throw new RingConfigError(
        `${at}: capacity must be a finite number > 0, got ${JSON.stringify(capacity) ?? String(capacity)}`,
      );
    }
    if (connection === undefined || connection === null || connection === '') {
      throw new RingConfigError(`${at}: connection is missing`);
    }
    for (const key of Object.keys(node)) {
      if (key !== 'capacity' && key !== 'connection') {
        throw new RingConfigError(
          `${at}: unknown field "${key}" (a node has only capacity and connection)`,
        );
      }
    }
    const address = nodeAddress(connection, at);
    const other = seen.get(address.identity);
    if (other !== undefined) {
      throw new RingConfigError(
        `${at}: connection ${address.label} is the same server as node "${other}" (duplicate address)`,
      );
    }
    seen.set(address.identity, name);
    addresses.set(name, address);
  }
  return addresses;
}
