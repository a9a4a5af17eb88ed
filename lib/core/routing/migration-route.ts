import type { Redis } from 'ioredis';
import type { ResolvedMigration } from '../config/migration-option.js';
import type { NodeAddress, ResolvedRingNodeConfig } from '../config/ring-config.js';
import { HashRing, type HashRingOptions } from '../hashing/hash-ring.js';
import { addTo } from '../collections.js';
import { allToWire } from '../keys/wire.js';
import type { RingMembership } from '../membership/ring-membership.js';
import type { Fail } from '../membership/ring-failures.js';
import type { MigrationView } from '../read-through.js';
import { isConnectionError } from '../node/connection-errors.js';
import type { RingNode } from '../node/ring-node.js';
import { unlinkPrefix } from '../scan/scan-keys.js';
import type { EntryOp } from './entry-ops.js';
import { MAX_TIMER_MS } from '../config/option-checks.js';

/**
 * How long past `until` the nodes named only in `from` stay open, for the deletes of the
 * warm-up: processes pass `until` as far apart as their clocks and timers disagree.
 */
const UNTIL_SKEW_MS = 1_000;

export interface MigrationParts<F> {
  membership: RingMembership;
  /** No node of `from` could serve a request: onFail's answer, or the error to throw. */
  fail(lastError: unknown): Fail<F>;
  /** The node of `from` named `name`: a member when it is the same node, else a new one. */
  nodeFor(name: string, node: ResolvedRingNodeConfig, address: NodeAddress): RingNode;
  /** The migration ended: the dict goes on with its own nodes (see MembershipChange). */
  ended(from: HashRing): void;
}

/**
 * A rolling change of membership across processes (mcrouter's migrate route, inside the
 * client). Until `until`, processes still configured with `from` and processes configured
 * with the new nodes share the keys: this dict reads where `from` places an entry — where the
 * others read and write — and writes there too, deleting the entry where the new nodes place
 * it, so that no copy there can be stale once the new placement is used. At its start the
 * new owners' copies of moved entries are deleted, for the same reason. After `until` the
 * dict uses its own nodes; for the warm-up window its misses are looked up on the `from`
 * owners still members, and its writes delete there (see WarmUp) — on the nodes named only in
 * `from` too, for UNTIL_SKEW_MS, after which they are closed.
 */
export class MigrationRoute<F = never> implements MigrationView {
  /** True until `until`: the router takes the migration's path. */
  on = false;
  /** The ring of the nodes before the change (empty without a migration). */
  readonly from: HashRing;
  private readonly nodes = new Map<string, RingNode>();
  /**
   * The nodes of `from` that are not the dict's own (named only in `from`, or another server
   * under a member's name), until closed. Known when the dict is made: a member that a later
   * `setNodes` takes out is not the migration's to close.
   */
  private readonly own = new Map<string, RingNode>();
  private readonly migration?: ResolvedMigration;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly parts: MigrationParts<F>,
    migration: ResolvedMigration | undefined,
    ring: HashRingOptions,
    private readonly options: { prefix: string; commandTimeout: number },
  ) {
    // Over already: nothing of it is built.
    this.migration =
      migration !== undefined && migration.until > Date.now() ? migration : undefined;
    const capacities: Record<string, number> = {};
    for (const [name, node] of Object.entries(this.migration?.from ?? {})) {
      capacities[name] = node.capacity;
      const made = parts.nodeFor(name, node, this.migration!.addresses.get(name)!);
      this.nodes.set(name, made);
      if (!parts.membership.isMember(made)) this.own.set(name, made);
    }
    this.from = new HashRing(this.migration === undefined ? {} : capacities, ring);
  }

  /** The nodes of `from`, those shared with the dict's own included (for the scans). */
  fromNodes(): Iterable<RingNode> {
    return this.nodes.values();
  }

  /** Whether the dict has a migration (not over when the dict was made). */
  get configured(): boolean {
    return this.migration !== undefined;
  }

  /** Starts the migration, unless it is over already; deletes the new owners' copies of moved entries. */
  start(): void {
    if (this.migration === undefined || this.migration.until <= Date.now()) return;
    this.on = true;
    this.wait();
    void this.sweep().catch(() => undefined);
    // Connected now, not at their first key: after `until` the warm-up deletes there only
    // while connected (see formerNode), and this process may read nothing there before.
    for (const node of this.own.values()) void this.ready(node).catch(() => undefined);
  }

  /**
   * Ends it now: at `until` (its own nodes, named only in `from`, stay open UNTIL_SKEW_MS
   * more, see `formerNode`), or when the dict closes.
   */
  async end(closing = false): Promise<void> {
    if (this.on) {
      this.on = false;
      clearTimeout(this.timer);
      if (!closing) {
        this.timer = setTimeout(() => void this.closeOwn(), UNTIL_SKEW_MS);
        this.timer.unref();
        return this.parts.ended(this.from);
      }
    }
    await this.closeOwn();
  }

  /**
   * The node of `from` named `name` that only the migration uses, while it is open: just after
   * `until` the warm-up deletes there what is written elsewhere, for the processes whose clocks
   * have not reached `until` yet and still read there.
   */
  formerNode(name: string): RingNode | undefined {
    return this.own.get(name);
  }

  /** The nodes only the migration uses, until they close. */
  ownNodes(): IterableIterator<RingNode> {
    return this.own.values();
  }

  /** Closes the nodes only the migration uses (UNTIL_SKEW_MS after `until`, or the dict closes). */
  private async closeOwn(): Promise<void> {
    clearTimeout(this.timer);
    const own = [...this.own.values()];
    this.own.clear();
    await Promise.all(own.map((node) => node.close(this.options.commandTimeout)));
  }

  /**
   * `op` on the entry where `from` places it; a write also deletes it where the new nodes do.
   * With no node of `from` left, the dict's failure (onFail's answer or
   * RingClusterUnavailableError), as without a migration.
   */
  async route<T>(entry: string, op: EntryOp<T>, write: boolean): Promise<T | Fail<F>> {
    const failed = new Set<string>();
    for (;;) {
      const node = this.ownerOf(entry, failed);
      try {
        const reply = await op(await this.ready(node), entry);
        if (write) await this.dropNew(node, [entry]);
        return reply;
      } catch (error) {
        if (!isConnectionError(error)) throw error;
        failed.add(node.name);
        if (failed.size >= this.from.size) return this.parts.fail(error);
      }
    }
  }

  /**
   * The batch form of `route`: entries grouped by their `from` owner, nodes in parallel; a node
   * that fails at the connection level has its entries regrouped over the next owners.
   */
  async routeMany<R>(
    entries: readonly string[],
    run: (client: Redis, indexes: number[], node: RingNode) => Promise<R>,
    absorb: (indexes: number[], result: R) => void,
    write: boolean,
  ): Promise<Fail<F> | undefined> {
    const failed = new Set<string>();
    let pending = entries.map((_, i) => i);
    let lastError: unknown;
    while (pending.length > 0) {
      if (failed.size >= this.from.size) return this.parts.fail(lastError);
      const groups = new Map<RingNode, number[]>();
      for (const i of pending) {
        addTo(groups, this.ownerOf(entries[i], failed), i);
      }
      pending = [];
      await Promise.all(
        [...groups].map(async ([node, indexes]) => {
          try {
            absorb(indexes, await run(await this.ready(node), indexes, node));
          } catch (error) {
            if (!isConnectionError(error)) throw error;
            lastError = error;
            failed.add(node.name);
            pending.push(...indexes);
            return;
          }
          if (write)
            await this.dropNew(
              node,
              indexes.map((i) => entries[i]),
            );
        }),
      );
    }
    return undefined;
  }

  /** The `from` owner of `entry`, the nodes in `failed` left out. */
  private ownerOf(entry: string, failed: ReadonlySet<string>): RingNode {
    let ring = this.from;
    for (const name of failed) ring = ring.without(name);
    return this.nodes.get(ring.locate(entry)!)!;
  }

  private async ready(node: RingNode): Promise<Redis> {
    if (!node.ready) await node.connect(this.options.commandTimeout);
    return node.client;
  }

  /** Deletes `entries` on their new owners, but on `written`, which holds them now. */
  private async dropNew(written: RingNode, entries: readonly string[]): Promise<void> {
    const { membership } = this.parts;
    const byNode = new Map<RingNode, string[]>();
    for (const entry of entries) {
      const owner = membership.find(membership.totalHash.locate(entry)!);
      if (owner === undefined || owner === written || !owner.ready) continue;
      addTo(byNode, owner, entry);
    }
    await Promise.all(
      [...byNode].map(([node, list]) => node.client.del(...allToWire(list)).catch(() => undefined)),
    );
  }

  /**
   * Each member's copies of entries it owns now but `from` places elsewhere: left from an
   * earlier placement, they would be served once the new placement is used. Needs a prefix.
   */
  private async sweep(): Promise<void> {
    const { membership } = this.parts;
    if (this.options.prefix === '') return;
    await Promise.all(
      [...membership.all()].map(async (node) => {
        const name = node.name;
        const from = this.nodes.get(name);
        await this.ready(node);
        await unlinkPrefix(
          node.client,
          this.options.prefix,
          (entry) =>
            membership.totalHash.locate(entry) === name &&
            (from !== node || this.from.locate(entry) !== name),
        );
      }),
    );
  }

  /** Ends the migration at `until`, in steps of at most MAX_TIMER_MS. */
  private wait(): void {
    const left = this.migration!.until - Date.now();
    if (left <= 0) {
      void this.end();
      return;
    }
    this.timer = setTimeout(() => this.wait(), Math.min(left, MAX_TIMER_MS));
    this.timer.unref();
  }
}
