import { Redis, type RedisOptions } from 'ioredis';
import { joinAddress } from '../config/address.js';

/** The channel on which every sentinel announces a completed failover. */
const SWITCH_MASTER = '+switch-master';
/** Reconnection back-off of a subscription whose sentinel went away: 200 ms, 400 ms, … 5 s. */
const MAX_RECONNECT_DELAY_MS = 5_000;

/**
 * Listens to a Sentinel node's sentinels for `+switch-master` and reports the master's new
 * address, so the ring leaves a demoted master at once instead of writing to it until Sentinel
 * gets round to reconfiguring it.
 *
 * Why not ioredis' own `failoverDetector`: its subscriber clients have no error listener, so
 * a sentinel that goes away prints "[ioredis] Unhandled error event" on every retry, and it
 * lives and dies with the data connection (none while the node is ejected). This one holds one
 * quiet subscription per configured sentinel for the node's whole life, each reconnecting by
 * itself with a back-off. Every sentinel publishes the switch when it learns of it, so the last
 * message comes once all of them agree on the new master.
 */
export class SentinelWatch {
  private readonly clients: Redis[];
  private closed = false;
  private started = false;

  constructor(
    connection: RedisOptions,
    connectTimeout: number,
    private readonly onSwitch: (to: string) => void,
  ) {
    const name = connection.name!;
    this.clients = (connection.sentinels ?? []).map((sentinel) => {
      const client = new Redis({
        host: sentinel.host,
        port: sentinel.port,
        family: sentinel.family ?? connection.family,
        username: connection.sentinelUsername,
        password: connection.sentinelPassword,
        tls: connection.sentinelTLS,
        protocol: connection.protocol,
        connectTimeout,
        lazyConnect: true,
        // A subscription waits for its sentinel, however long it is away: it costs nothing
        // and nobody waits on it.
        enableOfflineQueue: true,
        maxRetriesPerRequest: null,
        enableReadyCheck: false,
        retryStrategy: (attempt) => Math.min(attempt * 200, MAX_RECONNECT_DELAY_MS),
      });
      // A sentinel that is down is no news: the ring reports the node, not its sentinels.
      client.on('error', () => undefined);
      client.on('message', (channel: string, message: string) => {
        if (channel !== SWITCH_MASTER || this.closed) return;
        // "<name> <old-ip> <old-port> <new-ip> <new-port>"
        const [master, , , host, port] = message.split(' ');
        if (master !== name || host === undefined || port === undefined) return;
        this.onSwitch(resolveNat(connection, host, Number(port)));
      });
      return client;
    });
  }

  /**
   * Subscribes, once: called when the node first opens its connection, so a node that never
   * connects (a lazy dict, a failed boot) opens no socket to its sentinels either.
   */
  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    for (const client of this.clients) client.subscribe(SWITCH_MASTER).catch(() => undefined);
  }

  close(): void {
    this.closed = true;
    for (const client of this.clients) client.disconnect();
  }
}

/** `host:port` of an announced address, through the node's `natMap` as ioredis does. */
function resolveNat(connection: RedisOptions, host: string, port: number): string {
  const natMap = connection.natMap;
  let address = { host, port };
  if (typeof natMap === 'function') address = natMap(`${host}:${port}`) ?? address;
  else if (natMap) address = natMap[`${host}:${port}`] ?? address;
  return joinAddress(address.host, address.port);
}
