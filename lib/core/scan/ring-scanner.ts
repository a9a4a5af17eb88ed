import type { HashRing } from '../hashing/hash-ring.js';
import type { RingMembership } from '../membership/ring-membership.js';
import type { RingNode } from '../node/ring-node.js';
import { isFail, type Fail, type RingFailures } from '../membership/ring-failures.js';
import type { ReplicaScan } from './replica-scan.js';
import { globEscape, scanKeys } from './scan-keys.js';
import { allToWire } from '../keys/wire.js';

/** A migration, as the scans see it (see MigrationRoute): while on, `from` places the keys. */
export interface MigrationScan {
  readonly on: boolean;
  readonly from: HashRing;
  /** The nodes of `from`, those shared with the dict's own included. */
  fromNodes(): Iterable<RingNode>;
}

/** One SCAN batch of one node: the keys it holds under the scanned prefix. */
export interface NodeBatch {
  node: RingNode;
  keys: string[];
}

/**
 * SCANs over the ring's nodes for `size`, `keys`, `entries` and `clear`: node by node, over
 * the nodes alive both when the scan starts and as their turn comes. A node that fails is
 * ejected and the scan goes on; a scan that no node finished fails like a request (`onFail`'s
 * answer, or the error).
 */
export class RingScanner<F> {
  constructor(
    private readonly membership: RingMembership,
    private readonly failures: RingFailures<F>,
    /** The dict's prefix: every scan stays under it. */
    private readonly prefix: string,
    private readonly commandTimeout: number,
    /** With replicas: each entry counted once, on the first target holding it. */
    private readonly copies?: ReplicaScan<F>,
    /** While it lasts, the nodes only `from` names are scanned too, and `from` says who owns. */
    private readonly migration?: MigrationScan,
  ) {}

  /** Batches of keys under `prefix + keyPrefix`, node by node (see `scanned`). */
  async *nodeBatches(keyPrefix = ''): AsyncGenerator<NodeBatch | Fail<F>> {
    if (this.membership.closed) throw this.failures.closedError();
    const names = this.membership.aliveHash.nodes;
    if (names.length === 0) {
      yield this.failures.fail(undefined);
      return;
    }
    const match = `${globEscape(this.prefix + keyPrefix)}*`;
    let scanned = false;
    let lastError: unknown;
    for (const node of this.scanned(names)) {
      try {
        if (!node.ready) await node.connect(this.commandTimeout);
        for await (const keys of scanKeys(node.client, match)) yield { node, keys };
        scanned = true;
      } catch (error) {
        // Its keys now belong to the next nodes; what they hold is scanned there.
        this.failures.ejectFromScan(node, error);
        lastError = error;
      }
    }
    // No node finished its scan: nothing was counted, listed or cleared, which is not an
    // empty dict.
    if (!scanned) yield this.failures.fail(lastError);
  }

  /**
   * The nodes of `names` still members and alive as their turn comes, then, during a
   * migration, those only `from` names: reads go there, so a clear must reach them and a count
   * must see them. setNodes may remove a node meanwhile (it holds none of the dict's entries
   * now); a request, or this scan's EXISTS to a copy, may eject one: connecting to it again
   * cost a hung node's scan a second commandTimeout, and its keys are now the next nodes'
   * (a clear notes itself for it, see RingClear).
   */
  private *scanned(names: readonly string[]): Generator<RingNode> {
    for (const name of names) {
      const node = this.membership.find(name);
      if (node?.health.alive) yield node;
    }
    if (!this.migration?.on) return;
    for (const node of this.migration.fromNodes()) {
      if (!this.membership.isMember(node)) yield node;
    }
  }

  /** Like `nodeBatches`, keeping only the keys each node owns now (no stale copies, no duplicates). */
  async *ownedBatches(): AsyncGenerator<NodeBatch | Fail<F>> {
    for await (const batch of this.nodeBatches()) {
      if (isFail(batch)) {
        yield batch;
        return;
      }
      // During a migration the keys are where `from` places them: reads go there.
      const ring = this.migration?.on ? this.migration.from : this.membership.aliveHash;
      const keys = this.copies
        ? await this.copies.firstHeld(batch)
        : batch.keys.filter((entry) => ring.locate(entry) === batch.node.name);
      yield { node: batch.node, keys };
    }
  }

  /**
   * Each entry the nodes own now with its stored value (`entries`): an MGET per batch, as
   * strings or, for a binary codec, Buffers. A node whose MGET fails is ejected and skipped;
   * an entry expired or deleted between SCAN and MGET is left out. A scan that fails ends.
   */
  async *ownedValues(binary: boolean): AsyncGenerator<[string, string | Buffer]> {
    for await (const batch of this.ownedBatches()) {
      if (isFail(batch)) return;
      const { node, keys } = batch;
      if (keys.length === 0) continue;
      let raws: (string | Buffer | null)[];
      try {
        raws = binary
          ? await node.client.mgetBuffer(allToWire(keys))
          : await node.client.mget(allToWire(keys));
      } catch (error) {
        this.failures.ejectFromScan(node, error);
        continue;
      }
      for (let i = 0; i < keys.length; i++) {
        const raw = raws[i];
        if (raw !== null) yield [keys[i], raw];
      }
    }
  }
}
