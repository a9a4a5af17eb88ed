import type { HandoffCatchUp } from '../handoff/handoff-catch-up.js';
import type { FleetView } from '../fleet/fleet-view.js';
import { HashRing, sameNodes, type HashRingOptions } from '../hashing/hash-ring.js';
import {
  capacitiesOf,
  checkedNodes,
  type NodeAddress,
  type ResolvedRingNodeConfig,
  type RingNodesConfig,
} from '../config/ring-config.js';
import { inGroup } from '../config/ring-dict-options.js';
import { RingError } from '../errors.js';
import { isConnectionError, RingConnectionError } from '../node/connection-errors.js';
import type { RingNode } from '../node/ring-node.js';
import type { MigrationRoute } from '../routing/migration-route.js';
import type { ReplicaPlacement } from '../routing/replica-placement.js';
import type { WarmUp } from '../routing/warm-up.js';
import { unlinkPrefix } from '../scan/scan-keys.js';
import type { RingMembership } from './ring-membership.js';

/** How long a leaving node may take to answer what is in flight on it before it is dropped. */
const LEAVE_TIMEOUT_MS = 2_000;

export interface MembershipChangeOptions {
  /** The dict's name, for messages. */
  name: string;
  prefix: string;
  connectTimeout: number;
  /** The hash ring's options, the same for every membership. */
  ring: HashRingOptions;
}

/** What a change works with. */
export interface MembershipChangeParts {
  membership: RingMembership;
  fleet: FleetView;
  catchUp: HandoffCatchUp;
  warmUp: WarmUp;
  /** The migration option's route: the membership cannot change while it lasts. */
  migration: MigrationRoute<unknown>;
  /** Where each entry's copies live: the sweep after a window deletes the copies that moved. */
  placement: ReplicaPlacement;
  /** A node of the ring, not connected yet. */
  makeNode(name: string, node: ResolvedRingNodeConfig, address: NodeAddress): RingNode;
  /**
   * Keys moved to other nodes with no node joining or leaving (new capacities, a migration
   * ended): the near cache drops what it holds, whose nodes never see the writes made at the
   * keys' new owners. Joins and leaves drop it by their events.
   */
  keysMoved(): void;
}

/** What one change does, worked out before anything changes. */
interface Plan {
  total: HashRing;
  joining: RingNode[];
  leaving: RingNode[];
  configs: Map<string, string>;
}

/**
 * `setNodes()`: a new membership at run time, as go-redis' `Ring.SetAddrs`. Nodes are known
 * by name: an unchanged one keeps its connection, a new one (or one whose connection
 * changed) connects and joins, one no longer named leaves the rings, finishes what is in
 * flight on it, then closes; a new capacity re-weights. The new rings are built off to the
 * side and swapped in one step. Changes run one after the other.
 *
 * Keys that moved stay where they were until the warm-up window ends (see WarmUp); then the
 * former owners' copies are deleted, so none can be served again should the node that took
 * them leave later. A node that leaves is marked so that whoever adds it back clears it first.
 */
export class MembershipChange {
  private queue: Promise<void> = Promise.resolve();
  /** Each member's connection as configured, to tell an unchanged node. */
  private configs: Map<string, string>;
  /** The sweep of the last change's former owners, once its window ended. */
  private sweeping: Promise<void> = Promise.resolve();
  private previous?: HashRing;

  constructor(
    private readonly parts: MembershipChangeParts,
    private readonly options: MembershipChangeOptions,
    nodes: Record<string, ResolvedRingNodeConfig>,
  ) {
    this.configs = new Map(Object.entries(nodes).map(([name, node]) => [name, configOf(node)]));
  }

  /** Applies `nodes` once the changes before it are done; rejects on bad input, changing nothing. */
  apply(nodes: RingNodesConfig): Promise<void> {
    const change = this.queue.then(() => this.change(nodes));
    this.queue = change.catch(() => undefined);
    return change;
  }

  /**
   * The migration from `from` ended: for the warm-up window, misses are looked up where `from`
   * placed them (without copies, see WarmUp.begin) and writes delete there — on the nodes only
   * `from` named too, while they are open — then their copies there are swept.
   */
  migrated(from: HashRing): void {
    this.parts.keysMoved();
    void this.queue.then(() => {
      this.previous = from;
      const { migration, warmUp } = this.parts;
      warmUp.begin(
        from,
        () => this.windowEnded(),
        false,
        (name) => migration.formerNode(name),
      );
    });
  }

  /** Stops the warm-up and the migration (closing the nodes only it used). */
  async close(): Promise<void> {
    this.parts.warmUp.end();
    await this.parts.migration.end(true);
  }

  private async change(nodes: RingNodesConfig): Promise<void> {
    const { membership, warmUp } = this.parts;
    if (membership.closed) throw new RingError(`RingDict "${this.options.name}" is closed`);
    if (this.parts.migration.on) {
      throw new RingError(
        `RingDict "${this.options.name}": setNodes() is refused while the migration option lasts (until its \`until\`)`,
      );
    }
    const plan = this.plan(nodes);
    // The last change's window ends now: its former owners are swept before owners change again.
    if (warmUp.on) this.windowEnded();
    await this.sweeping;
    await Promise.all(plan.joining.map((node) => this.prepare(node, plan.leaving)));
    if (membership.closed) {
      // close() ran while they connected: no member list holds them, so close() did not.
      await Promise.all(plan.joining.map((node) => node.close(LEAVE_TIMEOUT_MS)));
      throw new RingError(`RingDict "${this.options.name}" is closed`);
    }
    const before = membership.totalHash;
    membership.swap(plan.total, plan.joining, plan.leaving);
    // A node joining or leaving drops the near cache by its event; new capacities alone move
    // keys with none, and an unchanged list (a reconciling loop) moves nothing.
    if (plan.joining.length + plan.leaving.length === 0 && !sameNodes(before, plan.total)) {
      this.parts.keysMoved();
    }
    this.configs = plan.configs;
    for (const node of plan.joining) this.parts.fleet.join(node);
    this.previous = before;
    warmUp.begin(before, () => this.windowEnded());
    await Promise.all(
      plan.leaving.map((node) =>
        // A node reconnected to the same server under its name keeps that server's entries.
        this.leave(node, !plan.joining.some((other) => other.runId === node.runId)),
      ),
    );
  }

  /** Checks `nodes` and works out the change; throws RingConfigError, having changed nothing. */
  private plan(nodes: RingNodesConfig): Plan {
    const { name, ring } = this.options;
    const { nodes: resolved, addresses } = checkedNodes(nodes, name);
    const total = inGroup(name, () => new HashRing(capacitiesOf(resolved), ring));
    const configs = new Map<string, string>();
    const joining: RingNode[] = [];
    const leaving: RingNode[] = [];
    for (const [node, config] of Object.entries(resolved)) {
      const signature = configOf(config);
      configs.set(node, signature);
      const member = this.parts.membership.find(node);
      if (member !== undefined && this.configs.get(node) === signature) continue;
      if (member !== undefined) leaving.push(member);
      joining.push(this.parts.makeNode(node, config, addresses.get(node)!));
    }
    for (const member of this.parts.membership.all()) {
      if (!configs.has(member.name)) leaving.push(member);
    }
    return { total, joining, leaving, configs };
  }

  /**
   * Connects a joining node and clears the dict's entries on it: it may have been a member
   * before (of this or another process), and its entries missed the writes made meanwhile.
   * One that cannot be reached joins ejected: the heartbeat brings it in, cleared the same
   * way, through the catch-up of any returning node.
   */
  private async prepare(node: RingNode, leaving: readonly RingNode[]): Promise<void> {
    // With no prefix every key of the server would go: the retire mark alone tells then.
    node.mustClear = this.options.prefix !== '';
    this.parts.membership.vet(node, leaving);
    try {
      await node.connect(this.options.connectTimeout, 'allow');
      await this.parts.catchUp.clearUntrusted(node);
    } catch (error) {
      node.health.lastError = node.describe(error);
      node.health.eject(node.health.lastError);
      node.drop();
    }
  }

  /** A node left the rings: marked, then closed once what is in flight on it is answered. */
  private async leave(node: RingNode, retire: boolean): Promise<void> {
    const started = performance.now();
    await this.parts.fleet.leave(node);
    if (retire && node.ready) await node.retire().catch(() => undefined);
    // QUIT is answered after every command sent before it: requests in flight finish. A node
    // that does not answer by the deadline is dropped.
    await node.close(Math.max(1, LEAVE_TIMEOUT_MS - (performance.now() - started)));
  }

  /**
   * The window after a change ended: the entries whose copies moved are deleted from the
   * nodes that held a copy before and hold none now. Needs a prefix: with none, every key of
   * the servers would be scanned and judged; their copies then stay until their TTL.
   */
  private windowEnded(): void {
    const previous = this.previous;
    this.previous = undefined;
    this.parts.warmUp.end();
    if (previous === undefined || this.options.prefix === '') return;
    this.sweeping = this.sweep(previous).catch(() => undefined);
  }

  private async sweep(previous: HashRing): Promise<void> {
    const { membership } = this.parts;
    const total = membership.totalHash;
    const { placement } = this.parts;
    // Every copy, not the owner's alone: with replicas, a node that held an entry's second
    // copy and holds none after the change missed the writes and deletes made since, and
    // would answer them again once it is a copy of the entry anew (the node that joined
    // leaves): a deleted entry back.
    await Promise.all(
      previous.nodes.map(async (name) => {
        const node = membership.find(name);
        if (node === undefined || membership.closed) return;
        try {
          if (!node.ready) throw new RingConnectionError('not connected');
          await unlinkPrefix(
            node.client,
            this.options.prefix,
            (entry) =>
              placement.holds(name, entry, previous) && !placement.holds(name, entry, total),
          );
        } catch (error) {
          if (isConnectionError(error)) this.unswept(node, error);
        }
      }),
    );
  }

  /**
   * `node` could not be swept (out, hung, or cut as the sweep ran): it keeps copies of entries
   * it is no home of, which the writes and deletes made since never reach, and would serve them
   * once it is a home again (with replicas 2, 16–28 of 200 deleted or overwritten entries came
   * back). Out of the ring until its revival clears it, as a node that joins is. A reply error
   * (an ACL without SCAN, say) leaves it in: the copies then stay until their TTL.
   */
  private unswept(node: RingNode, error: unknown): void {
    node.mustClear = true;
    this.parts.membership.eject(
      node,
      new RingConnectionError(
        `the copies that moved off it were not deleted (${node.describe(error)})`,
      ),
    );
  }
}

/** A node's connection as configured, as a string: equal strings, unchanged node. */
export function configOf(node: ResolvedRingNodeConfig): string {
  const connection = node.connection;
  return typeof connection === 'string' ? connection : JSON.stringify(connection);
}
