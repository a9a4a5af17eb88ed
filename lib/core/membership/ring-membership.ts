import { Observable, Subject } from 'rxjs';
import type { HandoffReport } from '../handoff/handoff-report.js';
import type { HashRing } from '../hashing/hash-ring.js';
import { RingConnectionError } from '../node/connection-errors.js';
import { capacitiesIn, distinctLists, type NodeCapacities } from './node-lists.js';
import type { RingNodeState } from '../node/node-health.js';
import type { RingNode } from '../node/ring-node.js';
import {
  ejectedEvent,
  memberEvent,
  rediscoveredEvent,
  unavailableEvent,
  type RingEvent,
} from './ring-events.js';

/** What the dict hears of membership changes, once per transition. */
export interface MembershipHooks {
  /** The user's `onNodeEjected`. */
  ejected?(node: string, error: RingConnectionError): void;
  /** The user's `onNodeRediscovered`. */
  rediscovered?(node: string): void;
  /** This process found the node unreachable (not told so by another process). */
  ejectedHere?(node: RingNode): void;
}

/** Who found a node unreachable: this process, or another one that reported it. */
export type EjectionOrigin = 'here' | 'reported';

/**
 * The ring's nodes and who is in: the total ring (every configured node), the alive ring
 * (nodes not ejected), ejection and rediscovery, the "no node alive" transition, the nodes'
 * health and the events that tell it. Transitions fire once however many requests saw the
 * same failure; after `close()` nothing changes any more.
 */
export class RingMembership {
  readonly events$: Observable<RingEvent>;
  private total: HashRing;
  private alive: HashRing;
  /** The node lists before the current one, newest first (see earlierNodes). */
  private earlier: readonly NodeCapacities[] = [];
  private readonly nodes = new Map<string, RingNode>();
  private readonly events = new Subject<RingEvent>();
  private ejectedCount = 0;
  private unavailable = false;
  private isClosed = false;

  /** `nodes`: one per node of `totalHash`, not connected yet. */
  constructor(
    totalHash: HashRing,
    nodes: Iterable<RingNode>,
    private readonly timeouts: { commandTimeout: number; connectTimeout: number },
    private readonly hooks: MembershipHooks,
  ) {
    this.total = totalHash;
    this.alive = totalHash;
    this.events$ = this.events.asObservable();
    for (const node of nodes) this.adopt(node);
  }

  /** Every member node: `.locate()` names the node a key belongs to when all are alive. */
  get totalHash(): HashRing {
    return this.total;
  }

  /**
   * The last four node lists before the current one that differ from it and from each other,
   * newest first (none before a change of nodes): `@RingCached` deletes the tag versions the
   * rings of those lists placed, which processes still on them read.
   */
  get earlierNodes(): readonly NodeCapacities[] {
    return this.earlier;
  }

  /** Nodes not ejected: `.locate()` names the node that serves an entry now. */
  get aliveHash(): HashRing {
    return this.alive;
  }

  /** True while some node is ejected. */
  get anyEjected(): boolean {
    return this.ejectedCount > 0;
  }

  /** True once `close()` began: no request may open a connection any more. */
  get closed(): boolean {
    return this.isClosed;
  }

  /** The node named `name` (a configured name). */
  node(name: string): RingNode {
    return this.nodes.get(name)!;
  }

  /** The node named `name`, or undefined for a name this ring does not have. */
  find(name: string): RingNode | undefined {
    return this.nodes.get(name);
  }

  /** Every configured node. */
  all(): IterableIterator<RingNode> {
    return this.nodes.values();
  }

  /** The alive owner of `entry`, or undefined when no node is alive. */
  pick(entry: string): RingNode | undefined {
    const name = this.alive.locate(entry);
    return name === undefined ? undefined : this.nodes.get(name);
  }

  /** The owner of `entry` when every node is alive (the total ring's). */
  ownerOf(entry: string): RingNode {
    return this.nodes.get(this.totalHash.locate(entry)!)!;
  }

  /** The alive owner of `entry` once the nodes in `tried` are left out. */
  nextOwner(entry: string, tried: Iterable<RingNode>): RingNode | undefined {
    const name = this.ringWithout(tried).locate(entry);
    return name === undefined ? undefined : this.nodes.get(name);
  }

  /** The alive ring minus nodes that failed this request (ejected already, unless a heartbeat brought one back meanwhile). */
  ringWithout(failed: Iterable<RingNode>): HashRing {
    let ring = this.alive;
    for (const node of failed) ring = ring.without(node.name);
    return ring;
  }

  /** True while `node` (this very node, not just its name) is a member of the ring. */
  isMember(node: RingNode): boolean {
    return this.nodes.get(node.name) === node;
  }

  /**
   * The new membership, in one step: `total` becomes the total ring, `joining` (connected,
   * or ejected already) become members and `leaving` stop being ones. The alive ring is
   * `total` without the members that are ejected. Requests that picked a leaving node before
   * finish on it; any that fail there move on over the new rings.
   */
  swap(total: HashRing, joining: readonly RingNode[], leaving: readonly RingNode[]): void {
    if (this.isClosed) return;
    for (const node of leaving) this.nodes.delete(node.name);
    for (const node of joining) this.adopt(node);
    let alive = total;
    let ejected = 0;
    for (const node of this.nodes.values()) {
      if (node.health.alive) continue;
      alive = alive.without(node.name);
      ejected++;
    }
    this.earlier = distinctLists([capacitiesIn(this.total), ...this.earlier], capacitiesIn(total));
    this.total = total;
    this.alive = alive;
    this.ejectedCount = ejected;
    if (alive.size > 0) this.unavailable = false;
    for (const node of leaving) this.emit(memberEvent('removed', node.name));
    for (const node of joining) {
      this.emit(memberEvent('added', node.name));
      if (!node.health.alive) this.joinedEjected(node);
    }
    if (alive.size === 0) this.signalUnavailable();
  }

  /**
   * A node setNodes() could not connect joins ejected: said as any ejection is (the event,
   * the callback, and so the transitions counted and the log), or only its state showed it.
   */
  private joinedEjected(node: RingNode): void {
    const error = new RingConnectionError(node.health.lastError ?? 'not reachable');
    // Reported to the fleet now, as an ejection here is: left to its revival's first failed
    // try (a commandTimeout on a hung link), the processes that reach it read it meanwhile for
    // keys this one writes elsewhere (13-48 stale reads in three processes).
    this.callback(() => this.hooks.ejectedHere?.(node));
    this.emit(ejectedEvent(node.health, error));
    this.callback(() => this.hooks.ejected?.(node.name, error));
  }

  /** Every node's health, in name order. */
  nodeStates(): RingNodeState[] {
    return this.totalHash.nodes.map((name) => this.nodes.get(name)!.health.snapshot());
  }

  /**
   * `node` failed at the connection level here, or another process reported it did there:
   * out of the alive ring, once.
   */
  eject(node: RingNode, error: unknown, origin: EjectionOrigin = 'here'): void {
    const message = node.describe(error);
    // Commands still queued on this connection fail now and move on, instead of each
    // waiting out its own timeout.
    node.drop();
    // A node setNodes() took out: its last requests move on, nothing else changes.
    if (!this.isMember(node)) return;
    if (!this.isClosed && origin === 'here') this.callback(() => this.hooks.ejectedHere?.(node));
    if (this.isClosed || !node.health.eject(message)) return;
    this.alive = this.alive.without(node.name);
    this.ejectedCount++;
    const ejectError = new RingConnectionError(message);
    this.emit(ejectedEvent(node.health, ejectError));
    this.callback(() => this.hooks.ejected?.(node.name, ejectError));
    if (this.alive.size === 0) this.signalUnavailable();
  }

  /** `node` answers again and is up to date (`handoff` says how): back in the alive ring, once. */
  rediscover(node: RingNode, handoff?: HandoffReport): void {
    if (this.isClosed || !this.isMember(node) || !node.health.rediscover()) return;
    // The total ring's capacity: setNodes() may have re-weighted the node.
    this.alive = this.alive.with(node.name, this.total.capacityOf(node.name) ?? node.capacity);
    this.ejectedCount--;
    this.unavailable = false;
    this.emit(rediscoveredEvent(node.health, handoff));
    this.callback(() => this.hooks.rediscovered?.(node.name));
  }

  /** Fires `unavailable` once per transition to "no node alive". */
  signalUnavailable(): void {
    if (this.unavailable || this.alive.size > 0) return;
    this.unavailable = true;
    this.emit(unavailableEvent());
  }

  /**
   * Stops every transition and quits every connection (at once on a node that does not
   * answer within `commandTimeout`); the events complete afterwards.
   */
  async close(): Promise<void> {
    // Before the first await: a caller counts on `closed` as soon as this is called.
    this.isClosed = true;
    await Promise.all(
      [...this.nodes.values()].map((node) => node.close(this.timeouts.commandTimeout)),
    );
    this.events.complete();
  }

  /**
   * Wires a node's connection to the ring: an alive node that loses its connection reconnects
   * once and is ejected if that fails; a Sentinel failover ejects it at once.
   */
  private adopt(node: RingNode): void {
    this.nodes.set(node.name, node);
    node.client.on('end', () => this.connectionLost(node));
    // Sentinel nodes: a failover announced by the sentinels ejects the node at once, so it
    // stops writing to the demoted master; the heartbeat brings it back on the new one.
    node.onMasterSwitch = (error) => this.eject(node, error);
    this.vet(node);
  }

  /**
   * `node`'s connections are refused when its server is a member's (see sameServerAs): set as
   * it is adopted, and by setNodes() before a joining node first connects, whose entries are
   * cleared then — the member's, were it the same server behind another address.
   */
  vet(node: RingNode, handedOver: readonly RingNode[] = []): void {
    const leaving = new WeakSet(handedOver);
    node.vet = () => this.sameServerAs(node, leaving);
  }

  /**
   * Two nodes on one server would each take a share of the keys and mix them: the
   * configuration check cannot always tell (two host names, a proxy), the server can. Why
   * `node`'s connection is refused, if another node is connected to the same server process
   * and database.
   */
  private sameServerAs(node: RingNode, leaving: WeakSet<RingNode>): string | undefined {
    const runId = node.runId;
    if (runId === undefined) return undefined;
    const db = node.client.options.db ?? 0;
    for (const other of this.nodes.values()) {
      // The same name: setNodes() is replacing the node's connection; one leaving in the same
      // change hands its server over (node0's server named node2 joined ejected).
      if (other.name === node.name || leaving.has(other)) continue;
      if (!other.ready || other.runId !== runId) continue;
      if ((other.client.options.db ?? 0) !== db) continue;
      return `the same server as node "${other.name}" (run_id ${runId.slice(0, 8)}, database ${db}): give each node a server of its own`;
    }
    return undefined;
  }

  /**
   * An alive node lost its connection: reconnect once, eject if that fails. Not when the
   * connection was dropped on purpose: the requests it failed eject the node, with the reason
   * it was dropped (a reconnect would start afresh and forget it).
   */
  private connectionLost(node: RingNode): void {
    if (this.isClosed || !this.isMember(node) || !node.health.alive || node.droppedOnPurpose)
      return;
    node.connect(this.timeouts.connectTimeout).catch((error: unknown) => this.eject(node, error));
  }

  private emit(event: RingEvent): void {
    if (!this.isClosed) this.events.next(event);
  }

  /** User callbacks must not break routing: their errors are reported, not thrown. */
  private callback(fn: () => void): void {
    try {
      fn();
    } catch (error) {
      process.emitWarning(`ring-redis: a node callback threw: ${(error as Error).message}`);
    }
  }
}
