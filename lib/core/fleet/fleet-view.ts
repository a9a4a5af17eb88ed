import { disconnectNow } from '../node/disconnect-now.js';
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { HintKeys } from '../handoff/hint-keys.js';
import { controlKey } from '../keys/control-keys.js';
import type { RingMembership } from '../membership/ring-membership.js';
import type { RingNode } from '../node/ring-node.js';
import { POLL, REPORT_OUT, WITHDRAW } from './fleet-scripts.js';

/** What the shared view asks of the dict. */
export interface FleetHooks {
  /** Another process reported `node` unreachable: every process holds it out. */
  reportedOut(node: RingNode, reporters: number): void;
  /** No process reports `node` out any more: bring it back if it answers. */
  reportsGone(node: RingNode): void;
  /** `holders` hold hints for `node`, which is in the ring: hand them back now. */
  hinted(node: RingNode, holders: readonly RingNode[]): void;
}

export interface FleetOptions {
  /** Milliseconds between two reads of the fleet's state (and lease renewals). */
  tick: number;
  /** How long a report lives unless renewed: a process that died stops holding a node out. */
  lease: number;
}

/**
 * The view of the ring that every process sharing it agrees on. Each process keeps its own
 * health of the nodes, but one process that cannot reach a node (a partition of its own, a
 * hang it alone sees) would otherwise go on writing that node's entries elsewhere while the
 * others read them on the node: every process would read its own version. So a process that
 * ejects a node reports it on every node it still reaches — a lease, renewed while it lasts,
 * and a message to every process — and every process holds the node out while any live report
 * remains. A node comes back only once every process reaches it, or the reports of the
 * processes that could not have expired (they died).
 */
export class FleetView {
  /** This process, as its reports name it. */
  readonly processId = randomBytes(6).toString('hex');
  /** Per node: the other processes reporting it out, and when each report was last heard of. */
  private readonly reports = new Map<string, Map<string, number>>();
  /**
   * Nodes this process reports out (it cannot reach them), by name, each with its report's
   * field. Kept with the node: setNodes may put another connection under the name, whose
   * report the leaving one's withdrawal took with it (the fleet read the new one meanwhile).
   */
  private readonly own = new Map<string, OwnReport>();
  /**
   * Per node, how many reports of it this process made: a report's field names its count, so
   * a new report is never taken for a late renewal of one withdrawn before (see
   * withdrawnReports), whose `out` message alone told them apart.
   */
  private readonly made = new Map<string, number>();
  /**
   * Other processes' reports withdrawn (a `back` message), by field, with when, and until when
   * a poll that finds one again is not believed. Found again, it is a renewal that reached a
   * node late (hung while the withdrawal went out), not a new report, which an `out` message
   * announces: believed, it held a healthy node out for every process once more.
   */
  private readonly withdrawnReports = new Map<string, { at: number; until?: number }>();
  /** Per node: the connection the fleet's commands and messages use (see link). */
  private readonly links = new Map<RingNode, FleetLink>();
  private readonly reportsKey: string;
  private readonly channel: string;
  private timer?: NodeJS.Timeout;
  private closed = false;
  private polling = false;

  constructor(
    private readonly membership: RingMembership,
    prefix: string,
    private readonly hintKeys: HintKeys,
    private readonly options: FleetOptions,
    private readonly hooks: FleetHooks,
  ) {
    this.reportsKey = controlKey(prefix, 'out');
    this.channel = controlKey(prefix, 'fleet');
  }

  /**
   * Starts reading the fleet's state. Each node's subscription to the other processes'
   * messages opens with its first connection: a lazy dict opens nothing before it is used.
   */
  start(): void {
    for (const node of this.membership.all()) this.join(node);
    // Half a tick out of step with the heartbeat, which shares the period: the probes and the
    // polls of a node do not arrive together.
    this.timer = setTimeout(() => {
      if (this.closed) return;
      this.timer = setInterval(() => void this.tick(), this.options.tick);
      this.timer.unref();
      void this.tick();
    }, this.options.tick / 2);
    this.timer.unref();
  }

  /**
   * Stops, and withdraws this process's reports: a process that leaves writes nothing more on
   * the nodes' behalf, so the fleet need not hold them out until the reports expire.
   */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    // Withdrawn while the links are still up.
    await Promise.all([...this.own.values()].map(({ node }) => this.withdraw(node, true)));
    for (const link of this.links.values()) {
      closeLink(link);
    }
  }

  /**
   * `node` is a member (from the start, or added by setNodes): linked with its first
   * connection, and held out at once if other processes report it (a node taken out and put
   * back while another process could not reach it joined alive and, its reports no longer
   * new, stayed in for seconds: thousands of stale reads).
   */
  join(node: RingNode): void {
    if (node.ready) this.link(node);
    else node.client.once('ready', () => this.link(node));
    const reporters = this.reports.get(node.name);
    if (reporters !== undefined && reporters.size > 0 && node.health.alive) {
      this.hooks.reportedOut(node, reporters.size);
    }
  }

  /**
   * `node` is no member any more (setNodes): this process's report of it is withdrawn, and the
   * fleet's connections to it closed. Others' reports of it are kept, while they live: put
   * back, it is held out by them (see join).
   */
  async leave(node: RingNode): Promise<void> {
    await this.withdraw(node, true);
    const link = this.links.get(node);
    if (link === undefined) return;
    this.links.delete(node);
    closeLink(link);
  }

  /** True while another process reports `node` out. */
  reportedByOthers(node: RingNode): boolean {
    return (this.reports.get(node.name)?.size ?? 0) > 0;
  }

  /**
   * This process cannot reach `node`: every process is told, on every node it still
   * reaches. Resolves once each of those answered or failed; writes for `node`'s entries wait
   * for it, so no process reads the node for an entry written elsewhere meanwhile.
   */
  report(node: RingNode): Promise<void> {
    // A node setNodes took out (a revival of it failing after it left) is nobody's to report:
    // its report would outlive its leave(), and close() would find no node by its name. Nor
    // is one after close() (a revival its node's close cut short): close() withdrew the rest.
    if (this.closed || !this.membership.isMember(node)) return Promise.resolve();
    let own = this.own.get(node.name);
    if (own?.node !== node) {
      // The name's earlier connection's report goes: the new one holds the node out now.
      if (own !== undefined) void this.sendWithdrawal(own);
      this.made.set(node.name, (this.made.get(node.name) ?? 0) + 1);
      const field = this.field(node);
      own = { node, field, reported: this.renew(node, field, `out ${field}`) };
      this.own.set(node.name, own);
    }
    return own.reported;
  }

  /** The report of `node` this process made, or nothing: resolves at once when there is none. */
  reported(node: string): Promise<void> | undefined {
    return this.own.get(node)?.reported;
  }

  /** This process reaches `node` again (or leaves): its report goes. */
  async withdraw(node: RingNode, leaving = false): Promise<void> {
    const own = this.own.get(node.name);
    // Another connection's report under the name (setNodes replaced it) is not this one's.
    if (own?.node !== node) return;
    this.own.delete(node.name);
    if (this.closed && !leaving) return;
    await this.sendWithdrawal(own);
  }

  /**
   * `node` answers again: this process's reports it still holds of nodes this process reaches
   * (withdrawn while it was out, or a renewal that reached it late) go, or they would hold
   * those nodes out for every process until their lease ran out (a healthy node ejected again
   * for 1.5 s after it and `node` were out in turn).
   */
  async rejoined(node: RingNode): Promise<void> {
    if (this.closed) return;
    const client = this.commandsOf(node) ?? node.client;
    // Every count of them (see `made`): one of an earlier report, withdrawn while `node` was
    // out, held a healthy node out for a lease once a later report had been made and withdrawn.
    const fields = await client.hkeys(this.reportsKey).catch((): string[] => []);
    const stale = fields.filter((field) => {
      const [name, process] = splitField(field);
      return this.mine(process) && name !== node.name && !this.own.has(name);
    });
    if (stale.length === 0 || this.closed) return;
    await client.hdel(this.reportsKey, ...stale).catch(() => 0);
  }

  /** Withdraws `own` on every alive node but its own, telling every process. */
  private sendWithdrawal({ node, field }: OwnReport): Promise<void> {
    return this.onOthers(node, (client) =>
      client.eval(WITHDRAW, 1, this.reportsKey, field, this.channel, `back ${field}`),
    );
  }

  /** Renews this process's reports, then reads every report and every node's hints. */
  private async tick(): Promise<void> {
    if (this.closed || this.polling) return;
    this.polling = true;
    try {
      for (const { node, field } of this.own.values()) {
        if (this.membership.isMember(node)) void this.renew(node, field, '');
      }
      await this.poll();
    } finally {
      this.polling = false;
    }
  }

  /**
   * Writes (or renews) this process's report of `node` on every other alive node, for a
   * lease; `message`, unless empty, goes to every process.
   */
  private renew(node: RingNode, field: string, message: string): Promise<void> {
    return this.onOthers(node, (client) =>
      client.eval(REPORT_OUT, 1, this.reportsKey, field, this.options.lease, this.channel, message),
    );
  }

  /**
   * Reads the live reports on every alive node, and whether it holds hints for a node in the
   * ring (a write that raced its return), and acts on them.
   */
  private async poll(): Promise<void> {
    const started = performance.now();
    const names = this.membership.totalHash.nodes;
    const keys = [this.reportsKey, ...names.map((name) => this.hintKeys.hints(name))];
    const polled = this.membership.aliveHash.nodes.map((name) => this.membership.node(name));
    const answers = await Promise.all(
      polled.map((node) => {
        const client = this.commandsOf(node);
        if (client === undefined) return undefined;
        return (client.eval(POLL, keys.length, ...keys) as Promise<[string[], number[]]>).catch(
          () => undefined,
        );
      }),
    );
    if (this.closed || answers.every((answer) => answer === undefined)) return;
    const live = new Set(answers.flatMap((answer) => answer?.[0] ?? []));
    for (const field of live) if (!this.renewedLate(field, started)) this.heard(field, started);
    this.forgetUnheard(live, started);
    names.forEach((name, i) => {
      // setNodes() may have taken it out while the poll was under way.
      const node = this.membership.find(name);
      if (node === undefined) return;
      const holders = polled.filter((_, j) => (answers[j]?.[1][i] ?? 0) > 0);
      if (node.health.alive && holders.length > 0) this.hooks.hinted(node, holders);
    });
  }

  /** A report (`<node> <process>`) was read or announced. */
  private heard(field: string, at: number): void {
    const [name, process] = splitField(field);
    if (this.mine(process)) return;
    let reporters = this.reports.get(name);
    if (reporters === undefined) this.reports.set(name, (reporters = new Map()));
    const fresh = !reporters.has(process);
    reporters.set(process, Math.max(at, reporters.get(process) ?? 0));
    const node = this.membership.find(name);
    if (fresh && node?.health.alive) this.hooks.reportedOut(node, reporters.size);
  }

  /** Reports no node holds any more, unless heard of after the poll began, are gone. */
  private forgetUnheard(live: ReadonlySet<string>, pollStarted: number): void {
    for (const [name, reporters] of this.reports) {
      for (const [process, heardAt] of reporters) {
        if (!live.has(`${name} ${process}`) && heardAt < pollStarted) reporters.delete(process);
      }
      if (reporters.size === 0) this.gone(name);
    }
  }

  /** A report was withdrawn (`back` message) or expired. */
  private withdrawn(field: string): void {
    const [name, process] = splitField(field);
    if (!this.mine(process)) this.rememberWithdrawn(field);
    const reporters = this.reports.get(name);
    if (reporters?.delete(process) && reporters.size === 0) this.gone(name);
  }

  /**
   * True when a poll finds a report withdrawn since (see withdrawnReports): not believed for a
   * lease from then, as long as the late renewal lives. An `out` message ends that at once.
   */
  private renewedLate(field: string, at: number): boolean {
    const back = this.withdrawnReports.get(field);
    if (back === undefined) return false;
    back.until ??= at + this.options.lease;
    if (at < back.until) return true;
    this.withdrawnReports.delete(field);
    return false;
  }

  /** Remembered for WITHDRAWN_MEMORY leases, the latest WITHDRAWN_KEPT of them. */
  private rememberWithdrawn(field: string): void {
    const now = performance.now();
    this.withdrawnReports.delete(field);
    this.withdrawnReports.set(field, { at: now });
    for (const [old, { at }] of this.withdrawnReports) {
      const kept = this.withdrawnReports.size <= WITHDRAWN_KEPT;
      if (kept && now - at < WITHDRAWN_MEMORY * this.options.lease) break;
      this.withdrawnReports.delete(old);
    }
  }

  private gone(name: string): void {
    this.reports.delete(name);
    const node = this.membership.find(name);
    if (node !== undefined && !node.health.alive && !this.own.has(name))
      this.hooks.reportsGone(node);
  }

  /** `<node> <process id>.<reports made of it>`; see `made`. */
  private field(node: RingNode): string {
    return `${node.name} ${this.processId}.${this.made.get(node.name) ?? 0}`;
  }

  /** True for a report of this process's (`<process id>.<count>`, see field). */
  private mine(process: string): boolean {
    return process.startsWith(this.processId) && process[this.processId.length] === '.';
  }

  /** Runs `command` on every alive node but `node`, in parallel; failures are left to the next tick. */
  private async onOthers(
    node: RingNode,
    command: (client: Redis) => Promise<unknown>,
  ): Promise<void> {
    await Promise.all(
      this.membership.aliveHash.nodes
        .filter((name) => name !== node.name)
        .map((name) => this.commandsOf(this.membership.node(name)))
        .filter((client) => client !== undefined)
        .map((client) => command(client).catch(() => undefined)),
    );
  }

  /** The connection for the fleet's commands on `node`, if it is up. */
  private commandsOf(node: RingNode): Redis | undefined {
    const commands = this.links.get(node)?.commands;
    return commands?.status === 'ready' ? commands : undefined;
  }

  /**
   * The fleet's own connection to `node`, opened with the node's first: it carries the
   * subscription to every process's messages and the fleet's commands, never the ring's data.
   * A write of the fleet's (a report) on the data connection would hold the reads queued behind
   * it whenever the server pauses writes (CLIENT PAUSE WRITE, as during a FAILOVER). RESP3
   * runs commands on a subscribed connection; under RESP2 the subscription gets one of its own.
   */
  private link(node: RingNode): void {
    if (this.closed || this.links.has(node) || !this.membership.isMember(node)) return;
    const commands = this.connectionTo(node, 'fleet');
    const messages =
      node.client.options.protocol === 2 ? this.connectionTo(node, 'fleet-messages') : commands;
    messages.on('message', (_channel: string, message: string) => this.message(message));
    // Subscribed at each connection, not by ioredis' own resubscription, which leaves its
    // promise unhandled when the connection drops right after it is ready.
    messages.on('ready', () => {
      messages.subscribe(this.channel).catch(() => undefined);
    });
    this.links.set(node, { commands, messages });
  }

  /**
   * A connection like the node's, reconnecting by itself with a back-off, named `name`. Its
   * commands time out after the node's `commandTimeout`, set here: the node's client unsets
   * the option while it connects (RingNode.open), and a duplicate made then copied none — a
   * report sent to a hung node never settled, and every write waiting on it hung too.
   */
  private connectionTo(node: RingNode, name: string): Redis {
    const client = node.client.duplicate({
      // Told apart from the node's own connection in CLIENT LIST.
      connectionName: `${node.client.options.connectionName ?? 'ring-redis'}:${name}`,
      commandTimeout: node.commandTimeout,
      lazyConnect: false,
      enableOfflineQueue: false,
      maxRetriesPerRequest: null,
      retryStrategy: (attempt: number) => Math.min(attempt * 200, 2_000),
      autoResubscribe: false,
    });
    client.on('error', () => undefined);
    return client;
  }

  private message(message: string): void {
    if (this.closed) return;
    const space = message.indexOf(' ');
    const kind = message.slice(0, space);
    const field = message.slice(space + 1);
    if (kind === 'out') {
      this.withdrawnReports.delete(field);
      this.heard(field, performance.now());
    } else if (kind === 'back') this.withdrawn(field);
  }
}

/**
 * How long a withdrawn report is remembered, in leases: a node hung longer than that with a
 * renewal on its way may still hold a healthy node out once when it answers again.
 */
const WITHDRAWN_MEMORY = 20;
/** Withdrawn reports remembered at most (nodes × processes that came and went). */
const WITHDRAWN_KEPT = 1_000;

/** `<node> <process>`: node names may hold spaces, process ids do not. */
function splitField(field: string): [node: string, process: string] {
  const space = field.lastIndexOf(' ');
  return [field.slice(0, space), field.slice(space + 1)];
}

/** Closes both of a link's connections at once (a hung server would hold them open). */
function closeLink(link: FleetLink): void {
  disconnectNow(link.commands);
  if (link.messages !== link.commands) disconnectNow(link.messages);
}

/** A report this process made: the node (the connection) and the report's field. */
interface OwnReport {
  readonly node: RingNode;
  readonly field: string;
  readonly reported: Promise<void>;
}

/** The fleet's connections to one node (one, unless under RESP2). */
interface FleetLink {
  commands: Redis;
  messages: Redis;
}
