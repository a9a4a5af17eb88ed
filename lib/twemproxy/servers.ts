import type { TwemproxyConnection, TwemproxyGroupConfig } from './import-result.js';
import { scalar, type PoolOptions } from './pool-options.js';
import { TwemproxyConfigError } from './twemproxy-config-error.js';

/** Without a name, twemproxy leaves this port out of the identity (libmemcached's habit). */
const KETAMA_DEFAULT_PORT = 11211;

/** One line of a pool's `servers` list. */
export interface ParsedServer {
  /** twemproxy's identity of the server: what ketama hashes. */
  name: string;
  weight: number;
  host?: string;
  port?: number;
  path?: string;
}

/** The credentials every server of a pool shares (`redis_auth`, `redis_db`). */
export interface ServerCredentials {
  password?: string;
  db?: number;
}

/**
 * Splits a server line from its end, like twemproxy: an optional name after the last
 * space, then the weight after the last colon, then (unless the address is a unix socket
 * path) the port after the next colon; what remains is the host, colons and all.
 */
export function parseTwemproxyServer(line: string, where: string): ParsedServer {
  let rest = line;
  let name: string | undefined;
  const space = rest.lastIndexOf(' ');
  if (space !== -1) {
    name = rest.slice(space + 1);
    rest = rest.slice(0, space);
    if (name.length === 0) throw new TwemproxyConfigError(`${where}: empty server name`);
  }
  const bad = (): never => {
    throw new TwemproxyConfigError(
      `${where}: ${JSON.stringify(line)} is not "host:port:weight [name]" or "/path/to/socket:weight [name]"`,
    );
  };
  const weightColon = rest.lastIndexOf(':');
  if (weightColon === -1) bad();
  const weightText = rest.slice(weightColon + 1);
  const address = rest.slice(0, weightColon);
  if (!/^[0-9]+$/.test(weightText)) bad();
  const weight = Number(weightText);
  if (weight === 0 || weight > 2 ** 31 - 1) {
    throw new TwemproxyConfigError(
      `${where}: weight must be from 1 to 2^31 - 1, got ${weightText}`,
    );
  }
  if (address.startsWith('/')) {
    // nutcracker looks for a port's colon in a socket line too, and refuses the line when it
    // finds one: a socket path cannot hold a colon.
    if (address.includes(':')) {
      throw new TwemproxyConfigError(
        `${where}: ${JSON.stringify(line)}: nutcracker refuses a unix socket path with a colon in it`,
      );
    }
    // Unnamed, twemproxy's identity is the path followed by the colon that would precede a
    // port, and an empty port: `/path/to/socket:`.
    return { name: name ?? `${address}:`, weight, path: address };
  }
  const portColon = address.lastIndexOf(':');
  if (portColon === -1) bad();
  const host = address.slice(0, portColon);
  const portText = address.slice(portColon + 1);
  if (host.length === 0 || !/^[0-9]+$/.test(portText)) bad();
  const port = Number(portText);
  if (port < 1 || port > 65535) {
    throw new TwemproxyConfigError(`${where}: invalid port ${portText}`);
  }
  // Unnamed, the identity is the address exactly as written (no resolution, no
  // normalisation), without the port when it is 11211.
  return { name: name ?? (port === KETAMA_DEFAULT_PORT ? host : address), weight, host, port };
}

/**
 * The pool's `servers` as ring nodes: name → capacity (the weight) and connection. Two
 * servers with one name, or one server listed twice, are refused: a ring needs both apart.
 */
export function readServers(
  options: PoolOptions,
  credentials: ServerCredentials,
): TwemproxyGroupConfig['nodes'] {
  if (!options.has('servers')) {
    throw new TwemproxyConfigError(`pool "${options.pool}" has no servers`);
  }
  const servers = options.raw('servers');
  if (!Array.isArray(servers) || servers.length === 0) {
    throw new TwemproxyConfigError(
      `${options.at('servers')}: expected a non-empty list of servers`,
    );
  }
  const nodes: TwemproxyGroupConfig['nodes'] = {};
  const addresses = new Map<string, string>();
  servers.forEach((line, i) => {
    const where = options.at(`servers[${i}]`);
    const server = parseTwemproxyServer(scalar(line, where), where);
    if (server.name === '__proto__') {
      // An object key that sets the prototype instead: the ring refuses it as a node name.
      throw new TwemproxyConfigError(`${where}: the server name "__proto__" cannot be imported`);
    }
    if (Object.hasOwn(nodes, server.name)) {
      throw new TwemproxyConfigError(`${where}: two servers are named "${server.name}"`);
    }
    const address = server.path ?? `${server.host}:${server.port}`;
    const other = addresses.get(address);
    if (other !== undefined) {
      throw new TwemproxyConfigError(
        `${where}: "${server.name}" is the same server (${address}) as "${other}"; a ring needs distinct servers`,
      );
    }
    addresses.set(address, server.name);
    nodes[server.name] = { capacity: server.weight, connection: connectionOf(server, credentials) };
  });
  const total = Object.values(nodes).reduce((sum, node) => sum + node.capacity, 0);
  if (total > MAX_TOTAL_WEIGHT) {
    // nutcracker adds the weights in 32 bits: past that its placement wraps around (750 of
    // 2 000 keys elsewhere with three weights of 2^31 - 1), which the ring does not copy.
    throw new TwemproxyConfigError(
      `${options.at('servers')}: the weights add up to ${total}, past 2^32 - 1, where nutcracker's own total wraps around; scale them down (only their ratios count)`,
    );
  }
  return nodes;
}

/** The largest sum of weights nutcracker keeps exactly (a 32-bit unsigned total). */
const MAX_TOTAL_WEIGHT = 2 ** 32 - 1;

/** A host name, an IPv4 address or a bare IPv6 one: safe inside a redis:// URL. */
const PLAIN_HOST = /^[A-Za-z0-9._:-]+$/;

function connectionOf(
  server: ParsedServer,
  { password, db }: ServerCredentials,
): TwemproxyConnection {
  const extra = {
    ...(password === undefined ? {} : { password }),
    ...(db === undefined ? {} : { db }),
  };
  if (server.path !== undefined) return { path: server.path, ...extra };
  const host = server.host as string;
  const port = server.port as number;
  // A URL when nothing else is needed; options otherwise, so a password needs no escaping,
  // nor a host a URL would read otherwise (`a#b` is host a on port 6379, `u@h` user u on h).
  if (password === undefined && db === undefined && PLAIN_HOST.test(host)) {
    return `redis://${host.includes(':') ? `[${host}]` : host}:${port}`;
  }
  return { host, port, ...extra };
}
