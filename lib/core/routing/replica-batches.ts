import type { Redis } from 'ioredis';
import type { Fail, RingFailures } from '../membership/ring-failures.js';
import type { RingMembership } from '../membership/ring-membership.js';
import { isConnectionError } from '../node/connection-errors.js';
import type { RingNode } from '../node/ring-node.js';
import type { ReplicaPlacement } from './replica-placement.js';
import { hintWithoutStandIn } from './stand-in-hints.js';
import { addTo } from '../collections.js';
import type { RequestRouter } from './request-router.js';

/** What a batch runs on one node: its part of the entries, by index. */
export type BatchRun<R> = (client: Redis, indexes: number[], node: RingNode) => Promise<R>;

/**
 * The batch forms of the replicas' rules (see ReplicaOps), for `getMany`, `setMany` and
 * `deleteMany`: entries grouped by node, one command (or pipeline) per node, nodes in
 * parallel.
 */
export class ReplicaBatches<F> {
  constructor(
    private readonly membership: RingMembership,
    private readonly router: RequestRouter<F>,
    private readonly failures: RingFailures<F>,
    private readonly placement: ReplicaPlacement,
  ) {}

  /**
   * Every copy of every entry written: grouped by node, nodes in parallel. A node that fails
   * at the connection level is ejected, and each of its entries moves to the next node
   * clockwise holding no copy of it yet (recorded there for the hinted handoff). Answers
   * `onFail`'s result when some entry could be written nowhere.
   */
  async writeAll<R>(
    entries: readonly string[],
    run: BatchRun<R>,
    absorb: (indexes: number[], result: R) => void,
  ): Promise<Fail<F> | undefined> {
    if (this.membership.closed) throw this.failures.closedError();
    const claimed = entries.map((entry) => new Set(this.placement.targets(entry)));
    const landed = new Uint8Array(entries.length);
    const failed: RingNode[] = [];
    /** Entries a failed node missed with no node left to stand in for it. */
    const orphaned: number[] = [];
    let lastError: unknown;
    let groups = new Map<RingNode, number[]>();
    claimed.forEach((names, i) => {
      for (const name of names) addTo(groups, this.membership.node(name), i);
    });
    while (groups.size > 0) {
      const retry = new Map<RingNode, number[]>();
      await Promise.all(
        [...groups].map(async ([node, indexes]) => {
          const failure = await this.onNode(node, entries, indexes, true, run, absorb);
          if (failure === undefined) {
            for (const i of indexes) landed[i] = 1;
            return;
          }
          lastError = failure.error;
          failed.push(node);
          const ring = this.membership.ringWithout(failed);
          for (const i of indexes) {
            const next = this.placement.targets(entries[i], ring).find((n) => !claimed[i].has(n));
            if (next === undefined) {
              orphaned.push(i);
              continue;
            }
            claimed[i].add(next);
            addTo(retry, this.membership.node(next), i);
          }
        }),
      );
      groups = retry;
    }
    const hinted = orphaned.filter((i) => landed[i] === 1).map((i) => entries[i]);
    if (hinted.length > 0) {
      await hintWithoutStandIn(this.router, this.membership, this.placement, hinted, failed);
    }
    return landed.includes(0) ? this.failures.fail(lastError) : undefined;
  }

  /**
   * For the entries at `missed`, which their first target did not have: the next targets in
   * order, grouped by node, until one has each or none is left (`has` says, once `absorb` took
   * a node's answer). A node that fails is ejected and passed over.
   */
  async readMissed<R>(
    entries: readonly string[],
    missed: readonly number[],
    run: BatchRun<R>,
    absorb: (indexes: number[], result: R) => void,
    has: (index: number) => boolean,
  ): Promise<void> {
    const asked = new Map<number, Set<string>>(
      missed.map((i) => [i, new Set(this.placement.targets(entries[i]).slice(0, 1))]),
    );
    while (asked.size > 0) {
      const groups = new Map<RingNode, number[]>();
      for (const [i, names] of asked) {
        const next = this.placement.targets(entries[i]).find((name) => !names.has(name));
        if (next === undefined) asked.delete(i);
        else {
          names.add(next);
          addTo(groups, this.membership.node(next), i);
        }
      }
      await Promise.all(
        [...groups].map(async ([node, indexes]) => {
          const failure = await this.onNode(node, entries, indexes, false, run, absorb);
          if (failure === undefined) for (const i of indexes) if (has(i)) asked.delete(i);
        }),
      );
    }
  }

  /**
   * `run` on `node` for the entries at `indexes`, its answer handed to `absorb`. A connection
   * failure ejects the node and is answered (a reply error is thrown); undefined when it ran.
   */
  private async onNode<R>(
    node: RingNode,
    entries: readonly string[],
    indexes: number[],
    write: boolean,
    run: BatchRun<R>,
    absorb: (indexes: number[], result: R) => void,
  ): Promise<{ error: unknown } | undefined> {
    try {
      const batch = indexes.map((i) => entries[i]);
      absorb(indexes, await this.router.tryOn(node, batch, write, (c) => run(c, indexes, node)));
      return undefined;
    } catch (error) {
      if (!isConnectionError(error)) throw error;
      this.membership.eject(node, error);
      return { error };
    }
  }
}
