import type { RingMembership } from '../membership/ring-membership.js';
import { isConnectionError } from '../node/connection-errors.js';
import { PIPELINE_CHUNK } from '../node/pipeline.js';
import type { RingNode } from '../node/ring-node.js';
import { scanSet, unlinkPrefix } from '../scan/scan-keys.js';
import type { HandoffRecorder } from './handoff-recorder.js';
import type { HandoffMode, HandoffOverflowPolicy, HandoffReport } from './handoff-report.js';
import type { HintKeys } from './hint-keys.js';
import { transferEntries } from './transfer.js';

/** Passes over the hints of a returning node: writes keep coming while it works. */
const HANDOFF_PASSES = 3;

/** What the alive nodes know of a returning node's outage. */
interface Outage {
  /** Heir name → its server process when it first took hints. */
  heirs: Map<string, string>;
  /** Key prefixes cleared while the node was out. */
  clears: Set<string>;
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
  ) {}

  get enabled(): boolean {
    return this.options.limit > 0;
  }

  /**
   * `keyPrefix` was cleared while `nodes` were out: each deletes it before it rejoins. Noted
   * on every alive node, whichever process brings them back.
   */
  async noteClear(keyPrefix: string, nodes: readonly RingNode[]): Promise<void> {
    if (!this.enabled || nodes.length === 0) return;
    await this.onAlive(null, (client) => {
      const pipeline = client.pipeline();
      for (const node of nodes) pipeline.sadd(this.keys.clears(node.name), keyPrefix);
      return pipeline.exec();
    });
  }

  /**
   * A node that restarted or failed over since its data was vouched for (see ServerTrust):
   * every entry under the prefix is deleted on it, as any may be older than the last write,
   * and its data is vouched for again. Answers what was done, for the rediscovery's report.
   */
  async clearUntrusted(node: RingNode): Promise<{ reason: string; cleared: number } | undefined> {
    const reason = node.distrust;
    if (reason === undefined) return undefined;
    const cleared = await unlinkPrefix(node.client, this.options.prefix);
    await node.vouch();
    return { reason, cleared };
  }

  /** Brings `node`, which is about to rejoin, up to date (see the class). */
  async handOff(node: RingNode): Promise<HandoffReport> {
    const report: HandoffReport = { entries: 0, overflowed: false };
    const outage = await this.gather(node);
    if (await this.incomplete(node, outage.heirs)) {
      await this.applyOverflowPolicy(node, outage, report);
    } else {
      // Clears first: entries written after a clear are among the hints, handed back below.
      for (const keyPrefix of outage.clears) await unlinkPrefix(node.client, keyPrefix);
      for (let pass = 0; pass < HANDOFF_PASSES; pass++) {
        const handed = await this.drainAll(node);
        report.entries += handed;
        if (handed === 0) break;
      }
    }
    await this.dropShadowed(node);
    await this.forgetOutage(node, outage);
    this.recorder.forget(node.name);
    return report;
  }

  /**
   * For a node in the ring: hints some process recorded for it after it was brought back (a
   * write that raced its return, or whose process died before handing it off) are invalidated
   * now, on every alive node that holds some. Answers how many.
   */
  sweep(node: RingNode): Promise<number> {
    return this.drainAll(node);
  }

  /** The heirs and clears of `node`'s outage, as every alive node knows them. */
  private async gather(node: RingNode): Promise<Outage> {
    const outage: Outage = { heirs: new Map(), clears: new Set() };
    await this.onAlive(node, async (client) => {
      const [[, heirs], [, clears]] = ((await client
        .pipeline()
        .hgetall(this.keys.heirs(node.name))
        .smembers(this.keys.clears(node.name))
        .exec()) ?? []) as [[unknown, Record<string, string>], [unknown, string[]]];
      for (const [heir, runId] of Object.entries(heirs ?? {})) outage.heirs.set(heir, runId);
      for (const keyPrefix of clears ?? []) outage.clears.add(keyPrefix);
    });
    return outage;
  }

  /**
   * True when some writes of the outage cannot be found: an heir is out, or restarted since
   * it took them, or stopped recording (the limit), or this process could not record some.
   */
  private async incomplete(node: RingNode, heirs: ReadonlyMap<string, string>): Promise<boolean> {
    if (this.recorder.lostHintsOf(node.name)) return true;
    for (const [name, runId] of heirs) {
      const heir = this.membership.find(name);
      if (heir === undefined || heir === node) continue;
      if (
        !heir.health.alive ||
        (runId !== '' && heir.runId !== undefined && heir.runId !== runId)
      ) {
        return true;
      }
      if ((await heir.client.exists(this.keys.overflow(node.name))) === 1) return true;
    }
    return false;
  }

  /** Hands back the hints for `owner` that every other alive node holds; answers how many. */
  private async drainAll(owner: RingNode): Promise<number> {
    let handed = 0;
    for (const heir of this.aliveOthers(owner)) handed += await this.drain(heir, owner);
    return handed;
  }

  /** Alive, connected nodes but `node`. */
  private aliveOthers(node: RingNode): RingNode[] {
    return this.membership.aliveHash.nodes
      .map((name) => this.membership.node(name))
      .filter((other) => other !== node && other.ready);
  }

  /**
   * `node` is back: entries of owners still out that route to it from now on may have copies
   * on the nodes that served them until now. A copy left there would be served, stale, at
   * `node`'s next outage (newer writes go to `node`): deleted now. The hints stay, for the
   * owner's own return. Where an owner's hints overflowed, its entries are found by a scan.
   */
  private async dropShadowed(node: RingNode): Promise<void> {
    const back = this.membership.aliveHash.with(node.name, node.capacity);
    const totalHash = this.membership.totalHash;
    for (const owner of this.membership.all()) {
      if (owner === node || owner.health.alive) continue;
      const routesHere = (entry: string) =>
        back.locate(entry) === node.name && totalHash.locate(entry) === owner.name;
      for (const holder of this.aliveOthers(node)) {
        if ((await holder.client.exists(this.keys.overflow(owner.name))) === 1) {
          await unlinkPrefix(holder.client, this.options.prefix, routesHere);
          continue;
        }
        for await (const found of scanSet(holder.client, this.keys.hints(owner.name))) {
          const shadowed = found.filter(routesHere);
          if (shadowed.length > 0) await holder.client.unlink(...shadowed);
        }
      }
    }
  }

  /**
   * Hands back the hints `heir` holds for `owner`, a chunk at a time, until none is left:
   * each entry deleted on both sides (`'invalidate'`) or copied to the owner (`'copy'`), then
   * struck from the hints. Answers how many.
   */
  private async drain(heir: RingNode, owner: RingNode): Promise<number> {
    const key = this.keys.hints(owner.name);
    let handed = 0;
    // Bounded: other processes may go on writing for the owner until they hear it is back;
    // what they write after this is swept once the owner is in the ring.
    for (let round = 0; round < this.options.limit / PIPELINE_CHUNK + 2; round++) {
      const entries = await heir.client.srandmember(key, PIPELINE_CHUNK);
      if (entries.length === 0) return handed;
      if (this.options.mode === 'copy') await transferEntries(heir.client, owner.client, entries);
      else await Promise.all([owner.client.unlink(...entries), heir.client.unlink(...entries)]);
      await heir.client.srem(key, ...entries);
      handed += entries.length;
    }
    return handed;
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
      report.entries += await this.drainAll(node);
      return;
    }
    let cleared = await unlinkPrefix(node.client, this.options.prefix);
    // Every copy of its entries elsewhere goes too: those no hint names would be served,
    // stale, at the node's next outage. By the total ring, as the hints count owners.
    const totalHash = this.membership.totalHash;
    const ownedByNode = (entry: string) => totalHash.locate(entry) === node.name;
    for (const name of this.membership.aliveHash.nodes) {
      const other = this.membership.node(name);
      if (other === node || !other.ready) continue;
      cleared += await unlinkPrefix(other.client, this.options.prefix, ownedByNode);
      await other.client.del(this.keys.hints(node.name), this.keys.overflow(node.name));
    }
    report.cleared = (report.cleared ?? 0) + cleared;
  }

  /** Strikes what was handed back from every alive node's notes; heirs still out stay named. */
  private async forgetOutage(node: RingNode, outage: Outage): Promise<void> {
    const handled = [...outage.heirs.keys()].filter(
      (name) => this.membership.find(name)?.health.alive ?? true,
    );
    await this.onAlive(null, (client) => {
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
    command: (client: RingNode['client']) => Promise<unknown>,
  ): Promise<void> {
    await Promise.all(
      this.membership.aliveHash.nodes
        .map((name) => this.membership.node(name))
        .filter((node) => node !== except && node.ready)
        .map((node) =>
          command(node.client).catch((error: unknown) => {
            if (!isConnectionError(error)) throw error;
          }),
        ),
    );
  }
}
