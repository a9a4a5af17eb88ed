/**
 * What `RingDict.nodeStates()` reports for one node. Never holds a credential; the only address
 * is a Sentinel node's current master (`host:port`), which an operator needs during a failover.
 */
export interface RingNodeState {
  name: string;
  alive: boolean;
  /** When the node was last ejected; absent while it has never been. */
  ejectedAt?: Date;
  /** The last connection error's message. */
  lastError?: string;
  ejections: number;
  rediscoveries: number;
  /** Sentinel nodes only: the master group's name (`connection.name`). */
  sentinel?: string;
  /**
   * With a near cache only: whether the node's invalidation channel is up (its entries are
   * served from memory only while it is).
   */
  invalidation?: 'up' | 'down';
  /** With a near cache only: why the node refused CLIENT TRACKING, if it did. */
  invalidationError?: string;
  /**
   * Sentinel nodes only: `host:port` of the master the node is connected to, or was last
   * connected to while it is ejected. Absent until the first connection.
   */
  master?: string;
  /** Sentinel nodes only: how many times the node found a different master (failovers seen). */
  failovers?: number;
  /** Sentinel nodes only: the last master change the node saw. */
  lastFailover?: RingFailover;
}

/** What `RingDict.ping()` found of one node. */
export interface RingNodePing {
  name: string;
  /** In the alive ring after the PING. */
  alive: boolean;
  /** The node answered. */
  ok: boolean;
  /** How long it took to answer, in ms. */
  ms?: number;
  /** Why it did not, scrubbed of credentials. */
  error?: string;
}

/** A Sentinel node's master moved: addresses are `host:port`, never a credential. */
export interface RingFailover {
  from: string;
  to: string;
  /** When the node first reached the new master. */
  at: Date;
}

/**
 * One node's health: alive or ejected, and the counters that tell its history. Transitions
 * answer whether they changed anything, so events fire once per transition however many
 * concurrent requests saw the same failure.
 */
export class NodeHealth {
  alive = true;
  ejectedAt?: Date;
  lastError?: string;
  ejections = 0;
  rediscoveries = 0;
  /** Sentinel nodes: the master connected to now, or last. */
  master?: string;
  failovers = 0;
  lastFailover?: RingFailover;
  /** With a near cache: the node's invalidation channel (see InvalidationChannel). */
  invalidation?: 'up' | 'down';
  invalidationError?: string;
  /** Sentinel nodes: the master when the node was last ejected, to tell a failover on return. */
  private masterAtEjection?: string;

  /** `sentinel`: the master group's name, for Sentinel nodes. */
  constructor(
    readonly name: string,
    readonly sentinel?: string,
  ) {}

  /** Marks the node ejected; true when it was alive until now. */
  eject(message: string, at = new Date()): boolean {
    this.lastError = message;
    if (!this.alive) return false;
    this.alive = false;
    this.ejectedAt = at;
    this.ejections++;
    this.masterAtEjection = this.master;
    return true;
  }

  /**
   * Sentinel nodes: the connection reached the master at `address`. Answers the failover
   * when it is not the master of the previous connection.
   */
  connectedTo(address: string, at = new Date()): RingFailover | undefined {
    const from = this.master;
    this.master = address;
    if (from === undefined || from === address) return undefined;
    this.failovers++;
    this.lastFailover = { from, to: address, at };
    return this.lastFailover;
  }

  /**
   * Sentinel nodes: the master change between the last ejection and now (after a rediscovery:
   * the node came back on another master, i.e. Sentinel failed over meanwhile).
   */
  failoverSinceEjection(): { from: string; to: string } | undefined {
    const from = this.masterAtEjection;
    const to = this.master;
    return from === undefined || to === undefined || from === to ? undefined : { from, to };
  }

  /** Marks the node alive again; true when it was ejected until now. */
  rediscover(): boolean {
    if (this.alive) return false;
    this.alive = true;
    this.rediscoveries++;
    return true;
  }

  snapshot(): RingNodeState {
    const state: RingNodeState = {
      name: this.name,
      alive: this.alive,
      ejections: this.ejections,
      rediscoveries: this.rediscoveries,
    };
    if (this.ejectedAt) state.ejectedAt = this.ejectedAt;
    if (this.lastError !== undefined) state.lastError = this.lastError;
    if (this.invalidation !== undefined) state.invalidation = this.invalidation;
    if (this.invalidationError !== undefined) state.invalidationError = this.invalidationError;
    if (this.sentinel !== undefined) {
      state.sentinel = this.sentinel;
      if (this.master !== undefined) state.master = this.master;
      state.failovers = this.failovers;
      if (this.lastFailover) state.lastFailover = { ...this.lastFailover };
    }
    return state;
  }
}
