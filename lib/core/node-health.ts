/** What `RingDict.nodeStates()` reports for one node. Never holds an address or a credential. */
export interface RingNodeState {
  name: string;
  alive: boolean;
  /** When the node was last ejected; absent while it has never been. */
  ejectedAt?: Date;
  /** The last connection error's message. */
  lastError?: string;
  ejections: number;
  rediscoveries: number;
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

  constructor(readonly name: string) {}

  /** Marks the node ejected; true when it was alive until now. */
  eject(message: string, at = new Date()): boolean {
    this.lastError = message;
    if (!this.alive) return false;
    this.alive = false;
    this.ejectedAt = at;
    this.ejections++;
    return true;
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
    return state;
  }
}
