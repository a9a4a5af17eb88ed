import { Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { MAX_TIMER_MS, shown } from '../core/config/option-checks.js';
import type { RingDict, RingNodePing, RingNodeState } from '../core/index.js';
import { RingRedisService } from '../nest/ring-redis.service.js';

export interface RingRedisHealthOptions {
  /** Check only this group (default: every group). */
  group?: string;
  /**
   * Alive nodes each checked group needs to be `up` (default 1); 0 reports the details and is
   * always `up`. Anything but a whole number ≥ 0 reports `down`, naming the value.
   */
  minAlive?: number;
  /**
   * PING every node of the checked groups first, in parallel, over the ring's connections:
   * `true` (answer within 500 ms) or `{ timeout }` in ms, connecting included. A node then counts as alive
   * only if the ring has it and it answered, so a hung node shows with no traffic at all.
   */
  ping?: boolean | { timeout?: number };
}

/** The options with `ping` on: the answer comes after the PINGs, so it is a promise. */
type PingingOptions = RingRedisHealthOptions & { ping: true | { timeout?: number } };

/** How long `ping: true` waits for each node. */
const DEFAULT_PING_TIMEOUT = 500;

/**
 * The events of a `down` result: Terminus logs the whole result on failure, so it carries the
 * few that explain the outage, not the 20 of an `up` one.
 */
const DOWN_EVENTS = 3;

interface NodeDetails {
  alive: boolean;
  ejectedAt?: string;
  ejections: number;
  rediscoveries: number;
  lastError?: string;
  /** With `ping`: how the node answered. */
  ping?: NodePing;
  /** Groups with a near cache: whether the node's invalidation channel is up. */
  invalidation?: 'up' | 'down';
  /** Groups with a near cache: why the node refused CLIENT TRACKING, if it did. */
  invalidationError?: string;
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

/** Each checked group's PINGs, by node name. */
/** A node's answer to the health check's PING. */
type NodePing = { ok: true; ms: number } | { ok: false; error: string };

type GroupPings = Map<string, Map<string, NodePing>>;

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
    key: Key | undefined,
    options: PingingOptions,
  ): Promise<HealthIndicatorResult<Key>>;
  isHealthy<const Key extends string = 'ring-redis'>(
    key?: Key,
    options?: RingRedisHealthOptions & { ping?: false },
  ): HealthIndicatorResult<Key>;
  isHealthy<const Key extends string = 'ring-redis'>(
    key?: Key,
    options?: RingRedisHealthOptions,
  ): HealthIndicatorResult<Key> | Promise<HealthIndicatorResult<Key>>;
  isHealthy<const Key extends string = 'ring-redis'>(
    key: Key = 'ring-redis' as Key,
    options?: RingRedisHealthOptions | null,
  ): HealthIndicatorResult<Key> | Promise<HealthIndicatorResult<Key>> {
    const session = this.health.check(key);
    // null as none; a misspelt field (minAlvie) was ignored, and the check was up.
    const { group, minAlive = 1, ping } = options ?? {};
    const problem = unknownOption(options) ?? checkOptions(minAlive, ping);
    if (problem !== undefined) return session.down({ message: problem });
    const names = group === undefined ? this.rings.names() : [group];
    const missing = names.find((name) => !this.rings.get(name));
    if (missing !== undefined) {
      return session.down({ message: `no ring group "${missing}"`, groups: {} });
    }
    if (ping === undefined || ping === false) return this.report(key, names, minAlive);
    const timeout = ping === true ? DEFAULT_PING_TIMEOUT : (ping.timeout ?? DEFAULT_PING_TIMEOUT);
    return this.pingGroups(names, timeout).then((pings) =>
      this.report(key, names, minAlive, pings),
    );
  }

  /**
   * PINGs every node of `names`, all in parallel, over each dict's own connections: a node that
   * does not answer is ejected there and then, as a request would, so the next request does
   * not wait on it; one that answers again is brought back.
   */
  private async pingGroups(names: readonly string[], timeout: number): Promise<GroupPings> {
    const pings: GroupPings = new Map();
    await Promise.all(
      names.map(async (name) => {
        const dict = this.rings.get(name)!;
        // A dict closed, or closing (Nest serves requests during its shutdown hooks), PINGs
        // nothing: no node answered. Counted as answered, every node was alive meanwhile.
        const answers = await dict.ping({ timeout }).catch((error: unknown) =>
          dict.nodeStates().map(({ name: node }): RingNodePing => ({
            name: node,
            alive: false,
            ok: false,
            error: error instanceof Error ? error.message : String(error),
          })),
        );
        const byNode = new Map<string, NodePing>();
        for (const { name: node, ok, ms, error } of answers) {
          byNode.set(node, ok ? { ok: true, ms: ms ?? 0 } : { ok: false, error: error ?? '' });
        }
        pings.set(name, byNode);
      }),
    );
    return pings;
  }

  private report<Key extends string>(
    key: Key,
    names: readonly string[],
    minAlive: number,
    pings?: GroupPings,
  ): HealthIndicatorResult<Key> {
    const groups: Record<string, GroupDetails> = {};
    const reasons: string[] = [];
    for (const name of names) {
      const dict = this.rings.get(name)!;
      const details = this.groupDetails(name, dict, pings?.get(name));
      groups[name] = details;
      if (details.alive < minAlive) reasons.push(shortfall(name, details, minAlive));
    }
    const session = this.health.check(key);
    if (reasons.length === 0) return session.up({ groups });
    for (const details of Object.values(groups))
      details.events = details.events.slice(-DOWN_EVENTS);
    return session.down({ message: reasons.join('; '), groups });
  }

  private groupDetails(
    name: string,
    dict: RingDict<unknown, unknown>,
    pings?: Map<string, NodePing>,
  ): GroupDetails {
    const nodes: Record<string, NodeDetails> = {};
    let alive = 0;
    for (const state of dict.nodeStates()) {
      const details = nodeDetails(state);
      const ping = pings?.get(state.name);
      if (ping) details.ping = ping;
      if (state.alive && (ping === undefined || ping.ok)) alive++;
      nodes[state.name] = details;
    }
    return {
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
  }
}

const HEALTH_OPTIONS: ReadonlySet<string> = new Set(['group', 'minAlive', 'ping']);

/** A field the options should not have (one left undefined, by a spread say, is none). */
function unknownOption(options: unknown): string | undefined {
  if (options === undefined || options === null) return undefined;
  if (typeof options !== 'object' || Array.isArray(options)) {
    return `options must be an object such as { minAlive: 2 }, got ${shown(options)}`;
  }
  const field = Object.entries(options).find(([k, v]) => v !== undefined && !HEALTH_OPTIONS.has(k));
  return field && `unknown option "${field[0]}"; the options are group, minAlive, ping`;
}

/** What is wrong with the options, if anything. */
function checkOptions(minAlive: unknown, ping: unknown): string | undefined {
  // NaN (a query parameter that is not a number) would compare false: always up.
  if (!Number.isSafeInteger(minAlive) || (minAlive as number) < 0) {
    return `minAlive must be a whole number ≥ 0, got ${shown(minAlive)}`;
  }
  if (ping === undefined || typeof ping === 'boolean') return undefined;
  if (ping === null || typeof ping !== 'object' || Array.isArray(ping)) {
    return `ping must be true, false or { timeout }, got ${JSON.stringify(ping)}`;
  }
  const extra = Object.keys(ping).find((field) => field !== 'timeout');
  if (extra !== undefined) return `ping: unknown option "${extra}"; the option is timeout`;
  const { timeout } = ping as { timeout?: unknown };
  if (timeout !== undefined && (!Number.isSafeInteger(timeout) || (timeout as number) <= 0)) {
    return `ping.timeout must be a whole number of milliseconds > 0, got ${String(timeout)}`;
  }
  // A longer timer fires after 1 ms (setTimeout's limit): every node would fail at once.
  if (timeout !== undefined && (timeout as number) > MAX_TIMER_MS) {
    return `ping.timeout must be at most ${MAX_TIMER_MS} ms (about 24.8 days), got ${String(timeout)}`;
  }
  return undefined;
}

/** Why a group is down: `group "test": 1 of 3 nodes alive, minAlive 2 (node1: …)`. */
function shortfall(name: string, details: GroupDetails, minAlive: number): string {
  const why = Object.entries(details.nodes).flatMap(([node, n]) => {
    if (!n.alive)
      return [`${node}: ejected${n.lastError === undefined ? '' : ` (${n.lastError})`}`];
    if (n.ping && !n.ping.ok) return [`${node}: ${n.ping.error}`];
    return [];
  });
  const nodes = details.total === 1 ? 'node' : 'nodes';
  return `group "${name}": ${details.alive} of ${details.total} ${nodes} alive, minAlive ${minAlive}${why.length === 0 ? '' : ` (${why.join('; ')})`}`;
}

function nodeDetails(state: RingNodeState): NodeDetails {
  const details: NodeDetails = {
    alive: state.alive,
    ejections: state.ejections,
    rediscoveries: state.rediscoveries,
  };
  if (state.ejectedAt) details.ejectedAt = state.ejectedAt.toISOString();
  if (state.lastError !== undefined) details.lastError = state.lastError;
  if (state.invalidation !== undefined) details.invalidation = state.invalidation;
  if (state.invalidationError !== undefined) details.invalidationError = state.invalidationError;
  if (state.sentinel !== undefined) {
    details.sentinel = state.sentinel;
    if (state.master !== undefined) details.master = state.master;
    details.failovers = state.failovers ?? 0;
    if (state.lastFailover) {
      const { from, to, at } = state.lastFailover;
      details.lastFailover = { from, to, at: at.toISOString() };
    }
  }
  return details;
}
