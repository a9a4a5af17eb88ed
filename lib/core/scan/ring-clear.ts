import type { HandoffCatchUp } from '../handoff/handoff-catch-up.js';
import type { RingMembership } from '../membership/ring-membership.js';
import type { RingNode } from '../node/ring-node.js';
import { answerFail, isFail, type Fail, type RingFailures } from '../membership/ring-failures.js';
import type { ReplicaScan } from './replica-scan.js';
import type { RingScanner } from './ring-scanner.js';
import { unlinkPrefix } from './scan-keys.js';
import { allToWire } from '../keys/wire.js';

/**
 * Passes of a clear's catch-up (see `catchUp`) while nodes keep coming and going; past them,
 * a node that is out still has the clear noted.
 */
const CATCH_UP_PASSES = 5;

/**
 * `clear()` and `clearPrefix()`: every entry under a prefix deleted on every alive node,
 * stale copies included. Nodes out at the time delete them before they rejoin (the handoff
 * log notes the clear for them), and nodes that go out or come back during the clear are
 * caught up at its end, or cleared values would come back with them.
 */
export class RingClear<F> {
  constructor(
    private readonly membership: RingMembership,
    private readonly scanner: RingScanner<F>,
    private readonly failures: RingFailures<F>,
    private readonly handoff: HandoffCatchUp,
    /** The dict's prefix: a clear stays under it. */
    private readonly prefix: string,
    private readonly commandTimeout: number,
    /** With replicas: each entry deleted on every copy at once, and counted once. */
    private readonly copies?: ReplicaScan<F>,
    /** Called as the clear begins and ends: the near cache drops what it holds. */
    private readonly clearing: () => void = () => undefined,
  ) {}

  /**
   * Deletes every entry under `prefix + keyPrefix`; answers how many. With no node able to
   * finish, what `unavailable` makes of the failure (onFail's answer, or a rejection).
   */
  async run(
    keyPrefix: string,
    unavailable: (fail: Fail<F>) => F = answerFail,
  ): Promise<number | F> {
    this.clearing();
    try {
      return await this.clearUnder(keyPrefix, unavailable);
    } finally {
      this.clearing();
    }
  }

  private async clearUnder(
    keyPrefix: string,
    unavailable: (fail: Fail<F>) => F,
  ): Promise<number | F> {
    const prefix = this.prefix + keyPrefix;
    // Nodes that are out now still hold these entries: they delete them before they rejoin,
    // or the cleared values would come back with them.
    const transitions = new Map<RingNode, number>();
    if (this.handoff.enabled) {
      for (const node of this.membership.all()) transitions.set(node, transitionsOf(node));
      await this.handoff.noteClear(prefix, this.outNodes());
    }
    let deleted = 0;
    try {
      for await (const batch of this.scanner.nodeBatches(keyPrefix)) {
        if (isFail<F>(batch)) return unavailable(batch);
        if (batch.keys.length === 0) continue;
        try {
          deleted += this.copies
            ? await this.copies.unlinkEveryCopy(batch)
            : await batch.node.client.unlink(...allToWire(batch.keys));
        } catch (error) {
          this.failures.ejectFromScan(batch.node, error);
        }
      }
    } finally {
      if (!this.membership.closed) deleted += await this.catchUp(transitions, prefix);
    }
    // Closed while its last commands were answered: the catch-up did not run, or not all of it.
    if (this.membership.closed) throw this.failures.closedError();
    return deleted;
  }

  /**
   * After a clear of `prefix`, the nodes it may have missed (their transitions counted in
   * `before`). A node ejected and back meanwhile was skipped, cut short, or handed values the
   * clear then missed: it is cleared now. Only then is the clear noted again for every node
   * still out: a revival may have taken the first note and be copying back values from a
   * node cleared here, so it must not finish before that node is. Repeated while nodes come
   * and go during this very pass. Answers how many entries were deleted.
   */
  private async catchUp(before: ReadonlyMap<RingNode, number>, prefix: string): Promise<number> {
    let deleted = 0;
    let since = before;
    for (let pass = 0; pass < CATCH_UP_PASSES; pass++) {
      const now = new Map([...since.keys()].map((node) => [node, transitionsOf(node)]));
      for (const [node, transitions] of now) {
        if (!node.health.alive || transitions === since.get(node)) continue;
        try {
          if (!node.ready) await node.connect(this.commandTimeout);
          deleted += await unlinkPrefix(node.client, prefix);
        } catch (error) {
          this.failures.ejectFromScan(node, error);
        }
      }
      await this.handoff.noteClear(prefix, this.outNodes());
      if ([...now].every(([node, transitions]) => transitionsOf(node) === transitions)) break;
      since = now;
    }
    return deleted;
  }

  /** The nodes that are out now. */
  private outNodes(): RingNode[] {
    return [...this.membership.all()].filter((node) => !node.health.alive);
  }
}

/** How many times `node` was ejected or rediscovered so far. */
function transitionsOf(node: RingNode): number {
  return node.health.ejections + node.health.rediscoveries;
}
