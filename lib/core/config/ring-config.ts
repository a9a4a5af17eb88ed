import type { RedisOptions } from 'ioredis';
import { RingConfigError } from '../errors.js';
import { nodeAddress, type NodeAddress } from './node-address.js';
import { checkCapacityTotal, shown } from './option-checks.js';
import { caFromUrl } from './tls-ca-url.js';

export { nodeAddress, type NodeAddress } from './node-address.js';

/** One Redis server of the ring. */
export interface RingNodeConfig {
  /** Relative weight, > 0 (default 1): a node's share of the keys is proportional to it. */
  capacity?: number;
  /** ioredis options (host, port, db, username, password, tls, …) or a `redis://` URL. */
  connection: RedisOptions | string;
}

/**
 * Node name → node: `{ capacity?, connection }`, or just its `redis://` URL (capacity 1).
 * Keys are placed by node NAME, so an address can change without moving keys.
 */
export type RingNodesConfig = Record<string, RingNodeConfig | string>;

/** A node as the engine reads it: the URL form wrapped, the capacity filled in. */
export interface ResolvedRingNodeConfig {
  capacity: number;
  connection: RedisOptions | string;
}

/** The capacity of a node that names none. */
export const DEFAULT_CAPACITY = 1;

/** Group name → nodes, e.g. `{ test: {...}, sessions: {...} }`. */
export type RingGroupsConfig = Record<string, RingNodesConfig>;

/**
 * Checks a group's nodes: at least one, each a `redis://` URL or `{ capacity?, connection }`
 * with a finite capacity > 0 (1 when left out), no two on the same server. `group` names the
 * group in messages.
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
    if (typeof node === 'string' && node !== '') {
      addresses.set(name, checkAddress(node, at, seen, name));
      total += DEFAULT_CAPACITY;
      continue;
    }
    if (node === null || typeof node !== 'object') {
      throw new RingConfigError(
        `${at}: expected { capacity, connection } or a redis:// URL, got ${shown(node)}`,
      );
    }
    // Before the checks of the known fields: `{ capacity, url }` is a misspelt connection.
    for (const key of Object.keys(node)) {
      if (key !== 'capacity' && key !== 'connection') {
        throw new RingConfigError(
          `${at}: unknown field "${key}" (a node has only capacity and connection)`,
        );
      }
    }
    const { capacity = DEFAULT_CAPACITY, connection } = node as Partial<RingNodeConfig>;
    if (typeof capacity !== 'number' || !Number.isFinite(capacity) || capacity <= 0) {
      throw new RingConfigError(
        `${at}: capacity must be a finite number > 0, got ${shown(capacity)}`,
      );
    }
    if (connection === undefined || connection === null || connection === '') {
      throw new RingConfigError(`${at}: connection is missing`);
    }
    addresses.set(name, checkAddress(connection, at, seen, name));
    total += capacity;
  }
  checkCapacityTotal(total, where);
  return addresses;
}

/** The address of a node's connection, refused when an earlier node (in `seen`) has it. */
function checkAddress(
  connection: RedisOptions | string,
  at: string,
  seen: Map<string, string>,
  name: string,
): NodeAddress {
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
  return address;
}

/**
 * A copy of `nodes` in the engine's shape: a URL string becomes `{ capacity: 1, connection }`
 * and a node without a capacity gets 1. Anything else is copied as it is, so that
 * `validateNodes` still names what is wrong with it.
 */
export function resolveNodes(nodes: RingNodesConfig): Record<string, ResolvedRingNodeConfig> {
  if (nodes === null || typeof nodes !== 'object' || Array.isArray(nodes)) {
    return nodes as Record<string, ResolvedRingNodeConfig>;
  }
  const resolved: Record<string, ResolvedRingNodeConfig> = {};
  for (const [name, node] of Object.entries(nodes)) {
    if (name === '__proto__') return nodes as Record<string, ResolvedRingNodeConfig>;
    resolved[name] =
      typeof node === 'string' && node !== ''
        ? { capacity: DEFAULT_CAPACITY, connection: node }
        : node !== null && typeof node === 'object' && node.capacity === undefined
          ? { ...node, capacity: DEFAULT_CAPACITY }
          : (node as ResolvedRingNodeConfig);
  }
  return resolved;
}

/**
 * `nodes` (resolved) with each `rediss://…?ca=file` connection turned into ioredis options
 * that hold the CA (see tls-ca-url.ts); `group` names the group in messages.
 */
export function withCaFiles(
  nodes: Record<string, ResolvedRingNodeConfig>,
  group?: string,
): Record<string, ResolvedRingNodeConfig> {
  if (nodes === null || typeof nodes !== 'object') return nodes;
  const where = group === undefined ? 'nodes' : `group "${group}"`;
  let copy: Record<string, ResolvedRingNodeConfig> | undefined;
  for (const [name, node] of Object.entries(nodes)) {
    if (node === null || typeof node !== 'object') continue;
    const connection = caFromUrl(node.connection, `${where}, node "${name}"`);
    if (connection === node.connection) continue;
    copy ??= { ...nodes };
    copy[name] = { ...node, connection };
  }
  return copy ?? nodes;
}

/** A node list taken in: resolved (URLs, CA files) and checked, with each node's address. */
export interface CheckedNodes {
  nodes: Record<string, ResolvedRingNodeConfig>;
  addresses: Map<string, NodeAddress>;
}

/**
 * `nodes` as every node list is taken in — the constructor's, `setNodes`', a migration's
 * `from`: resolved, then checked; throws RingConfigError naming what is wrong.
 */
export function checkedNodes(nodes: RingNodesConfig, group?: string): CheckedNodes {
  const resolved = withCaFiles(resolveNodes(nodes), group);
  return { nodes: resolved, addresses: validateNodes(resolved, group) };
}

/** Node name → capacity, for a hash ring. */
export function capacitiesOf(nodes: Record<string, { capacity: number }>): Record<string, number> {
  const capacities: Record<string, number> = {};
  for (const [name, node] of Object.entries(nodes)) capacities[name] = node.capacity;
  return capacities;
}
