import { RingError } from '../errors.js';
import type { RingMembership } from '../membership/ring-membership.js';
import { isConnectionError } from '../node/connection-errors.js';
import type { RingNode } from '../node/ring-node.js';
import { unlinkPrefix } from '../scan/scan-keys.js';
import type {
  HandoffHints,
  HandoffLog,
  HandoffOverflowPolicy,
  HandoffReport,
} from './handoff-log.js';
import type { HandoffRecorder } from './handoff-recorder.js';
import { deleteEntries, transferEntries } from './transfer.js';

/** Passes of a handoff: writes keep coming while it copies, so it takes a few. */
const HANDOFF_PASSES = 3;

/**
 * The return side of the hinted handoff: before an ejected node rejoins, the entries written
 * or deleted on its behalf while it was away are copied back from the nodes that took them
 * (or deleted), so it never serves a value older than one written meanwhile. When more was
 * written than the log remembers, the overflow policy applies.
 */
export class HandoffCatchUp {
  /** Hints taken by handoffs under way, per owner: still remembered for shadowedBy(). */
  private readonly handingOff = new Map<string, HandoffHints>();

  constructor(
    private readonly membership: RingMembership,
    private readonly log: HandoffLog,
    private readonly recorder: HandoffRecorder,
    /** The dict's prefix: the overflow policy clears under it. */
    private readonly prefix: string,
    private readonly overflowPolicy: HandoffOverflowPolicy,
    private readonly commandTimeout: number,
  ) {}

  get enabled(): boolean {
    return this.log.enabled;
  }

  /**
   * Copies back, from the nodes that took them, the entries written or deleted on `node`'s
   * behalf while it was away. Writes keep coming meanwhile, so it takes a few passes.
   */
  async handOff(node: RingNode): Promise<HandoffReport> {
    const report: HandoffReport = { entries: 0, overflowed: false };
    for (let pass = 0; pass < HANDOFF_PASSES; pass++) {
      const taken = this.log.take(node.name);
      this.handingOff.set(node.name, taken.hints);
      try {
        // Clears first: entries written after a clear are among the hints, handed back below.
        for (const keyPrefix of taken.clears) await unlinkPrefix(node.client, keyPrefix);
        if (taken.overflowed) {
          await this.applyOverflowPolicy(node, report, taken.hints, taken.spilledTo);
        } else if (pass === 0 && this.log.anySpilled && this.clearsOnOverflow) {
          // Not overflowed itself, it may still shadow copies another overflowed owner left.
          await this.unlinkElsewhere(this.shadowedBy(node));
        }
        if (taken.hints.size === 0) break;
        await this.handBack(node, taken.hints);
      } catch (error) {
        this.log.restore(node.name, taken);
        throw error;
      } finally {
        this.handingOff.delete(node.name);
      }
      report.entries += taken.hints.size;
    }
    return report;
  }

  /**
   * Entries written for `node` after the handoff's last pass: deleted on the node and on the
   * node that took them, in this same tick, so the DELs reach the node before any read that
   * follows its rejoining (one connection keeps its commands in order). False when too much
   * was written, or something cleared, meanwhile: the node stays out until the next try.
   */
  invalidateRest(node: RingNode): boolean {
    const rest = this.log.take(node.name);
    // A clear meanwhile needs a SCAN, which this tick cannot wait for: the next try does it.
    if (rest.overflowed || rest.clears.length > 0) {
      this.log.restore(node.name, rest);
      return false;
    }
    for (const [entry, heirName] of rest.hints) {
      void this.recorder.deleteOrRemember(node, entry);
      if (heirName !== null) this.recorder.dropCopy(heirName, entry);
    }
    return true;
  }

  /** One pass's hints: each entry copied from the node that took it, or deleted. */
  private async handBack(node: RingNode, hints: HandoffHints): Promise<void> {
    const byHeir = new Map<RingNode, string[]>();
    const deletes: string[] = [];
    for (const [entry, heirName] of hints) {
      const heir = heirName === null ? undefined : this.membership.node(heirName);
      if (heir?.health.alive) {
        const list = byHeir.get(heir);
        if (list) list.push(entry);
        else byHeir.set(heir, [entry]);
      } else {
        // Deleted meanwhile, or its newer copy is on a node that is down too: a miss
        // here, and that copy goes before its own node rejoins.
        deletes.push(entry);
        if (heirName !== null) this.log.remember(heirName, entry, null);
      }
    }
    await Promise.all([
      deleteEntries(node.client, deletes),
      ...[...byHeir].map(async ([heir, entries]) => {
        if (!heir.ready) await heir.connect(this.commandTimeout);
        await transferEntries(heir.client, node.client, entries);
      }),
    ]);
  }

  /** Too much was written meanwhile to remember it all: clear the node's entries, or trust TTLs. */
  private async applyOverflowPolicy(
    node: RingNode,
    report: HandoffReport,
    remembered: HandoffHints,
    spilledTo: ReadonlySet<string>,
  ): Promise<void> {
    report.overflowed = true;
    const policy = this.clearsOnOverflow ? 'clear' : 'ttl';
    report.policy = policy;
    if (policy !== 'clear') {
      // TTLs are trusted, its unremembered copies' too: else it would be held out for good.
      this.log.clearedSpills(node.name);
      return;
    }
    let cleared = await unlinkPrefix(node.client, this.prefix);
    this.log.clearedSpills(node.name);
    // The writes the log did not remember left their copies on the nodes that took them,
    // which would serve them, stale, at the node's next outage: delete every entry the node
    // owns wherever else it is — but the remembered copies, which the handoff copies back next.
    // Owns in the total ring, as the log counts owners: with another node out too, the alive
    // ring would lend the node entries that other node owns.
    const shadowed = this.shadowedBy(node);
    const totalHash = this.membership.totalHash;
    cleared += await this.unlinkElsewhere((entry, holder) =>
      totalHash.locate(entry) === node.name ? remembered.get(entry) !== holder : shadowed(entry),
    );
    // A node that is out too and took such writes holds copies as well: it is cleared when it
    // returns. Only those: marking every node out would clear a node returning at the same
    // time a second time, remembered entries and all.
    for (const other of this.membership.all()) {
      if (other !== node && !other.health.alive && spilledTo.has(other.name)) {
        this.log.overflow(other.name);
      }
    }
    report.cleared = (report.cleared ?? 0) + cleared;
  }

  /** The `'clear'` overflow policy applies (with no prefix it would clear whole servers). */
  private get clearsOnOverflow(): boolean {
    return this.prefix !== '' && this.overflowPolicy === 'clear';
  }

  /**
   * Picks the unremembered copies of an owner still out that route to `node` once it is
   * back: they would be served, stale, at `node`'s next outage. Remembered ones — in its log,
   * or taken by its handoff under way — are that owner's to hand back.
   */
  private shadowedBy(node: RingNode): (entry: string) => boolean {
    const back = this.membership.aliveHash.with(node.name, node.capacity);
    return (entry) => {
      const owner = this.membership.ownerOf(entry);
      return (
        owner !== node &&
        !owner.health.alive &&
        back.locate(entry) === node.name &&
        !this.log.remembers(owner.name, entry) &&
        !this.handingOff.get(owner.name)?.has(entry)
      );
    };
  }

  /**
   * Deletes, on every alive node, the entries under the prefix that `which` picks (given the
   * node holding them); answers how many. A node that fails is the one failing: it is ejected,
   * and cleared when it returns, as its copies can no longer be told from its own entries.
   * A node that answers with a reply error (an ACL without SCAN, MISCONF) is not ejected: the
   * returning node stays out, its entries served where they are, and its health says which
   * node refused the clean-up.
   */
  private async unlinkElsewhere(
    which: (entry: string, holder: string) => boolean,
  ): Promise<number> {
    let deleted = 0;
    for (const name of this.membership.aliveHash.nodes) {
      const other = this.membership.node(name);
      try {
        if (!other.ready) await other.connect(this.commandTimeout);
        deleted += await unlinkPrefix(other.client, this.prefix, (entry) => which(entry, name));
      } catch (error) {
        if (!isConnectionError(error)) {
          throw new RingError(`clearing its entries on ${name} failed: ${other.describe(error)}`);
        }
        this.membership.eject(other, error);
        this.log.overflow(name);
      }
    }
    return deleted;
  }
}
