import type { Redis } from 'ioredis';
import { addTo } from '../collections.js';
import type { HandoffRecorder } from '../handoff/handoff-recorder.js';
import { isFail, type Fail, type RingFailures } from '../membership/ring-failures.js';
import type { RingMembership } from '../membership/ring-membership.js';
import { isConnectionError } from '../node/connection-errors.js';
import type { RingMetrics } from '../metrics/ring-metrics.js';
import type { RingOperation } from '../metrics/ring-operations.js';
import type { RingNode } from '../node/ring-node.js';
import type { NodeReviver } from '../revival/node-reviver.js';
import { asIs, type EntryOp, type NodeOp } from './entry-ops.js';
import type { MigrationRoute } from './migration-route.js';
import type { WarmUp } from './warm-up.js';

/**
 * Sends the ring's requests: each to the node owning its entry, and on a connection-class
 * failure ejects that node and retries on the next alive owner, each node tried at most once
 * per request. A reply error is the caller's and never ejects. Batches go out grouped by
 * owner, nodes in parallel, with the same rules per node.
 */
export class RequestRouter<F> {
  /** Commands of this ring sent and not yet answered: under load, writes are batched. */
  private inFlight = 0;

  constructor(
    private readonly membership: RingMembership,
    private readonly reviver: NodeReviver,
    private readonly recorder: HandoffRecorder,
    private readonly failures: RingFailures<F>,
    private readonly commandTimeout: number,
    private readonly warmUp: WarmUp,
    private readonly migration: MigrationRoute<F>,
    /** Undefined unless an SDK records: then no request pays for metrics. */
    private readonly metrics?: RingMetrics,
  ) {}

  /**
   * Runs `op` on the node owning `entry` and answers `done` of its reply, or `failed` of the
   * failure when no node can serve it. `write` says whether `op` changes the entry
   * (remembered for hinted handoff); `operation` is the dict's method, for the metrics.
   *
   * Not async: in the everyday case (the owner is connected and no write needs a hint) a
   * request is one `send` and one `then`, without the async frames of the general path,
   * which made most of the ring's own garbage per request. Everything else, and any retry
   * after a failure, takes the general path, `routeFrom`.
   */
  route<T, R, G = F>(
    entry: string,
    op: EntryOp<T>,
    write: boolean,
    done: Done<T, R>,
    failed: (fail: Fail<F>) => G,
    operation: RingOperation,
  ): Promise<R | G> {
    op = this.measuredOp(operation, op);
    if (this.migration.on && !this.membership.closed) {
      return this.finish(this.migration.route(entry, op, write), entry, {}, done, failed);
    }
    if (this.warmUp.on) {
      const warm = this.warmUp.route<T, F>(entry, op, write, this.direct);
      return this.finish(warm, entry, {}, done, failed);
    }
    return this.routeNow(entry, op, write, done, failed);
  }

  /** `route` over the rings as they are (no warm-up). */
  private routeNow<T, R, G = F>(
    entry: string,
    op: EntryOp<T>,
    write: boolean,
    done: Done<T, R>,
    failed: (fail: Fail<F>) => G,
  ): Promise<R | G> {
    if (this.membership.closed) {
      return Promise.reject(this.failures.closedError());
    }
    this.reviver.probe(entry);
    const node = this.membership.pick(entry);
    if (node === undefined || !node.ready || (write && this.recorder.needed)) {
      const answered: Answered = {};
      return this.finish(
        this.routeFrom(node, entry, write, op, answered),
        entry,
        answered,
        done,
        failed,
      );
    }
    return this.dispatch(node, op, entry).then(
      (reply) => {
        this.settled(node);
        return done(reply, entry, node);
      },
      (error: unknown) => {
        this.settled(node);
        // routeFrom's rule, kept here to spare the everyday path a frame: a reply error means
        // the node answered (the caller's problem); a connection error moves on to the next.
        if (!isConnectionError(error)) throw error;
        const tried: RingNode[] = [];
        const next = this.failOver(node, entry, error, tried);
        const answered: Answered = {};
        return this.finish(
          this.routeFrom(next, entry, write, op, answered, tried, error),
          entry,
          answered,
          done,
          failed,
        );
      },
    );
  }

  /** `op` timed and counted for the metrics as `operation`, or as it is when none record. */
  measuredOp<T>(operation: RingOperation, op: EntryOp<T>): EntryOp<T> {
    return this.metrics === undefined ? op : this.metrics.entryOp(operation, op);
  }

  /** `run` timed and counted for the metrics as `operation`, or as it is when none record. */
  measured<R>(
    operation: RingOperation,
    run: (client: Redis, indexes: number[], node: RingNode) => Promise<R>,
    hits?: (result: R) => number,
  ): (client: Redis, indexes: number[], node: RingNode) => Promise<R> {
    return this.metrics === undefined ? run : this.metrics.batchRun(operation, run, hits);
  }

  /**
   * The batch form of `route`: entries grouped by owner, `run` once per node with that
   * node's entries, nodes in parallel. A node that fails at the connection level is
   * ejected and its entries regrouped over the next owners; nodes that answered may take
   * more. Answers `onFail`'s result when some entries have no node left. `operation` names
   * the batch for the metrics; `hits` counts the entries a read's result found.
   */
  async routeMany<R>(
    entries: readonly string[],
    run: (client: Redis, indexes: number[], node: RingNode) => Promise<R>,
    absorb: (indexes: number[], result: R) => void,
    write: boolean,
    operation: RingOperation,
    hits?: (result: R) => number,
  ): Promise<Fail<F> | undefined> {
    if (this.membership.closed) throw this.failures.closedError();
    run = this.measured(operation, run, hits);
    if (this.migration.on) return this.migration.routeMany(entries, run, absorb, write);
    // Each entry may probe its owner, as a single request would.
    if (this.membership.anyEjected) for (const entry of entries) this.reviver.probe(entry);
    let lastError: unknown;
    let homeless = false;
    const failed = new Set<RingNode>();
    const regroup = (indexes: readonly number[], into: Map<RingNode, number[]>) => {
      const ring = this.membership.ringWithout(failed);
      for (const i of indexes) {
        const next = ring.locate(entries[i]);
        if (next === undefined) homeless = true;
        else addTo(into, this.membership.node(next), i);
      }
    };
    let groups = new Map<RingNode, number[]>();
    regroup(
      entries.map((_, i) => i),
      groups,
    );
    while (groups.size > 0) {
      if (this.membership.closed) throw this.failures.closedError();
      const retry = new Map<RingNode, number[]>();
      await Promise.all(
        [...groups].map(async ([node, indexes]) => {
          try {
            const batch = indexes.map((i) => entries[i]);
            const result = await this.attempt(node, batch, write, (client) =>
              run(client, indexes, node),
            );
            absorb(indexes, result);
          } catch (error) {
            if (!isConnectionError(error)) throw error;
            lastError = error;
            this.membership.eject(node, error);
            failed.add(node);
            regroup(indexes, retry);
          }
        }),
      );
      groups = retry;
    }
    if (write && this.warmUp.on) await this.warmUp.invalidateMany(entries);
    return homeless ? this.failures.fail(lastError) : undefined;
  }

  /**
   * One try of `op` on `node`, no failover: connected first if need be, a write recorded for
   * hinted handoff as `route` records it. For the replicas, which choose the nodes themselves.
   */
  tryOn<T, E extends string | readonly string[]>(
    node: RingNode,
    entries: E,
    write: boolean,
    op: NodeOp<T, E>,
  ): Promise<T> {
    if (this.membership.closed) return Promise.reject(this.failures.closedError());
    // The everyday case without the async frames of `attempt`, as in `route`.
    if (node.ready && !(write && this.recorder.needed)) return this.sendOn(node, op, entries);
    return this.attempt(node, entries, write, op);
  }
  /** For the warm-up: a request answering its reply or its failure as they are. */
  private readonly direct = <T>(entry: string, op: EntryOp<T>, write: boolean) =>
    this.routeNow<T, T, Fail<F>>(entry, op, write, asIs, asIs);

  /** `done` of what the general path answered, or `failed` of its failure (onFail's result). */
  private finish<T, R, G>(
    result: Promise<T | Fail<F>>,
    entry: string,
    answered: Answered,
    done: Done<T, R>,
    failed: (fail: Fail<F>) => G,
  ): Promise<R | G> {
    return result.then((reply) =>
      isFail<F>(reply) ? failed(reply) : done(reply, entry, answered.node),
    );
  }

  /**
   * The general path of `route`, from `node` on; `tried` and `lastError` say what failed
   * before.
   */
  private async routeFrom<T>(
    node: RingNode | undefined,
    entry: string,
    write: boolean,
    op: EntryOp<T>,
    answered: Answered,
    tried: RingNode[] = [],
    lastError?: unknown,
  ): Promise<T | Fail<F>> {
    while (node !== undefined) {
      // Closed while this request was failing over: it must not open a connection again.
      if (this.membership.closed) throw this.failures.closedError();
      try {
        const reply = await this.attempt(node, entry, write, op);
        answered.node = node;
        return reply;
      } catch (error) {
        if (!isConnectionError(error)) throw error;
        lastError = error;
        node = this.failOver(node, entry, error, tried);
      }
    }
    return this.failures.fail(lastError);
  }

  /** `node` failed at the connection level: eject it and name the next owner of `entry`. */
  private failOver(
    node: RingNode,
    entry: string,
    error: unknown,
    tried: RingNode[],
  ): RingNode | undefined {
    this.membership.eject(node, error);
    tried.push(node);
    return this.membership.nextOwner(entry, tried);
  }

  /**
   * One try on one node: connect if needed, then send. A write that lands here on behalf of
   * an ejected owner is recorded first, so the owner is brought up to date when it returns.
   */
  private async attempt<T, E extends string | readonly string[]>(
    node: RingNode,
    entries: E,
    write: boolean,
    op: NodeOp<T, E>,
  ): Promise<T> {
    if (!node.ready) await node.connect(this.commandTimeout);
    const onBehalf =
      write && this.recorder.needed ? this.recorder.onBehalf(node, entries) : undefined;
    if (onBehalf) await this.recorder.prepare(node, onBehalf);
    try {
      return await this.sendOn(
        node,
        onBehalf ? this.recorder.withHints(node, onBehalf, op) : op,
        entries,
      );
    } finally {
      if (onBehalf) await this.recorder.settle(node, onBehalf);
    }
  }

  /**
   * Sends `op` on `node` (connected), batching writes under load; reports the answer — or
   * the failure — to the node's deadline watch.
   */
  private sendOn<T, E>(node: RingNode, op: NodeOp<T, E>, entries: E): Promise<T> {
    return this.dispatch(node, op, entries).then(
      (reply) => {
        this.settled(node);
        return reply;
      },
      (error: unknown) => {
        this.settled(node);
        throw error;
      },
    );
  }

  /** sendOn without the `then`: the caller calls settled() once the promise settles. */
  private dispatch<T, E>(node: RingNode, op: NodeOp<T, E>, entries: E): Promise<T> {
    if (this.inFlight > 0) node.batchWrites();
    this.inFlight++;
    try {
      return node.send(op, entries);
    } catch (error) {
      // The caller settles this rejection like any other.
      return Promise.reject(error);
    }
  }

  private settled(node: RingNode): void {
    node.answered();
    this.inFlight--;
  }
}

/** What a request's reply is mapped by: `node` is the node that answered. */
export type Done<T, R> = (reply: T, entry: string, node?: RingNode) => R;

/** Where the general path of `route` was answered from (set as it goes). */
interface Answered {
  node?: RingNode;
}
