import type { RingMembership } from '../membership/ring-membership.js';
import type { RingNode } from '../node/ring-node.js';
import type { HandoffLog } from './handoff-log.js';

/** A write that a node took on behalf of the entry's ejected owner. */
export type OnBehalf = readonly [owner: string, entry: string];

/**
 * The write side of the hinted handoff: while some node is ejected, writes that land on
 * another node on its behalf are remembered (which node took each entry), so the owner can
 * be brought up to date before it serves reads again.
 */
export class HandoffRecorder {
  constructor(
    private readonly log: HandoffLog,
    private readonly membership: RingMembership,
  ) {}

  /** Writes must be remembered for hinted handoff while some node is ejected. */
  get needed(): boolean {
    return this.membership.anyEjected && this.log.enabled;
  }

  /** Of `entries` written on `node`, those whose owner (by the total ring) is another node. */
  onBehalf(node: RingNode, entries: string | readonly string[]): OnBehalf[] | undefined {
    let writes: OnBehalf[] | undefined;
    // A single entry comes as a string: wrapped in an array only while hints are needed.
    for (const entry of typeof entries === 'string' ? [entries] : entries) {
      const owner = this.membership.totalHash.locate(entry)!;
      if (owner !== node.name) (writes ??= []).push([owner, entry]);
    }
    return writes;
  }

  /**
   * Records writes that `node` took for ejected owners. Called whether the write succeeded or
   * not: it may have been applied all the same, and an unneeded hint costs one extra copy,
   * never a stale read.
   */
  async remember(node: RingNode, writes: readonly OnBehalf[]): Promise<void> {
    const late: Promise<unknown>[] = [];
    for (const [owner, entry] of writes) {
      const ownerNode = this.membership.node(owner);
      if (ownerNode.health.alive) {
        // The owner rejoined while this write was on its way, too late for its handoff:
        // delete the entry on both sides before the caller goes on — a miss, never stale.
        late.push(this.deleteOrRemember(ownerNode, entry), this.deleteOrRemember(node, entry));
        continue;
      }
      const previous = this.log.remember(owner, entry, node.name);
      if (previous !== null) this.dropCopy(previous, entry);
    }
    if (late.length > 0) await Promise.all(late);
  }

  /** A node holds a copy of `entry` that a newer write elsewhere made stale: delete it. */
  dropCopy(name: string, entry: string): void {
    const node = this.membership.node(name);
    // Unreachable now: delete it before that node rejoins.
    if (!node.health.alive) this.log.remember(name, entry, null);
    else void this.deleteOrRemember(node, entry);
  }

  /**
   * Deletes `entry` on `node`. Should that fail (the node is dying: a write still buffered
   * there may yet land), the node deletes it before it next rejoins.
   */
  deleteOrRemember(node: RingNode, entry: string): Promise<void> {
    return node.client.del(entry).then(
      () => undefined,
      () => {
        this.log.remember(node.name, entry, null);
      },
    );
  }
}
