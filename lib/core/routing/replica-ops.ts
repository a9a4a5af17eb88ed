import { type Fail, type RingFailures } from '../membership/ring-failures.js';
import type { RingMembership } from '../membership/ring-membership.js';
import { isConnectionError } from '../node/connection-errors.js';
import type { RingNode } from '../node/ring-node.js';
import type { NodeReviver } from '../revival/node-reviver.js';
import { DEL, type EntryOp } from './entry-ops.js';
import type { RingOperation } from '../metrics/ring-operations.js';
import type { ReplicaPlacement } from './replica-placement.js';
import { hintWithoutStandIn } from './stand-in-hints.js';
import type { Done, RequestRouter } from './request-router.js';

/** How the replies of several copies make one, per command; the first copy's otherwise. */
const MERGES = new Map<EntryOp<never>, (a: number, b: number) => number>([
  // A delete removed the entry when any copy had it.
  [DEL as EntryOp<never>, (a, b) => Math.max(a, b)],
]);

/** A copy's write could go nowhere: every node it might land on failed or holds a copy already. */
const NOWHERE = Symbol('nowhere');

/**
 * Single-entry requests of a dict whose entries have several copies (the `replicas` option),
 * with the router's rules per node:
 *
 * - a write (or delete) goes to every target in parallel; a copy whose node fails at the
 *   connection level is ejected and its write moves on to the next node clockwise that holds
 *   no copy yet, recorded there for the hinted handoff like any write on behalf of a node out.
 *   The call answers once every copy is settled, with the first target's reply (a delete: true
 *   when any copy was removed); it fails only when no copy could be written. A reply error of
 *   any copy is thrown, as the write did not land everywhere.
 * - a read goes to the owner (with the router's fail-over to the next alive node, which is the
 *   next copy), and on a miss to the next copies in order, until one has it.
 *
 * A missed owner is not written back from the copy that had the entry, though such a read
 * costs about twice an owner's hit (bench section 13: 0.53× the throughput): a read cannot tell
 * an entry the owner never received from one another process deleted since the copy was read,
 * so a repair could bring a deleted value back. The entry's next write refills the owner.
 */
export class ReplicaOps<F> {
  constructor(
    private readonly membership: RingMembership,
    private readonly router: RequestRouter<F>,
    private readonly reviver: NodeReviver,
    private readonly failures: RingFailures<F>,
    private readonly placement: ReplicaPlacement,
  ) {}

  /** `RequestRouter.route`, over every copy (see the class). */
  route<T, R, G = F>(
    entry: string,
    op: EntryOp<T>,
    write: boolean,
    done: Done<T, R>,
    failed: (fail: Fail<F>) => G,
    operation: RingOperation,
  ): Promise<R | G> {
    if (write) return this.writeAll(entry, op, done, failed, operation);
    // A miss's next copies are read inside `done`: the everyday hit costs what it costs
    // without replicas (bench section 13: 1.05× the throughput of one copy, client CPU 4.9 µs
    // a get against 4.7). The promise `done` answers then is adopted by the router's own.
    const read: Done<T, R | Promise<R>> = (reply, at, node) =>
      reply === null || reply === 0
        ? this.readNext(entry, this.router.measuredOp(operation, op), reply, node).then((found) =>
            done(found, at),
          )
        : done(reply, at, node);
    return this.router.route(entry, op, false, read, failed, operation) as Promise<R | G>;
  }

  /**
   * After `answered` missed `entry`, the next targets in order until one has it; the miss
   * otherwise. A target that fails is ejected and passed over (its stand-in is met instead).
   */
  private async readNext<T>(
    entry: string,
    op: EntryOp<T>,
    miss: T,
    answered: RingNode | undefined,
  ): Promise<T> {
    const asked = new Set<string>(answered ? [answered.name] : []);
    for (;;) {
      const next = this.placement.targets(entry).find((name) => !asked.has(name));
      if (next === undefined) return miss;
      asked.add(next);
      const node = this.membership.node(next);
      try {
        const reply = await this.router.tryOn(node, entry, false, op);
        if (reply !== null && reply !== 0) return reply;
      } catch (error) {
        if (!isConnectionError(error)) throw error;
        this.membership.eject(node, error);
      }
    }
  }

  /**
   * Every copy written in parallel (see the class): promise chains rather than async frames,
   * as a write with two copies is sent twice as often as one without.
   */
  private writeAll<T, R, G>(
    entry: string,
    op: EntryOp<T>,
    done: Done<T, R>,
    failed: (fail: Fail<F>) => G,
    operation: RingOperation,
  ): Promise<R | G> {
    if (this.membership.closed) return Promise.reject(this.failures.closedError());
    this.reviver.probe(entry);
    const merge = MERGES.get(op as EntryOp<never>) as ((a: T, b: T) => T) | undefined;
    const measured = this.router.measuredOp(operation, op);
    const targets = this.placement.targets(entry);
    const write: CopyWrite<T> = {
      entry,
      op: measured,
      claimed: new Set(targets),
      failed: [],
      errors: [],
    };
    const copies = targets.map((name) => this.writeCopy(write, this.membership.node(name)));
    // A reply error of any copy rejects: the write did not land on every copy.
    return Promise.all(copies).then((settled) => {
      const replies = (settled as (T | typeof NOWHERE)[]).filter(
        (reply): reply is T => reply !== NOWHERE,
      );
      if (replies.length === 0) return failed(this.failures.fail(write.errors.at(-1)));
      return done(merge ? replies.reduce(merge) : replies[0], entry);
    });
  }

  /**
   * One copy's write on `node`; on a connection failure, on the next node clockwise that holds
   * no copy of the entry yet (its write is hinted for the nodes it stands in for).
   */
  private writeCopy<T>(write: CopyWrite<T>, node: RingNode): Promise<T | typeof NOWHERE> {
    return this.router.tryOn(node, write.entry, true, write.op).catch((error: unknown) => {
      if (!isConnectionError(error)) throw error;
      write.errors.push(error);
      this.membership.eject(node, error);
      write.failed.push(node);
      const ring = this.membership.ringWithout(write.failed);
      const next = this.placement.targets(write.entry, ring).find((n) => !write.claimed.has(n));
      if (next === undefined) {
        const { router, membership, placement } = this;
        return hintWithoutStandIn(router, membership, placement, [write.entry], write.failed).then(
          () => NOWHERE,
        );
      }
      write.claimed.add(next);
      return this.writeCopy(write, this.membership.node(next));
    });
  }
}

/** One write to every copy of an entry, as it goes. */
interface CopyWrite<T> {
  entry: string;
  op: EntryOp<T>;
  /** Nodes written or being written. */
  claimed: Set<string>;
  /** Nodes that failed it. */
  failed: RingNode[];
  errors: unknown[];
}
