/**
 * Several test servers at once, and the ring configuration over them: what most suites, the
 * sample app and the benchmarks need, built on the single servers of redis-servers.ts.
 */
import { redisCommand } from './redis-command.js';
import { RedisServer } from './redis-servers.js';

export interface RedisFleet {
  servers: RedisServer[];
  /** Stops every server of the fleet; safe to call twice. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** `redis-server` arguments for an ACL user with every right, in `--user` form. */
export function aclUserArgs(user: string, password: string): string[] {
  return ['--user', user, 'on', `>${password}`, '~*', '&*', '+@all'];
}

/** Starts `count` servers in parallel, each on its own free port; all or nothing. */
export async function startRedisServers(
  count: number,
  options: { extraArgs?: string[] } = {},
): Promise<RedisFleet> {
  const results = await Promise.allSettled(
    Array.from({ length: count }, (_, i) =>
      RedisServer.start({ extraArgs: options.extraArgs, name: `redis${i}` }),
    ),
  );
  const servers = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    // Do not leave the ones that did start running.
    await Promise.all(servers.map((server) => server.stop()));
    throw failed.reason;
  }
  const stop = async (): Promise<void> => {
    await Promise.all(servers.map((server) => server.stop()));
  };
  return { servers, stop, [Symbol.asyncDispose]: stop };
}

/**
 * Puts a fleet back as a test found it: hung servers resumed, dead ones restarted, every
 * server emptied. Only for fleets the tests started themselves.
 */
export async function resetFleet(fleet: RedisFleet): Promise<void> {
  for (const server of fleet.servers) {
    if (server.isHung) server.resume();
    if (!server.running) await server.restart();
    await redisCommand(server.port, 'FLUSHALL');
  }
}

/**
 * A ring's node configuration for these servers: `node<first + i>` with capacity 1 each.
 * Structurally a `RingNodesConfig`, without this helper depending on the package.
 */
export function ringNodes(
  servers: readonly RedisServer[],
  first = 0,
): Record<string, { capacity: number; connection: string }> {
  return Object.fromEntries(
    servers.map((server, i) => [`node${first + i}`, { capacity: 1, connection: server.url }]),
  );
}

/**
 * As `ringNodes`, with every connection carrying `connectionName` as its CLIENT name, so a
 * test can count the ring's connections on a server (CLIENT LIST) or kill one of them.
 */
export function taggedNodes(
  servers: readonly RedisServer[],
  connectionName: string,
): Record<string, { capacity: number; connection: TaggedConnection }> {
  return Object.fromEntries(
    servers.map((server, i) => [
      `node${i}`,
      { capacity: 1, connection: { host: server.host, port: server.port, connectionName } },
    ]),
  );
}

interface TaggedConnection {
  host: string;
  port: number;
  connectionName: string;
}

/** The server behind ring node `node<i>` of `ringNodes(servers)`: `servers[i]`. */
export function serverOf(servers: readonly RedisServer[], node: string): RedisServer {
  const server = servers[Number(/^node(\d+)$/.exec(node)?.[1])];
  if (!server) throw new Error(`no server for node ${node}`);
  return server;
}
