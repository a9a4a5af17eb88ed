import { RingError } from '../errors.js';
import type { RingMembership } from '../membership/ring-membership.js';
import { isConnectionError } from '../node/connection-errors.js';
import { inChunks, PIPELINE_CHUNK } from '../node/pipeline.js';
import type { RingNode } from '../node/ring-node.js';
import type { ReplicaPlacement } from '../routing/replica-placement.js';
import { scanHash, unlinkPrefix } from '../scan/scan-keys.js';
import type { HandoffRecorder } from './handoff-recorder.js';
import type { HandoffMode, HandoffOverflowPolicy, HandoffReport } from './handoff-report.js';
import type { HintKeys } from './hint-keys.js';
import { drainHints, type DrainContext } from './hint-drain.js';
import { allToWire, toWire } from '../keys/wire.js';
import { allOrSoonAfterFirst, answersPing } from './answers.js';

/** Passes over the hints of a returning node: writes keep coming while it works. */
const HANDOFF_PASSES = 3;

/** How long a gather waits for other nodes once one has answered (see gather). */
const GATHER_GRACE_MS = 25;

/** What the alive nodes know of a returning node's outage. */
interface Outage {
  /** Heir name → its server process when it first took hints. */
  heirs: Map<string, string>;
  /** Key prefixes cleared while the node was out. */
  clears: Set<string>;
  /** For each other owner out now: the nodes that hold hints for it. */
  othersHeirs: Map<string, Set<string>>;
}

export interface CatchUpOptions {
  prefix: string;
  mode: HandoffMode;
  overflowPolicy: HandoffOverflowPolicy;
  /** 0: no handoff. */
  limit: number;
  commandTimeout: number;
}

/**
 * The return side of the hinted handoff: before a node rejoins, the entries written or
 * deleted on its behalf while it was away — by any process: the hints are on the nodes that
 * took them — are invalidated on it and where they were written (or, in `'copy'` mode, copied
 * back), and the clears made meanwhile are applied. When the hints are incomplete (the limit
 * was reached, or a node that took writes is out or restarted), the overflow policy applies:
 * `'clear'` deletes the node's entries, so it never serves a value older than one written
 * meanwhile.
 */
export class HandoffCatchUp {
  constructor(
    private readonly membership: RingMembership,
    private readonly keys: HintKeys,
    private readonly recorder: HandoffRecorder,
    private readonly options: CatchUpOptions,
    /** A copy a node holds in its own right (its home) is kept where hinted copies go. */
    private readonly placement: ReplicaPlacement,
  ) {
    this.drainContext = { keys, mode: options.mode, placement };
  }

  private readonly drainContext: DrainContext;

  get enabled(): boolean {
    return this.options.limit > 0;
  }

  /**
   * `keyPrefix` was cleared while `nodes` were out: each deletes it before it rejoins. Noted
   * on every alive node, whichever process brings them back.
   */
  async noteClear(keyPrefix: string, nodes: readonly RingNode[]): Promise<void> {
    if (!this.enabled || nodes.length === 0) return;
    await this.onAlive(null, Infinity, (client) => {
      const pipeline = client.pipeline();
      for (const node of nodes) pipeline.sadd(this.keys.clears(node.name), keyPrefix);
      return pipeline.exec();
    });
  }

  /**
   * A node that restarted or failed over since its data was vouched for (see ServerTrust), or
   * that setNodes() added (`mustClear`): every entry under the prefix is deleted on it, as any
   * may be older than the last write, and its data is vouched for again. Answers what was
   * done, for the rediscovery's report.
   */
  async clearUntrusted(node: RingNode): Promise<{ reason: string; cleared: number } | undefined> {
    const reason =
      node.distrust ??
      (node.mustClear
        ? 'it joined the ring: its entries may predate writes made elsewhere'
        : undefined);
    if (reason === undefined) return undefined;
    const cleared = await unlinkPrefix(node.client, this.options.prefix);
    if (node.distrust !== undefined && this.enabled) await this.recorder.noteLost(node);
    await node.vouch();
    node.mustClear = false;
    return { reason, cleared };
  }

  /** Brings `node`, which is about to rejoin, up to date (see the class). */
  async handOff(node: RingNode): Promise<HandoffReport> {
    const report: HandoffReport = { entries: 0, overflowed: false };
    // From here on, this process's writes for the node are noted (see invalidateLate).
    this.recorder.capture(node.name);
    const outage = await this.gather(node);
    if (await this.incomplete(node, outage.heirs)) {
      await this.applyOverflowPolicy(node, outage, report);
    } else {
      // Clears first: entries written after a clear are among the hints, handed back below.
      for (const keyPrefix of outage.clears) {
        report.cleared = (report.cleared ?? 0) + (await unlinkPrefix(node.client, keyPrefix));
      }
      for (let pass = 0; pass < HANDOFF_PASSES; pass++) {
        this.recorder.beginPass(node.name);
        const handed = await this.drainAll(node, this.heirsOf(node, outage));
        report.entries += handed;
        if (handed === 0) break;
      }
    }
    report.entries += await this.dropCopiesHeld(node);
    await this.dropShadowed(node, outage);
    await this.forgetOutage(node, outage);
    this.recorder.forget(node.name);
    return report;
  }

  /**
   * In the tick `node` rejoins: the entries this process wrote for it after the last pass over
   * its hints are deleted on it and where they were written. The deletes reach the node before
   * any read that follows (one connection keeps its commands in order): this process never
   * reads a value older than its own last write. Hints other processes left are swept.
   */
  invalidateLate(node: RingNode): void {
    for (const [entry, heir] of this.recorder.takeCaptured(node.name)) {
      node.client.del(toWire(entry)).catch(() => undefined);
      if (!this.placement.isHome(heir.name, entry)) {
        heir.client.del(toWire(entry)).catch(() => undefined);
      }
    }
  }

  /** The revival stopped short of rejoining: what was noted for it is dropped. */
  discardLate(node: RingNode): void {
    this.recorder.takeCaptured(node.name);
  }

  /**
   * For a node in the ring: hints some process recorded for it after it was brought back (a
   * write that raced its return, or whose process died before handing it off) are invalidated
   * now, on the `holders` the last read of the fleet found some on. Answers how many.
   */
  sweep(node: RingNode, holders: readonly RingNode[]): Promise<number> {
    return this.drainAll(node, holders);
  }

  /**
   * The heirs and clears of `node`'s outage, as the alive nodes know them. Every process
   * writes them on every node it reaches, so the nodes that answer promptly know them all: a
   * node that has not answered `GATHER_GRACE_MS` after the first one did (hung, and not ejected
   * yet) is not waited for.
   */
  private async gather(node: RingNode): Promise<Outage> {
    const outage: Outage = { heirs: new Map(), clears: new Set(), othersHeirs: new Map() };
    const outOwners = [...this.membership.all()].filter(
      (owner) => owner !== node && !owner.health.alive,
    );
    await this.onAlive(node, GATHER_GRACE_MS, async (client) => {
      const pipeline = client
        .pipeline()
        .hgetall(this.keys.heirs(node.name))
        .smembers(this.keys.clears(node.name));
      for (const owner of outOwners) pipeline.hgetall(this.keys.heirs(owner.name));
      const replies = ((await pipeline.exec()) ?? []).map(([, reply]) => reply);
      const [heirs, clears, ...others] = replies as [
        Record<string, string> | undefined,
        string[] | undefined,
        ...(Record<string, string> | undefined)[],
      ];
      for (const [heir, runId] of Object.entries(heirs ?? {})) outage.heirs.set(heir, runId);
      for (const keyPrefix of clears ?? []) outage.clears.add(keyPrefix);
      outOwners.forEach((owner, i) => {
        const named = Object.keys(others[i] ?? {});
        if (named.length === 0) return;
        const set = outage.othersHeirs.get(owner.name) ?? new Set<string>();
        for (const heir of named) set.add(heir);
        outage.othersHeirs.set(owner.name, set);
      });
    });
    return outage;
  }

  /**
   * True when some writes of the outage cannot be found: an heir is out, or restarted since
   * it took them, or stopped recording (the limit), or setNodes() took it out of the ring (its
   * hints went with it), or this process could not record some.
   */
  private async incomplete(node: RingNode, heirs: ReadonlyMap<string, string>): Promise<boolean> {
    if (this.recorder.lostHintsOf(node.name)) return true;
    for (const [name, runId] of heirs) {
      const heir = this.membership.find(name);
      if (heir === undefined) return true;
      if (heir === node) continue;
      if (
        !heir.health.alive ||
        (runId !== '' && heir.runId !== undefined && heir.runId !== runId)
      ) {
        return true;
      }
      try {
        if ((await heir.client.exists(this.keys.overflow(node.name))) === 1) return true;
      } catch (error) {
        await this.cleanUpFailed(heir, error);
        return true;
      }
    }
    return false;
  }

  /**
   * Hands back the hints for `owner` that every other alive node holds; answers how many. In
   * `'copy'` mode an entry hinted on a node that no longer has it is deleted on the owner only
   * if no node had it: a single writer's newer copy is on at most one node (a copy superseded
   * elsewhere is deleted when that happens, see dropOwnCopies and dropShadowed).
   */
  private async drainAll(owner: RingNode, heirs: readonly RingNode[]): Promise<number> {
    let handed = 0;
    const copied = new Set<string>();
    const missing = new Set<string>();
    for (const heir of heirs) {
      if (heir === owner || !heir.health.alive || !heir.ready) continue;
      try {
        handed += await drainHints(heir, owner, this.drainContext, copied, missing);
      } catch (error) {
        // The returning node failing mid-drain is not the heir's doing: the revival fails, the
        // heir stays (blamed, a node flapping every 400 ms took every node out everywhere).
        if (isConnectionError(error) && (await answersPing(heir))) throw error;
        // An heir that stopped answering: out, cleared when it returns; the owner's next
        // revival finds its hints out of reach (see incomplete).
        await this.cleanUpFailed(heir, error);
        throw error;
      }
    }
    const gone = [...missing].filter((entry) => !copied.has(entry));
    if (gone.length > 0) {
      await inChunks(gone, PIPELINE_CHUNK, (chunk) => owner.client.del(...allToWire(chunk)));
    }
    return handed;
  }

  /**
   * The nodes that may hold hints for `node`: those named in its heirs by any process (every
   * process names a node there before its first write on it for `node`), and those this
   * process wrote on. Only they are asked: a hung node that took nothing never holds up a
   * return.
   */
  private heirsOf(node: RingNode, outage: Outage): RingNode[] {
    const names = new Set([...outage.heirs.keys(), ...this.recorder.heirsOf(node.name)]);
    return [...names]
      .map((name) => this.membership.find(name))
      .filter((heir): heir is RingNode => heir !== undefined);
  }

  /**
   * `node` is back: the copies it holds of other owners' entries — taken while they were out,
   * before it went out itself — may be older than what was written since (elsewhere while it
   * was out, or on an owner that came back meanwhile). They go; answers how many. For an owner
   * still out, its hints stay on `node` for its own return. For an owner back already, they go
   * too: that owner came back while `node`, named among its heirs, was out, so its handoff
   * could not read them and cleared it whole instead (see incomplete).
   */
  private async dropCopiesHeld(node: RingNode): Promise<number> {
    const { placement } = this;
    const heldFor = (entry: string) => !placement.isHome(node.name, entry);
    let dropped = 0;
    for (const owner of this.membership.all()) {
      if (owner === node) continue;
      const [hints, overflow] = [this.keys.hints(owner.name), this.keys.overflow(owner.name)];
      let held = false;
      if ((await node.client.exists(overflow)) === 1) {
        held = true;
        dropped += await unlinkPrefix(node.client, this.options.prefix, (entry) => {
          return placement.isHome(owner.name, entry) && heldFor(entry);
        });
      } else {
        for await (const found of scanHash(node.client, hints)) {
          held = true;
          const copies = found.map(([entry]) => entry).filter(heldFor);
          if (copies.length > 0) dropped += await node.client.unlink(...allToWire(copies));
        }
      }
      if (!held || !owner.health.alive) continue;
      await node.client.del(hints, overflow, this.keys.sequence(owner.name));
      await this.onAlive(null, Infinity, (client) =>
        client.hdel(this.keys.heirs(owner.name), node.name),
      );
    }
    return dropped;
  }

  /**
   * `node` is back: entries of owners still out that route to it from now on may have copies
   * on the nodes that served them until now (their heirs, as gathered). A copy left there
   * would be served, stale, at `node`'s next outage (newer writes go to `node`): deleted now.
   * The hints stay, for the owner's own return. Where an owner's hints overflowed, its entries
   * are found by a scan.
   */
  private async dropShadowed(node: RingNode, outage: Outage): Promise<void> {
    const back = this.membership.aliveHash.with(
      node.name,
      this.membership.totalHash.capacityOf(node.name) ?? node.capacity,
    );
    const { placement } = this;
    for (const [ownerName, heirs] of outage.othersHeirs) {
      const owner = this.membership.find(ownerName);
      if (owner === undefined || owner.health.alive) continue;
      // The entry's copy moves from `holder` to `node` (with one copy: it routes here now).
      const displaced = (holder: RingNode) => (entry: string) => {
        const targets = placement.targets(entry, back);
        return (
          targets.includes(node.name) &&
          !targets.includes(holder.name) &&
          placement.isHome(owner.name, entry)
        );
      };
      const holders = [...heirs, ...this.recorder.heirsOf(ownerName)]
        .map((name) => this.membership.find(name))
        .filter((holder) => holder !== undefined && holder !== node && holder.ready);
      for (const holder of new Set(holders as RingNode[])) {
        if ((await holder.client.exists(this.keys.overflow(owner.name))) === 1) {
          await unlinkPrefix(holder.client, this.options.prefix, displaced(holder));
          continue;
        }
        for await (const found of scanHash(holder.client, this.keys.hints(owner.name))) {
          const shadowed = found.map(([entry]) => entry).filter(displaced(holder));
          if (shadowed.length > 0) await holder.client.unlink(...allToWire(shadowed));
        }
      }
    }
  }

  /** The hints are incomplete: clear the node's entries, or trust TTLs. */
  private async applyOverflowPolicy(
    node: RingNode,
    outage: Outage,
    report: HandoffReport,
  ): Promise<void> {
    report.overflowed = true;
    // With no prefix, 'clear' would wipe whole servers: TTLs are trusted instead.
    const policy =
      this.options.prefix !== '' && this.options.overflowPolicy === 'clear' ? 'clear' : 'ttl';
    report.policy = policy;
    if (policy === 'ttl') {
      for (const keyPrefix of outage.clears) await unlinkPrefix(node.client, keyPrefix);
      report.entries += await this.drainAll(node, this.heirsOf(node, outage));
      return;
    }
    let cleared = await unlinkPrefix(node.client, this.options.prefix);
    // Every copy of its entries elsewhere goes too: those no hint names would be served,
    // stale, at the node's next outage. By the total ring, as the hints count owners; a copy
    // the other node holds in its own right (replicas) took every write and stays.
    const { placement } = this;
    for (const name of this.membership.aliveHash.nodes) {
      const other = this.membership.node(name);
      if (other === node || !other.ready) continue;
      const heldForNode = (entry: string) =>
        placement.isHome(node.name, entry) && !placement.isHome(other.name, entry);
      try {
        cleared += await unlinkPrefix(other.client, this.options.prefix, heldForNode);
        await other.client.del(
          this.keys.hints(node.name),
          this.keys.overflow(node.name),
          this.keys.sequence(node.name),
        );
      } catch (error) {
        await this.cleanUpFailed(other, error);
      }
    }
    report.cleared = (report.cleared ?? 0) + cleared;
  }

  /**
   * `other` failed the overflow clean-up of a returning node. A reply error (an ACL without
   * SCAN, MISCONF) is thrown, naming the node that refused: the returning node stays out, its
   * entries served where they are, and never a node ejected for a reply. A node that does not
   * answer is the one failing: it is ejected, and cleared whole when it returns, as its copies
   * can no longer be told from its own entries.
   */
  private async cleanUpFailed(other: RingNode, error: unknown): Promise<void> {
    if (!isConnectionError(error)) {
      throw new RingError(`clearing its entries on ${other.name} failed: ${other.describe(error)}`);
    }
    this.membership.eject(other, error);
    await this.noteClear(this.options.prefix, [other]);
  }

  /** Strikes what was handed back from every alive node's notes; heirs still out stay named. */
  private async forgetOutage(node: RingNode, outage: Outage): Promise<void> {
    if (outage.heirs.size === 0 && outage.clears.size === 0) return;
    const handled = [...outage.heirs.keys()].filter(
      (name) => this.membership.find(name)?.health.alive ?? true,
    );
    await this.onAlive(null, Infinity, (client) => {
      const pipeline = client.pipeline();
      if (handled.length > 0) pipeline.hdel(this.keys.heirs(node.name), ...handled);
      if (outage.clears.size > 0) pipeline.srem(this.keys.clears(node.name), ...outage.clears);
      pipeline.del(this.keys.overflow(node.name));
      return pipeline.exec();
    });
  }

  /**
   * Runs `command` on every alive, connected node but `except`, in parallel. A reply error is
   * thrown (the revival fails and is tried again); a node that fails to answer is left out.
   */
  private async onAlive(
    except: RingNode | null,
    graceMs: number,
    command: (client: RingNode['client']) => Promise<unknown>,
  ): Promise<void> {
    const sent = this.membership.aliveHash.nodes
      .map((name) => this.membership.node(name))
      .filter((node) => node !== except && node.ready)
      .map((node) =>
        command(node.client).catch((error: unknown) => {
          if (!isConnectionError(error)) throw error;
        }),
      );
    await allOrSoonAfterFirst(sent, graceMs);
  }
}
