import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Redis, RedisOptions } from 'ioredis';
import { joinAddress, splitAddress } from '../config/address.js';
import { RingConnectionError } from './connection-errors.js';
import type { NodeHealth } from './node-health.js';
import { SentinelWatch } from './sentinel-watch.js';

/**
 * How long after a `+switch-master` a Sentinel node refuses to reconnect to the master it was
 * moved away from, should a sentinel that has not heard of the failover yet still name it.
 */
const SWITCH_PATIENCE_MS = 30_000;

/** What a Sentinel node's master tracking needs of its node. */
export interface SentinelMasterHost {
  readonly client: Redis;
  readonly health: NodeHealth;
  /** The master group's name. */
  readonly group: string;
  /** Records why the connection is refused or about to be left, for the node's messages. */
  noteError(message: string): void;
  /** The master moved away from the one the node is connected to. */
  switched(error: RingConnectionError): void;
}

/**
 * A Sentinel node's view of its master: which server it reached, and the failovers the
 * sentinels announce (`+switch-master`), so the node leaves a demoted master at once and never
 * reconnects to it while a lagging sentinel still names it.
 */
export class SentinelMaster {
  private readonly watch?: SentinelWatch;
  /** The last announced failover, until the node has reached the new master. */
  private switching?: { from: string; to: string; until: number };
  /** Failovers announced so far (see announced). */
  private announcements = 0;
  /** Why the last 'ready' was refused, for the node's connect. */
  private refused?: string;

  constructor(
    private readonly host: SentinelMasterHost,
    connection: RedisOptions | string,
    commandTimeout: number,
  ) {
    host.client.on('ready', () => this.reachedMaster());
    // The ring's own watch replaces ioredis' (see SentinelWatch); `failoverDetector: false`
    // turns it off.
    if (typeof connection === 'object' && connection.failoverDetector !== false) {
      this.watch = new SentinelWatch(connection, commandTimeout, (to) => this.announced(to));
    }
  }

  /** Listens to the sentinels, once the node first connects. */
  start(): void {
    this.watch?.start();
  }

  close(): void {
    this.watch?.close();
  }

  /** Why the connection that just became ready was refused, if it was; forgets it. */
  takeRefusal(): string | undefined {
    const refused = this.refused;
    this.refused = undefined;
    return refused;
  }

  /**
   * On 'ready': the ready check has confirmed the server answers as a master. Remember which
   * one — unless it is the master the sentinels just announced a failover away from: a
   * sentinel that has not heard of it yet named the old master, which may still take writes
   * that its new role will throw away. Refused, the node waits for the next try.
   */
  private reachedMaster(): void {
    const master = remoteAddress(this.host.client);
    if (master === undefined) return;
    const switching = this.switching;
    if (switching && performance.now() < switching.until && master === switching.from) {
      this.refused = `Sentinel moved the master of "${this.host.group}" from ${switching.from} to ${switching.to}; a sentinel still names ${master}`;
      this.host.noteError(this.refused);
      this.host.client.disconnect();
      return;
    }
    this.switching = undefined;
    this.host.health.connectedTo(master);
  }

  /**
   * The sentinels announced `to` as the new master (the watch calls this on `+switch-master`).
   * Sentinels that announce host names, or a `natMap` to names, name by host the server this
   * node reached by IP (`health.master` is the socket's address): the names are resolved
   * first, or a sentinel announcing late the failover this node has already followed would
   * eject it.
   */
  announced(to: string): void {
    // Lookups may resolve out of order: only the latest announcement counts.
    const announcement = ++this.announcements;
    const { host, port } = splitAddress(to);
    if (isIP(host) !== 0) {
      this.switchedTo(to, [to]);
      return;
    }
    const latest = (addresses: string[]) => {
      if (announcement === this.announcements) this.switchedTo(to, addresses);
    };
    lookup(host, { all: true }).then(
      (found) => latest(found.map((a) => joinAddress(unmapped(a.address), port))),
      // Unresolvable: it cannot be the server this node is connected to.
      () => latest([to]),
    );
  }

  /** `to`, announced as the new master, is the server at any of `addresses`. */
  private switchedTo(to: string, addresses: readonly string[]): void {
    const from = this.host.health.master;
    if (from === undefined || addresses.includes(from)) {
      // Already there (several sentinels announce the same failover), or never connected.
      if (from !== undefined) this.switching = undefined;
      return;
    }
    // Every sentinel announces the same failover: act on the first announcement only.
    if (this.switching?.from === from && this.switching.to === to) return;
    this.switching = { from, to, until: performance.now() + SWITCH_PATIENCE_MS };
    if (this.host.client.status !== 'ready') return;
    const message = `Sentinel moved the master of "${this.host.group}" from ${from} to ${to}`;
    this.host.noteError(message);
    this.host.switched(new RingConnectionError(message));
  }
}

/**
 * What a Sentinel node's client must do on top of a plain node's. ioredis' Sentinel connector
 * asks the sentinels for the master on every connect, which is what the ring wants: the
 * heartbeat's reconnect finds the promoted replica by itself. But:
 * - by default it retries the whole sentinel list forever when none answers: the ring's
 *   connect must fail within `commandTimeout` instead, like any dead node. But one pass is not
 *   enough either: each connect starts where the previous one stopped in the list (after the
 *   sentinel that named the master), so a pass may cover only the last sentinels and then
 *   fail, claiming no sentinel answered. One immediate second pass asks each of them;
 * - its ready check (INFO) is what rejects a server that is no longer, or not yet, the master;
 * - a connection to a master that Sentinel demoted answers writes with READONLY: drop it at the
 *   first one, so the next request reconnects through the sentinels to the new master;
 * - its `failoverDetector` is replaced by the ring's own SentinelWatch.
 */
export function sentinelOptions(): RedisOptions {
  return {
    sentinelRetryStrategy: (attempt: number) => (attempt === 1 ? 0 : null),
    enableReadyCheck: true,
    role: 'master',
    reconnectOnError: (error: Error) => (error.message.startsWith('READONLY') ? 1 : false),
    // Replaced by the ring's SentinelWatch.
    failoverDetector: false,
  };
}

/**
 * A Sentinel node's defaults that its connection options may override: a sentinel that hangs
 * must not hold up the search for the master, so it gets half the connect's budget, and the
 * next sentinel is asked, and the master reached, in time.
 */
export function sentinelDefaults(commandTimeout: number): RedisOptions {
  return { sentinelCommandTimeout: Math.max(1, Math.floor(commandTimeout / 2)) };
}

/** `host:port` of the server at the other end of the client's socket, IPv4-mapped addresses unwrapped. */
function remoteAddress(client: Redis): string | undefined {
  const stream = client.stream as { remoteAddress?: string; remotePort?: number } | undefined;
  const host = stream?.remoteAddress;
  const port = stream?.remotePort;
  if (host === undefined || port === undefined) return undefined;
  return joinAddress(unmapped(host), port);
}

/** An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) as the IPv4 address it maps. */
export function unmapped(host: string): string {
  return host.startsWith('::ffff:') && host.includes('.') ? host.slice('::ffff:'.length) : host;
}
