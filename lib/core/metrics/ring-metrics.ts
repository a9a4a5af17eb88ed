import type { Attributes, ObservableResult } from '@opentelemetry/api';
import type { Redis } from 'ioredis';
import type { RingMembership } from '../membership/ring-membership.js';
import type { RingEvent } from '../membership/ring-events.js';
import type { RingNode } from '../node/ring-node.js';
import type { NodeOp } from '../routing/entry-ops.js';
import type { RingInstruments } from './ring-instruments.js';
import { outcomeOf, type OperationOutcome, type RingOperation } from './ring-operations.js';

/**
 * Event types counted by `ring_redis.node.transitions`: a type added to the ring's events is
 * counted once it is listed here.
 */
export const TRANSITION_TYPES: ReadonlySet<string> = new Set([
  'ejected',
  'rediscovered',
  'added',
  'removed',
]);

/**
 * The metrics of one dict (one group): its commands counted and timed per node, its alive
 * nodes observed, its nodes' transitions counted. Built only when an SDK records (see
 * ringInstruments): without one the router holds none and pays nothing per request.
 *
 * Attributes name the group, the node, the method and the outcome, never a key or a value;
 * each set is made once and reused, as the SDK hashes whatever object it is given.
 */
export class RingMetrics {
  private readonly groupAttributes: Attributes;
  /** node → operation → outcome → attributes of `ring_redis.operations`. */
  private readonly counted = new Map<string, Map<string, Partial<Record<string, Attributes>>>>();
  /** The node each client belongs to (the ops see clients, not nodes). */
  private readonly owners = new WeakMap<Redis, string>();

  constructor(
    private readonly instruments: RingInstruments,
    private readonly group: string,
    private readonly membership: RingMembership,
  ) {
    this.groupAttributes = { group };
    instruments.alive.addCallback(this.observeAlive);
  }

  /** `op`, timed and counted on the node whose client runs it, each time it runs. */
  entryOp<T, E>(operation: RingOperation, op: NodeOp<T, E>): NodeOp<T, E> {
    return (client, entries) => {
      const started = performance.now();
      // Named as it is sent: setNodes may take the node out before it answers, and a node the
      // dict never used before that was then found nowhere ("unknown").
      const node = this.nodeOf(client);
      return op(client, entries).then(
        (reply) => {
          this.record(node, operation, outcomeOf(operation, reply), 1, started);
          return reply;
        },
        (error: unknown) => {
          this.record(node, operation, 'error', 1, started);
          throw error;
        },
      );
    };
  }

  /**
   * A batch's `run` on one node, timed once and counted per entry: `hits` says how many of
   * a read's entries were found (the others are misses); without it every entry is `ok`.
   */
  batchRun<R>(
    operation: RingOperation,
    run: (client: Redis, indexes: number[], node: RingNode) => Promise<R>,
    hits?: (result: R) => number,
  ): (client: Redis, indexes: number[], node: RingNode) => Promise<R> {
    return (client, indexes, node) => {
      const started = performance.now();
      return run(client, indexes, node).then(
        (result) => {
          const count = indexes.length;
          const found = hits === undefined ? count : hits(result);
          const outcome = hits === undefined ? 'ok' : 'hit';
          this.record(node.name, operation, outcome, found, started);
          if (found < count) this.count(node.name, operation, 'miss', count - found);
          return result;
        },
        (error: unknown) => {
          this.record(node.name, operation, 'error', indexes.length, started);
          throw error;
        },
      );
    };
  }

  /** A ring event: transitions of a node are counted. */
  event(event: RingEvent): void {
    if (event.node === undefined || !TRANSITION_TYPES.has(event.type)) return;
    this.instruments.transitions.add(1, { group: this.group, node: event.node, type: event.type });
  }

  /** The dict closed: its alive nodes are no longer observed. */
  close(): void {
    this.instruments.alive.removeCallback(this.observeAlive);
  }

  private readonly observeAlive = (result: ObservableResult): void => {
    result.observe(this.membership.aliveHash.size, this.groupAttributes);
  };

  private record(
    node: string,
    operation: RingOperation,
    outcome: OperationOutcome,
    count: number,
    started: number,
  ): void {
    const attributes = this.attributesOf(node, operation, outcome);
    if (count > 0) this.instruments.operations.add(count, attributes);
    // The duration's attributes are the same set without the outcome.
    this.instruments.duration.record(
      (performance.now() - started) / 1000,
      this.attributesOf(node, operation, undefined),
    );
  }

  private count(node: string, operation: RingOperation, outcome: OperationOutcome, n: number) {
    this.instruments.operations.add(n, this.attributesOf(node, operation, outcome));
  }

  private attributesOf(
    node: string,
    operation: RingOperation,
    outcome: OperationOutcome | undefined,
  ): Attributes {
    let byOperation = this.counted.get(node);
    if (byOperation === undefined) this.counted.set(node, (byOperation = new Map()));
    let byOutcome = byOperation.get(operation);
    if (byOutcome === undefined) byOperation.set(operation, (byOutcome = {}));
    const slot = outcome ?? '';
    let attributes = byOutcome[slot];
    if (attributes === undefined) {
      attributes = { group: this.group, node, operation };
      if (outcome !== undefined) attributes.outcome = outcome;
      byOutcome[slot] = attributes;
    }
    return attributes;
  }

  /** `node` is none of the members (a `migration`'s own): its commands counted by its name. */
  adopt(node: RingNode): void {
    this.owners.set(node.client, node.name);
  }

  /** The name of the node `client` belongs to (nodes added at runtime are found on first use). */
  private nodeOf(client: Redis): string {
    let name = this.owners.get(client);
    if (name === undefined) {
      for (const node of this.membership.all()) this.owners.set(node.client, node.name);
      name = this.owners.get(client) ?? 'unknown';
    }
    return name;
  }
}
