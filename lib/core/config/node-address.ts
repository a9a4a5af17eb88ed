import { posix } from 'node:path';
import type { RedisOptions } from 'ioredis';
import { RingConfigError } from '../errors.js';
import { joinAddress, serverKey } from './address.js';
import {
  IOREDIS_OPTION_HINTS,
  IOREDIS_OPTION_NAMES,
  URL_QUERY_OPTIONS,
} from './ioredis-options.js';
import { shown } from './option-checks.js';

/** Where a node's server is, for duplicate detection and messages. Never holds a credential. */
export interface NodeAddress {
  /** `host:port`, the unix socket path, or for a Sentinel node `sentinel group "name" (h:p, …)`. */
  readonly label: string;
  /**
   * The server and the database number: two nodes with the same identity are one server.
   * Hosts are compared by canonicalHost() (so `localhost` and `127.0.0.1` are one), ports
   * and databases as numbers. A Sentinel node has one identity per sentinel
   * (`name@host:port/db`): a sentinel monitors one master per name, so two nodes that share
   * a sentinel and a name share a master.
   */
  readonly identity: string;
  readonly identities: readonly string[];
  /** The passwords and user names, if any, so messages can be scrubbed of them. */
  readonly secrets: readonly string[];
  /** Sentinel nodes only: the master group's name (`connection.name`). */
  readonly sentinel?: string;
  /** Sentinel nodes only: the configured sentinels, `host:port`. */
  readonly sentinels?: readonly string[];
}

/** The highest database number accepted here; whether the server has it is seen at connect. */
const MAX_DB = 2 ** 31 - 1;

/** Parses a node's connection far enough to name its address without its credentials. */
export function nodeAddress(connection: RedisOptions | string, where: string): NodeAddress {
  if (typeof connection === 'string') return urlAddress(connection, `${where}.connection`);
  if (connection === null || typeof connection !== 'object') {
    throw new RingConfigError(
      `${where}.connection: expected ioredis options or a redis:// URL, got ${connection === null ? 'null' : typeof connection}`,
    );
  }
  const at = `${where}.connection`;
  if (connection.keyPrefix !== undefined && connection.keyPrefix !== '') {
    // ioredis prefixes the keys of commands, not SCAN's MATCH pattern: keys(), size(),
    // clear() and the hinted handoff would find none of the dict's entries.
    throw new RingConfigError(
      `${at}.keyPrefix: not supported by the ring (SCAN would miss every entry); use the dict's \`prefix\` option`,
    );
  }
  if (
    connection.host == null &&
    connection.port == null &&
    connection.path == null &&
    connection.sentinels == null
  ) {
    // ioredis would connect to localhost:6379, whatever was meant (a misspelt `host`?).
    const foreign = foreignField(connection);
    throw new RingConfigError(
      `${at}: names no server (no host, port, path or sentinels; ioredis would use localhost:6379)${foreign === undefined ? '' : `; ${foreign}`}`,
    );
  }
  const foreign = foreignField(connection);
  if (foreign !== undefined) throw new RingConfigError(`${at}: ${foreign}`);
  const db = connection.db === undefined ? 0 : checkDb(connection.db, `${at}.db`, 'expected');
  if (connection.sentinels !== undefined && connection.sentinels !== null) {
    return sentinelAddress(connection, at, db);
  }
  const { host, port, path } = connection;
  if (path !== undefined && path !== null && (typeof path !== 'string' || path.length === 0)) {
    throw new RingConfigError(`${at}.path: expected a unix socket path, got ${shown(path)}`);
  }
  if (!path && 'host' in connection && (typeof host !== 'string' || host.length === 0)) {
    // `{ host: process.env.REDIS_HOST }` with the variable unset: ioredis fills in localhost.
    throw new RingConfigError(
      `${at}.host: expected a host name or address, got ${shown(host)} (ioredis would connect to localhost)`,
    );
  }
  // Not `null` either: ioredis fills in only what is undefined, and net needs a port.
  if (port !== undefined) checkPort(port, `${at}.port`);
  const secrets = secretsOf([connection.password], [connection.username]);
  if (path) {
    return { label: path, ...identified(`${posix.normalize(path)}/${db}`), secrets };
  }
  const [server, serverPort] = [host ?? 'localhost', port ?? 6379];
  const label = joinAddress(server, serverPort);
  return { label, ...identified(`${serverKey(server, serverPort)}/${db}`), secrets };
}

function identified(identity: string): { identity: string; identities: readonly string[] } {
  return { identity, identities: [identity] };
}

/** A `redis://` or `rediss://` URL, as ioredis reads it (its own `parseURL`). */
function urlAddress(connection: string, at: string): NodeAddress {
  let url: URL;
  try {
    url = new URL(connection);
  } catch {
    throw new RingConfigError(`${at}: not a valid redis:// URL`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new RingConfigError(
      `${at}: expected a redis:// or rediss:// URL, got ${url.protocol}//…`,
    );
  }
  // 'redis:/host:port' parses too, as a path with no host: a node that never connects.
  if (!/^rediss?:\/\//i.test(connection)) {
    throw new RingConfigError(
      `${at}: expected ${url.protocol}// and then the host, got ${url.protocol}${connection.slice(url.protocol.length, url.protocol.length + 2)}…`,
    );
  }
  if (url.hostname === '') {
    throw new RingConfigError(
      `${at}: the URL names no host (ioredis would use localhost); write ${url.protocol}//host:port`,
    );
  }
  if (url.port !== '') checkPort(url.port, `${at}: the URL's port`);
  for (const option of url.searchParams.keys()) {
    // The CA file of a private CA (see tls-ca-url.ts): TLS only.
    if (option === 'ca') {
      if (url.protocol === 'rediss:') continue;
      throw new RingConfigError(`${at}: the URL's option "ca" needs a rediss:// URL (TLS)`);
    }
    if (!URL_QUERY_OPTIONS.has(option)) {
      throw new RingConfigError(
        `${at}: the URL's option "${option}" is not supported (a URL may carry ${[...URL_QUERY_OPTIONS].join(', ')}, and ca with rediss://; give other ioredis options as an object)`,
      );
    }
  }
  // ioredis takes the database from the path, else from `?db=`.
  const path = url.pathname.replace(/^\//, '');
  const query = url.searchParams.get('db');
  const db =
    path !== ''
      ? checkDb(path, `${at}: the database in the URL's path`, 'must be')
      : query !== null
        ? checkDb(query, `${at}: the URL's db option`, 'must be')
        : 0;
  // ioredis decodes them as it connects, and would throw a URIError then, naming nothing.
  for (const [part, value] of [
    ['user name', url.username],
    ['password', url.password],
  ] as const) {
    if (decoded(value) === undefined) {
      throw new RingConfigError(
        `${at}: the URL's ${part} is not valid percent-encoding (write a % as %25)`,
      );
    }
  }
  const port = url.port || 6379;
  const params = url.searchParams;
  // The query's values come decoded already (decoding them again would mangle a "%").
  const secrets = secretsOf(
    [decoded(url.password), params.get('password')],
    [decoded(url.username), params.get('username')],
  );
  const identity = `${serverKey(url.hostname, port)}/${db}`;
  return { label: `${url.hostname}:${port}`, identity, identities: [identity], secrets };
}

/** `part` decoded; undefined when it is not valid percent-encoding (or null). */
function decoded(part: string | null): string | undefined {
  if (part === null) return undefined;
  try {
    return decodeURIComponent(part);
  } catch {
    return undefined;
  }
}

/**
 * The credentials to scrub from messages. Redis' built-in user `default` is no secret, and
 * scrubbing the word would mangle messages naming the `default` group.
 */
function secretsOf(passwords: readonly unknown[], usernames: readonly unknown[]): string[] {
  const secrets = new Set<string>();
  for (const secret of passwords) {
    if (typeof secret === 'string' && secret.length > 0) secrets.add(secret);
  }
  for (const user of usernames) {
    if (typeof user === 'string' && user.length > 0 && user !== 'default') secrets.add(user);
  }
  return [...secrets];
}

/** What is wrong with the first field of `connection` that ioredis would ignore, if any. */
function foreignField(connection: object): string | undefined {
  const field = Object.keys(connection).find((key) => !IOREDIS_OPTION_NAMES.has(key));
  if (field === undefined) return undefined;
  const hint = IOREDIS_OPTION_HINTS.get(field);
  return `unknown option "${field}" (not an ioredis connection option${hint === undefined ? '' : `; did you mean "${hint}"?`})`;
}

/** A database number: an integer, or its decimal digits (ioredis parses a string). */
function checkDb(db: unknown, field: string, verb: 'expected' | 'must be'): number {
  const value =
    typeof db === 'number' ? db : typeof db === 'string' && /^\d+$/.test(db) ? Number(db) : NaN;
  if (!Number.isInteger(value) || value < 0 || value > MAX_DB) {
    // Otherwise ioredis sends `SELECT NaN` (a string) or selects db 0 (null) when connecting.
    const expected = `an integer from 0 to ${MAX_DB}`;
    throw new RingConfigError(
      verb === 'expected'
        ? `${field}: expected ${expected}, got ${shown(db)}`
        : `${field} must be ${expected}, got ${shown(db)}`,
    );
  }
  return value;
}

/** A TCP port: an integer from 1 to 65535, or its decimal digits (ioredis parses a string). */
function checkPort(port: unknown, field: string): void {
  const value =
    typeof port === 'number'
      ? port
      : typeof port === 'string' && /^\d+$/.test(port)
        ? Number(port)
        : NaN;
  if (!Number.isInteger(value) || value < 1 || value > 65535) {
    throw new RingConfigError(
      `${field}: expected a port number from 1 to 65535, got ${shown(port)}`,
    );
  }
}

/**
 * A Sentinel node: `{ sentinels: [{ host, port }, …], name, … }`. The ring connects through
 * the sentinels to whichever server is the group's master now; only the master serves a
 * ring node (a replica cannot take the ring's writes).
 */
function sentinelAddress(connection: RedisOptions, at: string, db: number): NodeAddress {
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
  // Each sentinel as written (for messages) under its canonical address (for identities).
  const endpoints = new Map<string, string>();
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
    const key = serverKey(host, port);
    if (!endpoints.has(key)) endpoints.set(key, joinAddress(host, port));
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
  const secrets = secretsOf(
    [connection.password, connection.sentinelPassword],
    [connection.username, connection.sentinelUsername],
  );
  const keys = [...endpoints.keys()];
  const written = [...endpoints.values()];
  return {
    label: `sentinel group "${name}" (${written.join(', ')})`,
    identity: `${name}@${[...keys].sort().join(',')}/${db}`,
    identities: keys.map((key) => `${name}@${key}/${db}`),
    secrets,
    sentinel: name,
    sentinels: written,
  };
}

function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  return value === null ? 'null' : typeof value === 'object' ? typeof value : String(value);
}
