import type { FleetView } from '../fleet/fleet-view.js';
import type { HandoffCatchUp } from '../handoff/handoff-catch-up.js';
import type { HandoffReport } from '../handoff/handoff-report.js';
import type { RingMembership } from '../membership/ring-membership.js';
import { isConnectionError, RingConnectionError } from '../node/connection-errors.js';
import type { RingNodePing } from '../node/node-health.js';
import type { RingNode } from '../node/ring-node.js';

export interface ReviverOptions {
  /** Milliseconds between PINGs of ejected nodes; 0: no heartbeat. */
  heartbeatInterval: number;
  /** Fraction of requests that probe an ejected owner. */
  retryRatio: number;
  commandTimeout: number;
  /** The longest a revival's connect may be given (see budgetAfter). */
  connectTimeout: number;
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
  /** The connect budget of a node's next revival, when more than commandTimeout. */
  private readonly budgets = new WeakMap<RingNode, number>();
  /** Sweeps under way (see sweepSoon). */
  private readonly sweeping = new Set<RingNode>();
  private heartbeat?: NodeJS.Timeout;

  constructor(
    private readonly membership: RingMembership,
    private readonly catchUp: HandoffCatchUp,
    private readonly fleet: FleetView,
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
   * whose total-ring owner is out starts that owner's revival (connect, PING, hinted handoff,
   * rejoin) — one at a time per node — and goes on where the alive ring says, without waiting
   * for it: a hung owner would otherwise hold one request in a hundred for a whole
   * `commandTimeout` (measured with the default retryRatio and a hung node at 64 in flight:
   * −88 % throughput). The owner serves requests once it is back and up to date, never before.
   */
  probe(entry: string): void {
    if (!this.membership.anyEjected || Math.random() >= this.options.retryRatio) return;
    const owner = this.membership.ownerOf(entry);
    if (!owner.health.alive) void this.reviveSoon(owner);
  }

  /**
   * PINGs every node in parallel, within `timeoutMs`, and acts on the answers as a request or
   * the heartbeat would: an alive node that does not answer is ejected (a hung node shows even
   * with no traffic); an ejected node that answers is revived (brought up to date, then back).
   */
  ping(timeoutMs: number): Promise<RingNodePing[]> {
    const nodes = [...this.membership.all()];
    // Nodes setNodes took out or replaced meanwhile are left out: an answer (or a silence) of a
    // server the ring no longer has was reported under a name that now means another one.
    return Promise.all(nodes.map((node) => this.pingOne(node, timeoutMs))).then((answers) =>
      answers.filter((_, i) => this.membership.isMember(nodes[i])),
    );
  }

  private async pingOne(node: RingNode, timeoutMs: number): Promise<RingNodePing> {
    const started = performance.now();
    const answered = () => ({ ok: true, ms: Math.round((performance.now() - started) * 10) / 10 });
    if (!node.health.alive) {
      await within(this.reviveSoon(node), timeoutMs).catch(() => undefined);
      const alive = node.health.alive;
      return alive
        ? { name: node.name, alive, ...answered() }
        : { name: node.name, alive, ok: false, error: node.health.lastError ?? 'not reached' };
    }
    try {
      await this.pingAlive(node, started + timeoutMs, timeoutMs);
      return { name: node.name, alive: true, ...answered() };
    } catch (error) {
      // Not a connection error: the node answered (pingAlive takes a reply error for one).
      if (!isConnectionError(error)) return { name: node.name, alive: true, ...answered() };
      this.membership.eject(node, error);
      return { name: node.name, alive: false, ok: false, error: node.describe(error) };
    }
  }

  /**
   * Connects `node` if it is not ready, then PINGs it, all before `deadline`: the connect and
   * the PING share one budget. With a budget each, over a link delayed 200 ms each way, a
   * check with a 1350 ms timeout took 1.7 s (1.2 s to connect, then the PING) and counted the
   * late answer. Rejects with a connection-class error for a node that did not answer by then.
   * An answer read after the deadline because this process was stalled (its timer late too)
   * still counts: a node is not ejected for this process's own stall, as a request's is not.
   */
  private async pingAlive(node: RingNode, deadline: number, timeoutMs: number): Promise<void> {
    if (!node.ready) {
      const left = Math.max(1, Math.floor(deadline - performance.now()));
      await within(node.connect(left), left, () => notConnected(timeoutMs));
    }
    const left = Math.max(1, deadline - performance.now());
    // The node's client gives up on any command after `commandTimeout`: a node that cannot
    // answer that soon is one the ring would eject for a request, so that bounds the PING too.
    const limit = left <= node.commandTimeout ? timeoutMs : node.commandTimeout;
    await within(node.client.ping(), Math.min(left, node.commandTimeout), () =>
      noAnswer(limit),
    ).catch((error: unknown) => {
      if (isTimeout(error)) throw noAnswer(limit);
      // A reply error (an ACL without PING) is an answer: the node is up.
      if (isConnectionError(error)) throw error;
    });
  }

  /** PINGs every ejected node in parallel; those that answer rejoin. */
  private beat(): void {
    if (this.membership.closed) return;
    for (const node of this.membership.all()) if (!node.health.alive) this.reviveSoon(node);
  }

  /**
   * `node` is in the ring but some node holds hints for it (a write that raced its return, a
   * process that died before handing off): they are handed back, one sweep at a time.
   */
  sweepSoon(node: RingNode, holders: readonly RingNode[]): void {
    if (this.sweeping.has(node) || this.membership.closed) return;
    this.sweeping.add(node);
    this.catchUp
      .sweep(node, holders)
      .catch(() => undefined)
      .finally(() => this.sweeping.delete(node));
  }

  /** A revival of `node`: the one under way, else a new one. revive() handles its own failures. */
  reviveSoon(node: RingNode): Promise<void> {
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
   * rejoins the alive ring, so it never serves a value older than one written meanwhile. It
   * rejoins only once no other process reports it unreachable: every process then reads it.
   */
  private async revive(node: RingNode): Promise<void> {
    const budget = this.budgets.get(node) ?? this.options.commandTimeout;
    try {
      // Connected even when its data cannot be trusted: clearing it is part of the revival.
      await node.connect(budget, 'allow');
      await node.client.ping();
    } catch (error) {
      this.budgetAfter(node, budget);
      this.failed(node, error);
      // Out for this process too: every process holds it out while this one cannot reach it.
      void this.fleet.report(node);
      return;
    }
    this.budgets.delete(node);
    // Others hear it as soon as it lands; this process's own return does not wait for it.
    void this.fleet.withdraw(node);
    void this.fleet.rejoined(node);
    if (this.fleet.reportedByOthers(node)) {
      node.health.lastError = 'reported unreachable by another process';
      return;
    }
    let report: HandoffReport | undefined;
    try {
      const untrusted = await this.catchUp.clearUntrusted(node);
      if (this.catchUp.enabled) report = await this.catchUp.handOff(node);
      if (untrusted) (report ??= { entries: 0, overflowed: false }).untrusted = untrusted;
    } catch (error) {
      this.catchUp.discardLate(node);
      this.failed(node, error);
      return;
    }
    if (this.membership.closed || node.health.alive) {
      this.catchUp.discardLate(node);
      return;
    }
    this.catchUp.invalidateLate(node);
    this.membership.rediscover(node, report);
  }

  /**
   * The next revival's connect budget. A connect and its greeting take about four round trips
   * (HELLO, CLIENT SETINFO, the trust check, the ready check), a request one: under
   * `commandTimeout` alone, a link whose round trip is over a quarter of it kept an ejected
   * node out for good, though it answered requests in time. A greeting that ran out of time
   * while the server was answering it doubles the budget, up to `connectTimeout`; any other
   * failure sets it back to `commandTimeout`, as before: a node refused, unrouted, hung or
   * behind a black hole is tried again `commandTimeout` after each attempt. (Doubled for a
   * silent connection, an attempt that could never finish, behind a firewall that lost the
   * flow, held the node's revival up to `connectTimeout` after the path healed: 0.6–1.8 s.)
   */
  private budgetAfter(node: RingNode, budget: number): void {
    if (!node.greetingTimedOut) this.budgets.delete(node);
    else
      this.budgets.set(node, Math.min(budget * 2, Math.max(this.options.connectTimeout, budget)));
  }

  /** A revival failed: why is kept, and a connection that did not answer is started afresh. */
  private failed(node: RingNode, error: unknown): void {
    node.health.lastError = node.describe(error);
    node.drop();
  }
}

/** `pending`, or `failure()` (a connection-class error) once `timeoutMs` have passed. */
function within<T>(
  pending: Promise<T>,
  timeoutMs: number,
  failure: () => Error = () => noAnswer(timeoutMs),
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(failure()), timeoutMs);
  });
  return Promise.race([pending, expired]).finally(() => clearTimeout(timer));
}

function noAnswer(timeoutMs: number): RingConnectionError {
  return new RingConnectionError(`no answer to PING within ${timeoutMs} ms`);
}

function notConnected(timeoutMs: number): RingConnectionError {
  return new RingConnectionError(`no answer within ${timeoutMs} ms while connecting`);
}

/** ioredis' own `commandTimeout` fired (its error has no class of its own). */
function isTimeout(error: unknown): boolean {
  return error instanceof Error && error.message === 'Command timed out';
}
