import { addTo } from '../collections.js';
import type { FleetView } from '../fleet/fleet-view.js';
import type { RingMembership } from '../membership/ring-membership.js';
import { isConnectionError } from '../node/connection-errors.js';
import type { Redis } from 'ioredis';
import { inChunks, PIPELINE_CHUNK } from '../node/pipeline.js';
import type { RingNode } from '../node/ring-node.js';
import type { NodeOp } from '../routing/entry-ops.js';
import type { ReplicaPlacement } from '../routing/replica-placement.js';
import { RECORD_HINTS, type HintKeys } from './hint-keys.js';
import { allToWire } from '../keys/wire.js';

/** A server process no server has: an heir named with it has lost its hints (see noteLost). */
const LOST_RUN_ID = 'lost';

/** Entries a node takes on behalf of other owners, per owner (by the total ring). */
export type OnBehalf = Map<string, string[]>;

/**
 * The write side of the hinted handoff: while some node is ejected, a write (or delete) that
 * lands on another node on its behalf is first recorded there, in the owner's hints on that
 * very node, so that whichever process brings the owner back invalidates it there (see
 * HandoffCatchUp). The hints live on the nodes, not in this process: every process's writes
 * are handed off, even those of a process that died meanwhile.
 */
export class HandoffRecorder {
  /** Per owner: the nodes this process has named in `heirs:<owner>` during its outage. */
  private readonly announced = new Map<string, Set<string>>();
  /** Owners whose hints this process could not record (refused): cleared when they return. */
  private readonly unrecorded = new Set<string>();
  /**
   * Per owner whose return is being prepared: the entries this process wrote for it since,
   * where, and during which pass over its hints (see capture).
   */
  private readonly captured = new Map<string, Captured>();

  constructor(
    private readonly membership: RingMembership,
    private readonly fleet: FleetView,
    private readonly keys: HintKeys,
    /** Hints kept per owner on each node (`handoffLimit`); 0 turns the handoff off. */
    private readonly limit: number,
    private readonly placement: ReplicaPlacement,
  ) {}

  /** Writes must be recorded for hinted handoff while some node is ejected. */
  get needed(): boolean {
    return this.limit > 0 && this.membership.anyEjected;
  }

  /**
   * Of `entries` written on `node`, those it takes on behalf of other nodes, per node: with one
   * copy, entries whose owner (by the total ring) is another node; with replicas, the home
   * nodes that miss the write (see ReplicaPlacement.standsInFor).
   */
  onBehalf(node: RingNode, entries: string | readonly string[]): OnBehalf | undefined {
    let writes: OnBehalf | undefined;
    // A single entry comes as a string: wrapped in an array only while hints are needed.
    for (const entry of typeof entries === 'string' ? [entries] : entries) {
      for (const owner of this.placement.standsInFor(node.name, entry)) {
        writes ??= new Map();
        addTo(writes, owner, entry);
      }
    }
    return writes;
  }

  /**
   * Before writing `writes` on `node`: the owners' outage is known to every process (this
   * process's report is out) and `node` is named among each owner's heirs.
   */
  async prepare(node: RingNode, writes: OnBehalf): Promise<void> {
    for (const owner of writes.keys()) {
      await this.fleet.reported(owner);
      await this.announce(owner, node);
    }
  }

  /**
   * `op` with the entries of `writes` recorded in their owners' hints just before it, on the
   * same connection and in the same send: a write that lands is always recorded, and the
   * hints are under the same deadline as the write. Connection errors reject it (the write
   * fails over).
   */
  withHints<T, E>(node: RingNode, writes: OnBehalf, op: NodeOp<T, E>): NodeOp<T, E> {
    return (client, entries) => {
      const noted = this.noteCaptured(node, writes);
      const hinted = this.sendHints(client, writes);
      if (noted)
        void hinted.then(
          () => this.recorded(noted),
          () => undefined,
        );
      const written = op(client, entries);
      return Promise.all([hinted, written]).then(([, reply]) => reply);
    };
  }

  /** Sends the hints of `writes` at once (no await between them); settles when all are answered. */
  private sendHints(client: Redis, writes: OnBehalf): Promise<unknown> {
    const sent: Promise<unknown>[] = [];
    for (const [owner, entries] of writes) {
      const keys = [this.keys.hints(owner), this.keys.overflow(owner), this.keys.sequence(owner)];
      for (let start = 0; start < entries.length; start += PIPELINE_CHUNK) {
        const chunk = entries.slice(start, start + PIPELINE_CHUNK);
        sent.push(
          client
            .eval(RECORD_HINTS, 3, ...keys, this.limit, ...allToWire(chunk))
            .catch((error: unknown) => {
              if (isConnectionError(error)) throw error;
              // An ACL without EVAL: this process clears the owner when it returns instead.
              this.unrecorded.add(owner);
            }),
        );
      }
    }
    return Promise.all(sent);
  }

  /**
   * After writing `writes` on `node`: an owner that rejoined while the write was on its way
   * missed it. The entries are deleted on both sides before the caller goes on — a miss,
   * never a stale value.
   */
  async settle(node: RingNode, writes: OnBehalf): Promise<void> {
    const late: Promise<unknown>[] = [];
    for (const [owner, entries] of writes) {
      const ownerNode = this.membership.node(owner);
      if (!ownerNode.health.alive) continue;
      // A copy `node` holds in its own right (replicas) took the write: it stays.
      const held = entries.filter((entry) => !this.placement.isHome(node.name, entry));
      late.push(deleteQuietly(ownerNode, entries), deleteQuietly(node, held));
    }
    if (late.length > 0) await Promise.all(late);
  }

  /** `owner` was brought back: its next outage starts afresh. Answers whether hints were lost. */
  forget(owner: string): boolean {
    this.announced.delete(owner);
    return this.unrecorded.delete(owner);
  }

  /**
   * `owner`'s return is being prepared: from now on, the entries this process writes for it are
   * noted, so that those written while its hints are handed back can be invalidated in the
   * very tick it rejoins (see takeCaptured), whether a pass read them or not.
   */
  capture(owner: string): void {
    this.captured.set(owner, { pass: 0, entries: new Map() });
  }

  /** A pass over `owner`'s hints begins: whatever was written before it, it hands back. */
  beginPass(owner: string): void {
    const captured = this.captured.get(owner);
    if (captured) captured.pass++;
  }

  /**
   * The entries written for `owner` during its last pass (which may have missed them), and
   * where; noting stops.
   */
  takeCaptured(owner: string): Map<string, RingNode> {
    const captured = this.captured.get(owner);
    this.captured.delete(owner);
    const late = new Map<string, RingNode>();
    for (const [entry, note] of captured?.entries ?? []) {
      // Recorded before the last pass began: that pass handed it back.
      if (note.recordedIn === undefined || note.recordedIn >= captured!.pass) {
        late.set(entry, note.node);
      }
    }
    return late;
  }

  /** Notes `writes` for the owners being captured; answers the notes, to mark recorded. */
  private noteCaptured(node: RingNode, writes: OnBehalf): Note[] | undefined {
    if (this.captured.size === 0) return undefined;
    let notes: Note[] | undefined;
    for (const [owner, entries] of writes) {
      const captured = this.captured.get(owner);
      if (!captured) continue;
      for (const entry of entries) {
        const note: Note = { node, owner: captured };
        captured.entries.set(entry, note);
        (notes ??= []).push(note);
      }
    }
    return notes;
  }

  /** The hints of these notes landed: the pass under way or the next one reads them. */
  private recorded(notes: readonly Note[]): void {
    for (const note of notes) note.recordedIn = note.owner.pass;
  }

  /** The nodes this process wrote on for `owner` during its outage. */
  heirsOf(owner: string): Iterable<string> {
    return this.announced.get(owner) ?? [];
  }

  /** True when this process could not record some hints for `owner` (see record). */
  lostHintsOf(owner: string): boolean {
    return this.unrecorded.has(owner);
  }

  /**
   * `node`, back with another server process (a restart, a failover), lost what it held for
   * the owners out now: their hints, and the notes of their heirs and clears, which it may
   * have been the only node to hold. Each owner's return is to find its hints incomplete: it
   * names `node` among its heirs with a server process no server has (LOST_RUN_ID), on `node`
   * and every alive node. Without it, with two nodes, the owner came back with the values the
   * writes it missed had replaced (50 of 50), or that a clear had deleted.
   */
  async noteLost(node: RingNode): Promise<void> {
    const out = [...this.membership.all()].filter((owner) => owner !== node && !owner.health.alive);
    if (out.length === 0) return;
    const alive = this.membership.aliveHash.nodes.map((name) => this.membership.node(name));
    await Promise.all(
      [node, ...alive.filter((other) => other !== node && other.ready)].map((target) => {
        const pipeline = target.client.pipeline();
        for (const owner of out) pipeline.hset(this.keys.heirs(owner.name), node.name, LOST_RUN_ID);
        return pipeline.exec().catch(() => undefined);
      }),
    );
  }

  /**
   * Names `heir` in `heirs:<owner>` on every alive node, with the heir's server process: the
   * owner's return then knows where to look, and sees when an heir died or restarted with its
   * hints. Once per owner and heir in an outage, and only where no process named it yet: the
   * first server process named is the one that took the first hints (HSET named the new one
   * after a restart, and the hints lost with the old one went unseen).
   */
  private async announce(owner: string, heir: RingNode): Promise<void> {
    let heirs = this.announced.get(owner);
    if (heirs?.has(heir.name)) return;
    const key = this.keys.heirs(owner);
    const runId = heir.runId ?? '';
    await Promise.all(
      this.membership.aliveHash.nodes.map((name) =>
        this.membership
          .node(name)
          .client.hsetnx(key, heir.name, runId)
          .catch(() => undefined),
      ),
    );
    if (heirs === undefined) this.announced.set(owner, (heirs = new Set()));
    heirs.add(heir.name);
  }
}

/** Deletes `entries` on `node`; a node that fails is out, and its return deals with them. */
function deleteQuietly(node: RingNode, entries: readonly string[]): Promise<unknown> {
  return inChunks(entries, PIPELINE_CHUNK, (chunk) => node.client.del(...allToWire(chunk))).catch(
    () => undefined,
  );
}

/** What capture() notes for one owner. */
interface Captured {
  /** The pass over its hints under way (0 before the first). */
  pass: number;
  entries: Map<string, Note>;
}

/** One write noted by capture(): where it went, and the pass under way when its hint landed. */
interface Note {
  node: RingNode;
  owner: Captured;
  recordedIn?: number;
}
