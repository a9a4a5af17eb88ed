import type { HandoffCatchUp } from '../handoff/handoff-catch-up.js';
import type { HandoffReport } from '../handoff/handoff-log.js';
import type { RingMembership } from '../membership/ring-membership.js';
import type { RingNode } from '../node/ring-node.js';

export interface ReviverOptions {
  /** Milliseconds between PINGs of ejected nodes; 0: no heartbeat. */
  heartbeatInterval: number;
  /** Fraction of requests that probe an ejected owner. */
  retryRatio: number;
  commandTimeout: number;
}

/**
 * Brings ejected nodes back: a heartbeat PINGs them in parallel, and a fraction of requests
 * (`retryRatio`) probes the owner it would have had. A node that answers is brought up to date
 * (hinted handoff) and only then rejoins the alive ring, so it never serves a value older than
 * one written meanwhile. Heartbeat and probes share one revival per node.
 */
export class NodeReviver {
  /** Revivals under way, so that the heartbeat and probes share one per node. */
  private readonly reviving = new Map<RingNode, Promise<void>>();
  private heartbeat?: NodeJS.Timeout;

  constructor(
    private readonly membership: RingMembership,
    private readonly catchUp: HandoffCatchUp,
    private readonly options: ReviverOptions,
  ) {}

  /** Starts the heartbeat, if any. */
  start(): void {
    if (this.options.heartbeatInterval <= 0) return;
    this.heartbeat = setInterval(() => this.beat(), this.options.heartbeatInterval);
    // The dict alone never keeps a process alive; its open sockets do until close().
    this.heartbeat.unref();
  }

  stop(): void {
    clearInterval(this.heartbeat);
  }

  /**
   * The rediscovery probe: with probability `retryRatio`, while some node is ejected, a request
   * whose total-ring owner is out tries that owner first. The answer is the owner's revival
   * (connect, PING, hinted handoff, rejoin), at most `commandTimeout` on a node that does not
   * answer; the request then goes where the alive ring says, to that owner if it came back.
   * It is brought up to date before it serves the request, never after. Undefined: no probe.
   */
  probe(entry: string): Promise<void> | undefined {
    if (!this.membership.anyEjected || Math.random() >= this.options.retryRatio) return undefined;
    const owner = this.membership.ownerOf(entry);
    return owner.health.alive ? undefined : this.reviveSoon(owner);
  }

  /** PINGs every ejected node in parallel; those that answer rejoin. */
  private beat(): void {
    if (this.membership.closed) return;
    for (const node of this.membership.all()) if (!node.health.alive) this.reviveSoon(node);
  }

  /** A revival of `node`: the one under way, else a new one. revive() handles its own failures. */
  private reviveSoon(node: RingNode): Promise<void> {
    let revival = this.reviving.get(node);
    if (revival === undefined) {
      if (this.membership.closed) return Promise.resolve();
      revival = this.revive(node).finally(() => this.reviving.delete(node));
      this.reviving.set(node, revival);
    }
    return revival;
  }

  /**
   * An ejected node that answers PING is brought up to date (hinted handoff) and only then
   * rejoins the alive ring, so it never serves a value older than one written meanwhile.
   */
  private async revive(node: RingNode): Promise<void> {
    let report: HandoffReport | undefined;
    try {
      await node.connect(this.options.commandTimeout);
      await node.client.ping();
      if (this.catchUp.enabled) report = await this.catchUp.handOff(node);
    } catch (error) {
      node.health.lastError = node.describe(error);
      // A connection that did not answer is useless: start afresh next time.
      node.drop();
      return;
    }
    if (this.membership.closed || node.health.alive) return;
    if (this.catchUp.enabled && !this.catchUp.invalidateRest(node)) return;
    this.membership.rediscover(node, report);
  }
}
