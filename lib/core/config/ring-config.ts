import { joinAddress } from './address.js';
import type { RedisOptions } from 'ioredis';
import { RingConfigError } from '../errors.js';
import { shown } from './option-checks.js';

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
  /** `host:port`, the unix socket path, or for a Sentinel node `sentinel group "name" (h:p, …)`. */
  readonly label: string;
  /**
   * `label` plus the database number: two nodes with the same identity are one server. A
   * Sentinel node has one identity per sentinel (`name@host:port/db`): a sentinel monitors one
   * master per name, so two nodes that share a sentinel and a name share a master.
   */
  readonly identity: string;
  readonly identities: readonly string[];
  /** The passwords, if any, so messages can be scrubbed of them. */
  readonly secrets: readonly string[];
  /** Sentinel nodes only: the master group's name (`connection.name`). */
  readonly sentinel?: string;
  /** Sentinel nodes only: the configured sentinels, `host:port`. */
  readonly sentinels?: readonly string[];
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
    // 'redis:/host:port' parses too, as a path with no host: a node that never connects.
    if (!/^rediss?:\/\//i.test(connection)) {
      throw new RingConfigError(
        `${where}.connection: expected ${url.protocol}// and then the host, got ${url.protocol}${connection.slice(url.protocol.length, url.protocol.length + 2)}…`,
      );
    }
    const label = `${url.hostname || 'localhost'}:${url.port || 6379}`;
    const db = url.pathname.replace(/^\//, '') || url.searchParams.get('db') || '0';
    const secrets = [url.password, url.username]
      .map((s) => decodeURIComponent(s))
      .filter((s) => s.length > 0);
    const identity = `${label}/${db}`;
    return { label, identity, identities: [identity], secrets };
  }
  if (connection === null || typeof connection !== 'object') {
    throw new RingConfigError(
      `${where}.connection: expected ioredis options or a redis:// URL, got ${connection === null ? 'null' : typeof connection}`,
    );
  }
  if (connection.keyPrefix !== undefined && connection.keyPrefix !== '') {
    // ioredis prefixes the keys of commands, not SCAN's MATCH pattern: keys(), size(),
    // clear() and the hinted handoff would find none of the dict's entries.
    throw new RingConfigError(
      `${where}.connection.keyPrefix: not supported by the ring (SCAN would miss every entry); use the dict's \`prefix\` option`,
    );
  }
  if (
    connection.host == null &&
    connection.port == null &&
    connection.path == null &&
    connection.sentinels == null
  ) {
    // ioredis would connect to localhost:6379, whatever was meant (a misspelt `host`?).
    throw new RingConfigError(
      `${where}.connection: names no server (no host, port, path or sentinels; ioredis would use localhost:6379)`,
    );
  }
  if (connection.sentinels !== undefined && connection.sentinels !== null) {
    return sentinelAddress(connection, where);
  }
  const port = connection.port;
  const portNumber = Number(port);
  if (
    port !== undefined &&
    port !== null &&
    !(Number.isInteger(portNumber) && portNumber >= 1 && portNumber <= 65535)
  ) {
    throw new RingConfigError(
      `${where}.connection.port: expected a port number from 1 to 65535, got ${shown(port)}`,
    );
  }
  const label = connection.path ?? `${connection.host ?? 'localhost'}:${connection.port ?? 6379}`;
  const secrets = [connection.password].filter((s): s is string => !!s);
  const identity = `${label}/${connection.db ?? 0}`;
  return { label, identity, identities: [identity], secrets };
}

/**
 * A Sentinel node: `{ sentinels: [{ host, port }, …], name, … }`. The ring connects through
 * the sentinels to whichever server is the group's master now; only the master serves a
 * ring node (a replica cannot take the ring's writes).
 */
function sentinelAddress(connection: RedisOptions, where: string): NodeAddress {
  const at = `${where}.connection`;
  const { sentinels, name, role } = connection;
  if (!Array.isArray(sentinels)) {
    throw new RingConfigError(
      `${at}.sentinels: expected an array of { host, port }, got ${typeof sentinels}`,
    );
  }
  if (sentinels.length === 0) {
    throw new RingConfigError(
      `${at}.sentinels is empty: a Sentinel node needs at least one sentinel { host, port }`,
    );
  }
  const endpoints: string[] = [];
  sentinels.forEach((sentinel: unknown, i) => {
    const { host, port } = (sentinel ?? {}) as { host?: unknown; port?: unknown };
    if (typeof host !== 'string' || host.length === 0) {
      throw new RingConfigError(`${at}.sentinels[${i}]: host is missing (expected { host, port })`);
    }
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw new RingConfigError(
        `${at}.sentinels[${i}]: port must be an integer in 1..65535, got ${describeValue(port)}`,
      );
    }
    const endpoint = joinAddress(host, port);
    if (!endpoints.includes(endpoint)) endpoints.push(endpoint);
  });
  if (typeof name !== 'string' || name.length === 0) {
    throw new RingConfigError(
      `${at}.name is missing: a Sentinel node needs the name of its master group (e.g. 'mymaster')`,
    );
  }
  if (role !== undefined && role !== 'master') {
    throw new RingConfigError(
      `${at}.role must be 'master' (the ring writes to every node), got ${describeValue(role)}`,
    );
  }
  const db = connection.db ?? 0;
  const secrets = [connection.password, connection.sentinelPassword].filter(
    (s): s is string => typeof s === 'string' && s.length > 0,
  );
  const identities = endpoints.map((endpoint) => `${name}@${endpoint}/${db}`);
  return {
    label: `sentinel group "${name}" (${endpoints.join(', ')})`,
    identity: `${name}@${[...endpoints].sort().join(',')}/${db}`,
    identities,
    secrets,
    sentinel: name,
    sentinels: endpoints,
  };
}

function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  return value === null ? 'null' : typeof value === 'object' ? typeof value : String(value);
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
    // Names become keys of plain objects, where this one sets the prototype instead.
    if (name === '__proto__') throw new RingConfigError(`${at}: this name cannot be used`);
    if (node === null || typeof node !== 'object') {
      throw new RingConfigError(`${at}: expected { capacity, connection }`);
    }
    // Before the checks of the known fields: `{ capacity, url }` is a misspelt connection.
    for (const key of Object.keys(node)) {
      if (key !== 'capacity' && key !== 'connection') {
        throw new RingConfigError(
          `${at}: unknown field "${key}" (a node has only capacity and connection)`,
        );
      }
    }
    const { capacity, connection } = node as Partial<RingNodeConfig>;
    if (typeof capacity !== 'number' || !Number.isFinite(capacity) || capacity <= 0) {
      throw new RingConfigError(
        `${at}: capacity must be a finite number > 0, got ${shown(capacity)}`,
      );
    }
    if (connection === undefined || connection === null || connection === '') {
      throw new RingConfigError(`${at}: connection is missing`);
    }
    const address = nodeAddress(connection, at);
    for (const identity of address.identities) {
      const other = seen.get(identity);
      if (other === undefined) continue;
      throw new RingConfigError(
        address.sentinel === undefined
          ? `${at}: connection ${address.label} is the same server as node "${other}" (duplicate address)`
          : `${at}: connection ${address.label} is the same Sentinel master group as node "${other}" (duplicate address: they share a sentinel and the name "${address.sentinel}")`,
      );
    }
    for (const identity of address.identities) seen.set(identity, name);
    addresses.set(name, address);
  }
  return addresses;
}
