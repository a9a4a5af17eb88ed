import { parseDocument } from 'yaml';
import { RingConfigError } from '../core/errors.js';
import type { HashFunctionName } from '../core/hashing/hash-functions.js';

/*
 * Turns a nutcracker (twemproxy) pool into the equivalent RingDict options, so that a
 * migrated application finds every key where nutcracker put it. The parsing follows
 * twemproxy 0.5's own reading of its config (nc_conf.c): every YAML scalar is a string,
 * numbers are plain digits, booleans are exactly `true` / `false`, and a server line is
 * split from its end, `host:port:weight [name]` or `/path/to/socket:weight [name]`.
 */

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

export interface FromTwemproxyOptions {
  /** The pool to import; may be left out when the file defines a single pool. */
  pool?: string;
}

/** A nutcracker config that cannot be imported: bad YAML, unknown pool, invalid value. */
export class TwemproxyConfigError extends RingConfigError {
  override name = 'TwemproxyConfigError';
}

/** twemproxy's hash names that have an exact counterpart here (same name, same function). */
const SUPPORTED_HASHES: readonly HashFunctionName[] = [
  'fnv1a_64',
  'md5',
  'fnv1_64',
  'fnv1_32',
  'fnv1a_32',
  'crc32a',
];
/** The rest of twemproxy's hash names, refused with a reason rather than as "unknown". */
const OTHER_TWEMPROXY_HASHES = [
  'one_at_a_time',
  'crc16',
  'crc32',
  'hsieh',
  'murmur',
  'jenkins',
] as const;

/** twemproxy's default when a pool names no hash. */
const DEFAULT_HASH: HashFunctionName = 'fnv1a_64';
/** Without a name, twemproxy leaves this port out of the identity (libmemcached's habit). */
const KETAMA_DEFAULT_PORT = 11211;

/**
 * Reads a nutcracker YAML config and returns the RingDict options that place keys exactly
 * as nutcracker's pool does, plus warnings for what does not carry over. Throws
 * `TwemproxyConfigError` on invalid YAML, an unknown or ambiguous pool, or an option value
 * nutcracker itself would refuse. The YAML it reads is any YAML: nutcracker's own reader is
 * stricter (no flow sequences, no `---`), so a file read here may still be one nutcracker
 * refuses — `nutcracker -t -c file` is the check for that.
 */
export function fromTwemproxy(
  yamlText: string,
  options: FromTwemproxyOptions = {},
): TwemproxyImport {
  const pools = parsePools(yamlText);
  const names = Object.keys(pools);
  let pool = options.pool;
  if (pool === undefined) {
    if (names.length !== 1) {
      throw new TwemproxyConfigError(
        `the config defines ${names.length} pools (${names.join(', ')}): choose one with --pool NAME`,
      );
    }
    pool = names[0];
  } else if (!Object.hasOwn(pools, pool)) {
    throw new TwemproxyConfigError(
      `unknown pool "${pool}"; the config defines: ${names.join(', ')}`,
    );
  }
  const body = pools[pool];
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new TwemproxyConfigError(`pool "${pool}": expected a mapping of options`);
  }
  return { pool, ...importPool(pool, body as Record<string, unknown>) };
}

function parsePools(yamlText: string): Record<string, unknown> {
  if (typeof yamlText !== 'string') throw new TwemproxyConfigError('expected the YAML text');
  // The failsafe schema reads every scalar as a string, as twemproxy does: `timeout: 400`,
  // `redis: true` and `hash_tag: "{}"` all arrive as text and are checked below.
  const doc = parseDocument(yamlText, { schema: 'failsafe', uniqueKeys: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0].message.split('\n')[0];
    throw new TwemproxyConfigError(`invalid YAML: ${first}`);
  }
  let root: unknown;
  try {
    // An alias to no anchor, or aliases that multiply past the library's limit, fail here.
    root = doc.toJS();
  } catch (error) {
    throw new TwemproxyConfigError(`invalid YAML: ${(error as Error).message.split('\n')[0]}`);
  }
  if (root === null || root === undefined || root === '') {
    throw new TwemproxyConfigError('the config defines no pool');
  }
  if (typeof root !== 'object' || Array.isArray(root)) {
    throw new TwemproxyConfigError('expected a mapping of pool name → pool options at the top');
  }
  if (Object.keys(root).length === 0) throw new TwemproxyConfigError('the config defines no pool');
  return root as Record<string, unknown>;
}

/** Reads one scalar option as twemproxy would; `where` prefixes messages. */
function scalar(value: unknown, where: string): string {
  if (typeof value !== 'string') {
    throw new TwemproxyConfigError(`${where}: expected a single value, got a ${describe(value)}`);
  }
  return value;
}

function describe(value: unknown): string {
  return Array.isArray(value) ? 'list' : value === null ? 'null' : 'mapping';
}

/** twemproxy's numbers: plain decimal digits, nothing else (no sign, no unit). */
function digits(value: unknown, where: string): number {
  const text = scalar(value, where);
  if (!/^[0-9]+$/.test(text) || Number(text) > 2 ** 31 - 1) {
    throw new TwemproxyConfigError(
      `${where}: expected a whole number, got ${JSON.stringify(text)}`,
    );
  }
  return Number(text);
}

function bool(value: unknown, where: string): boolean {
  const text = scalar(value, where);
  if (text !== 'true' && text !== 'false') {
    throw new TwemproxyConfigError(`${where}: expected true or false, got ${JSON.stringify(text)}`);
  }
  return text === 'true';
}

interface ParsedServer {
  /** twemproxy's identity of the server: what ketama hashes. */
  name: string;
  weight: number;
  host?: string;
  port?: number;
  path?: string;
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

function importPool(
  pool: string,
  body: Record<string, unknown>,
): { group: TwemproxyGroupConfig; warnings: string[] } {
  const at = (option: string) => `pool "${pool}", ${option}`;
  const warnings: string[] = [];
  const warn = (option: string, message: string) => warnings.push(`${option}: ${message}`);
  const has = (option: string) => Object.hasOwn(body, option);

  // Redis only: a memcached pool cannot be served by a Redis client.
  if (!has('redis') || !bool(body.redis, at('redis'))) {
    throw new TwemproxyConfigError(
      `pool "${pool}" is a memcached pool (it lacks "redis: true"); only Redis pools can be imported`,
    );
  }

  const distribution = has('distribution')
    ? scalar(body.distribution, at('distribution'))
    : 'ketama';
  if (!['ketama', 'modula', 'random'].includes(distribution)) {
    throw new TwemproxyConfigError(
      `${at('distribution')}: unknown distribution ${JSON.stringify(distribution)} (twemproxy knows ketama, modula, random)`,
    );
  }
  if (distribution !== 'ketama') {
    warn(
      'distribution',
      `${distribution} has no equivalent: imported as ketama, so keys will NOT be found where nutcracker put them (a cold cache)`,
    );
  }

  let hashFunction = DEFAULT_HASH;
  if (has('hash')) {
    const hash = scalar(body.hash, at('hash'));
    if ((SUPPORTED_HASHES as readonly string[]).includes(hash)) {
      hashFunction = hash as HashFunctionName;
    } else {
      const known = (OTHER_TWEMPROXY_HASHES as readonly string[]).includes(hash);
      const why = known
        ? `twemproxy's ${hash} is not implemented here`
        : `${JSON.stringify(hash)} is not a twemproxy hash`;
      const supported = `supported: ${SUPPORTED_HASHES.join(', ')}`;
      if (distribution === 'ketama' || !known) {
        throw new TwemproxyConfigError(`${at('hash')}: ${why}; ${supported}`);
      }
      // The placement is lost anyway (see distribution); keep going with the default.
      warn('hash', `${why}; using ${DEFAULT_HASH} (${supported})`);
    }
  }

  let hashTag: string | undefined;
  if (has('hash_tag')) {
    const tag = scalar(body.hash_tag, at('hash_tag'));
    // twemproxy takes two BYTES; we take two characters. They agree on ASCII.
    if ([...tag].length !== 2 || Buffer.byteLength(tag) !== 2) {
      throw new TwemproxyConfigError(
        `${at('hash_tag')}: expected two ASCII characters such as "{}" (quote it in YAML), got ${JSON.stringify(tag)}`,
      );
    }
    hashTag = tag;
  }

  let commandTimeout: number | undefined;
  const timeout = has('timeout') ? digits(body.timeout, at('timeout')) : 0;
  if (timeout > 0) commandTimeout = timeout;
  else {
    // nutcracker waits for ever when `timeout` is 0 or absent (its default).
    warn(
      'timeout',
      `${has('timeout') ? '0' : 'absent'} (nutcracker waits for ever) cannot be expressed (commandTimeout must be > 0); the default 500 ms applies`,
    );
  }

  let password: string | undefined;
  if (has('redis_auth')) {
    password = scalar(body.redis_auth, at('redis_auth'));
    if (password === '') password = undefined;
  }
  let db: number | undefined;
  if (has('redis_db')) {
    db = digits(body.redis_db, at('redis_db'));
    if (db === 0) db = undefined;
  }

  // Options read for their validity, with no equivalent here: one warning each.
  if (has('listen')) {
    warn(
      'listen',
      `${scalar(body.listen, at('listen'))} — no proxy listens any more: the application connects to the servers directly`,
    );
  }
  for (const option of ['backlog', 'client_connections']) {
    if (has(option)) {
      digits(body[option], at(option));
      warn(option, "applies to the proxy's listening socket; no equivalent");
    }
  }
  if (has('server_connections')) {
    const n = digits(body.server_connections, at('server_connections'));
    if (n !== 1) {
      warn(
        'server_connections',
        `${n} ignored: each RingDict keeps one pipelined connection per node`,
      );
    } else {
      warn('server_connections', 'no equivalent: each RingDict keeps one connection per node');
    }
  }
  if (has('preconnect')) {
    bool(body.preconnect, at('preconnect'));
    warn('preconnect', 'no equivalent: RingDict connects to every node when it is created');
  }
  for (const option of ['tcpkeepalive', 'reuseport']) {
    if (has(option)) {
      bool(body[option], at(option));
      warn(
        option,
        "no equivalent option (set keepAlive in a node's ioredis connection options if needed)",
      );
    }
  }
  const autoEject = has('auto_eject_hosts')
    ? bool(body.auto_eject_hosts, at('auto_eject_hosts'))
    : false;
  warn(
    'auto_eject_hosts',
    autoEject
      ? 'RingDict also ejects dead nodes and rebuilds the ketama ring as twemproxy does, but on the first connection failure, and it probes them back with a heartbeat'
      : 'off in nutcracker (requests to a dead server fail); RingDict always ejects a dead node, so its keys go to the next node until it answers again',
  );
  if (has('server_retry_timeout')) {
    const ms = digits(body.server_retry_timeout, at('server_retry_timeout'));
    warn(
      'server_retry_timeout',
      `${ms} ms ignored: an ejected node is PINGed every heartbeatInterval (default 1000 ms) and rejoins when it answers`,
    );
  }
  if (has('server_failure_limit')) {
    const n = digits(body.server_failure_limit, at('server_failure_limit'));
    warn(
      'server_failure_limit',
      `${n} ignored: RingDict ejects a node on its first connection failure`,
    );
  }

  const known = new Set([
    'listen',
    'hash',
    'hash_tag',
    'distribution',
    'timeout',
    'backlog',
    'client_connections',
    'redis',
    'tcpkeepalive',
    'reuseport',
    'redis_auth',
    'redis_db',
    'preconnect',
    'auto_eject_hosts',
    'server_connections',
    'server_retry_timeout',
    'server_failure_limit',
    'servers',
  ]);
  for (const option of Object.keys(body)) {
    if (!known.has(option)) warn(option, 'unknown twemproxy option, ignored');
  }

  if (!has('servers')) throw new TwemproxyConfigError(`pool "${pool}" has no servers`);
  const servers = body.servers;
  if (!Array.isArray(servers) || servers.length === 0) {
    throw new TwemproxyConfigError(`${at('servers')}: expected a non-empty list of servers`);
  }
  const nodes: TwemproxyGroupConfig['nodes'] = {};
  const addresses = new Map<string, string>();
  servers.forEach((line, i) => {
    const where = at(`servers[${i}]`);
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
    nodes[server.name] = {
      capacity: server.weight,
      connection: connectionOf(server, password, db),
    };
  });

  const group: TwemproxyGroupConfig = { nodes, distribution: 'ketama', hashFunction };
  if (hashTag !== undefined) group.hashTag = hashTag;
  if (commandTimeout !== undefined) group.commandTimeout = commandTimeout;
  return { group, warnings };
}

function connectionOf(
  server: ParsedServer,
  password: string | undefined,
  db: number | undefined,
): TwemproxyConnection {
  const extra = {
    ...(password === undefined ? {} : { password }),
    ...(db === undefined ? {} : { db }),
  };
  if (server.path !== undefined) return { path: server.path, ...extra };
  const host = server.host as string;
  const port = server.port as number;
  // A URL when nothing else is needed; options otherwise, so a password needs no escaping.
  if (password === undefined && db === undefined) {
    return `redis://${host.includes(':') ? `[${host}]` : host}:${port}`;
  }
  return { host, port, ...extra };
}

/** How `formatTwemproxyImport` writes the result. */
export type TwemproxyImportFormat = 'json' | 'ts';

/**
 * The group config as text: `'json'` prints it as JSON (warnings are not part of it), `'ts'`
 * as a TypeScript module exporting a `RingDictOptions` constant, with the warnings as
 * comments and a line showing how to hand it to `RingRedisModule`.
 */
export function formatTwemproxyImport(
  result: TwemproxyImport,
  format: TwemproxyImportFormat = 'json',
): string {
  if (format === 'json') return `${JSON.stringify(result.group, null, 2)}\n`;
  if (format !== 'ts')
    throw new TwemproxyConfigError(`unknown output format ${JSON.stringify(format)}`);
  const id = identifier(result.pool);
  const lines = [
    `// nutcracker pool ${JSON.stringify(result.pool)}, imported by \`nestjs-ring-redis from-twemproxy\`.`,
  ];
  if (result.warnings.length > 0) {
    lines.push('//', '// Not carried over:');
    for (const w of result.warnings) lines.push(`// - ${w.replace(/[\r\n]+/g, ' ')}`);
  }
  lines.push(
    "import type { RingDictOptions } from 'nestjs-ring-redis';",
    '',
    `export const ${id} = ${tsLiteral(result.group, '')} satisfies RingDictOptions;`,
    '',
    '// As a RingRedisModule group:',
    `//   const { nodes, ...options } = ${id};`,
    `//   RingRedisModule.forRoot({ groups: { ${tsKey(result.pool)}: nodes }, groupOptions: { ${tsKey(result.pool)}: options } })`,
    '',
  );
  return lines.join('\n');
}

/** A JS identifier for the pool: camelCased, `pool` when nothing usable is left. */
function identifier(pool: string): string {
  const words = pool.split(/[^A-Za-z0-9_$]+/).filter(Boolean);
  let id = words.map((w, i) => (i === 0 ? w : w[0].toUpperCase() + w.slice(1))).join('');
  if (id === '' || /^[0-9]/.test(id)) id = `pool${id ? `_${id}` : ''}`;
  return RESERVED.has(id) ? `${id}Pool` : id;
}

const RESERVED = new Set(
  'break case catch class const continue debugger default delete do else enum export extends false finally for function if import in instanceof new null return super switch this throw true try typeof var void while with yield let static implements interface package private protected public await eval arguments'.split(
    ' ',
  ),
);

/** A single-quoted TS string literal. */
function tsString(s: string): string {
  const body = JSON.stringify(s).slice(1, -1).replace(/\\"/g, '"').replace(/'/g, "\\'");
  return `'${body}'`;
}

function tsKey(key: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? key : tsString(key);
}

/** A TS literal of plain data (strings, numbers, objects), two-space indented. */
function tsLiteral(value: unknown, indent: string): string {
  if (typeof value === 'string') return tsString(value);
  if (typeof value === 'number') return String(value);
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 0) return '{}';
  const inner = `${indent}  `;
  const body = entries.map(([k, v]) => `${inner}${tsKey(k)}: ${tsLiteral(v, inner)},`);
  return `{\n${body.join('\n')}\n${indent}}`;
}
