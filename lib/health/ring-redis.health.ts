import { Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { RingRedisService } from '../nest/ring-redis.service.js';

export interface RingRedisHealthOptions {
  /** Check only this group (default: every group). */
  group?: string;
  /**
   * Alive nodes each checked group needs to be `up` (default 1); 0 reports the details and is
   * always `up`. Anything but a whole number ≥ 0 reports `down`, naming the value.
   */
  minAlive?: number;
}

interface NodeDetails {
  alive: boolean;
  ejectedAt?: string;
  ejections: number;
  rediscoveries: number;
  lastError?: string;
  /** Sentinel nodes only: the master group's name. */
  sentinel?: string;
  /** Sentinel nodes only: `host:port` of the current (or, while ejected, the last) master. */
  master?: string;
  /** Sentinel nodes only: master changes seen. */
  failovers?: number;
  /** Sentinel nodes only: the last master change. */
  lastFailover?: { from: string; to: string; at: string };
}

interface EventDetails {
  type: string;
  node?: string;
  at: string;
  /** Sentinel nodes: the master that failed (ejected) or was rejoined (rediscovered). */
  master?: string;
  /** Sentinel nodes, on rediscovered: the master moved while the node was away. */
  failover?: { from: string; to: string };
}

interface GroupDetails {
  alive: number;
  total: number;
  nodes: Record<string, NodeDetails>;
  events: EventDetails[];
}

/**
 * Terminus health indicator for the ring: `up` while every checked group has at least
 * `minAlive` alive nodes. Its details name nodes by their configured names and carry
 * error messages only — never an address with credentials, a username or a password.
 */
@Injectable()
export class RingRedisHealthIndicator {
  constructor(
    private readonly rings: RingRedisService,
    private readonly health: HealthIndicatorService,
  ) {}

  isHealthy<const Key extends string = 'ring-redis'>(
    key: Key = 'ring-redis' as Key,
    { group, minAlive = 1 }: RingRedisHealthOptions = {},
  ): HealthIndicatorResult<Key> {
    const session = this.health.check(key);
    // NaN (a query parameter that is not a number) would compare false: always up.
    if (!Number.isSafeInteger(minAlive) || minAlive < 0) {
      return session.down({
        message: `minAlive must be a whole number ≥ 0, got ${String(minAlive)}`,
      });
    }
    const names = group === undefined ? this.rings.names() : [group];
    const groups: Record<string, GroupDetails> = {};
    let up = true;
    for (const name of names) {
      const dict = this.rings.get(name);
      if (!dict) {
        return session.down({ message: `no ring group "${name}"`, groups });
      }
      const nodes: Record<string, NodeDetails> = {};
      let alive = 0;
      for (const state of dict.nodeStates()) {
        if (state.alive) alive++;
        const details: NodeDetails = {
          alive: state.alive,
          ejections: state.ejections,
          rediscoveries: state.rediscoveries,
        };
        if (state.ejectedAt) details.ejectedAt = state.ejectedAt.toISOString();
        if (state.lastError !== undefined) details.lastError = state.lastError;
        if (state.sentinel !== undefined) {
          details.sentinel = state.sentinel;
          if (state.master !== undefined) details.master = state.master;
          details.failovers = state.failovers ?? 0;
          if (state.lastFailover) {
            const { from, to, at } = state.lastFailover;
            details.lastFailover = { from, to, at: at.toISOString() };
          }
        }
        nodes[state.name] = details;
      }
      groups[name] = {
        alive,
        total: dict.totalHash.size,
        nodes,
        events: this.rings.recentEvents(name).map(({ type, node, at, master, failover }) => {
          const event: EventDetails = {
            type,
            ...(node === undefined ? {} : { node }),
            at: at.toISOString(),
          };
          if (master !== undefined) event.master = master;
          if (failover) event.failover = { from: failover.from, to: failover.to };
          return event;
        }),
      };
      if (alive < minAlive) up = false;
    }
    return up ? session.up({ groups }) : session.down({ groups });
  }
}
