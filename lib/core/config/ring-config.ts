import type { RedisOptions } from 'ioredis';
import { RingConfigError } from '../errors.js';
import { nodeAddress, type NodeAddress } from './node-address.js';
import { checkCapacityTotal, shown } from './option-checks.js';

export { nodeAddress, type NodeAddress } from './node-address.js';

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
  let total = 0;
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
    total += capacity;
  }
  checkCapacityTotal(total, where);
  return addresses;
}
