import type { RingMembership } from '../membership/ring-membership.js';
import type { RingNode } from '../node/ring-node.js';
import { isFail, type Fail, type RingFailures } from '../membership/ring-failures.js';
import type { ReplicaScan } from './replica-scan.js';
import { globEscape, scanKeys } from './scan-keys.js';

/** One SCAN batch of one node: the keys it holds under the scanned prefix. */
export interface NodeBatch {
  node: RingNode;
  keys: string[];
}

/**
 * SCANs over the ring's nodes for `size`, `keys`, `entries` and `clear`: node by node, over
 * the nodes alive when the scan starts. A node that fails is ejected and the scan goes on;
 * a scan that no node finished fails like a request (`onFail`'s answer, or the error).
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
  ) {}

  /** Batches of keys under `prefix + keyPrefix`, node by node, over the nodes alive when it starts. */
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
    for (const name of names) {
      // Removed by setNodes since the scan began: it holds none of the dict's entries now.
      const node = this.membership.find(name);
      if (node === undefined) continue;
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

  /** Like `nodeBatches`, keeping only the keys each node owns now (no stale copies, no duplicates). */
  async *ownedBatches(): AsyncGenerator<NodeBatch | Fail<F>> {
    for await (const batch of this.nodeBatches()) {
      if (isFail(batch)) {
        yield batch;
        return;
      }
      const ring = this.membership.aliveHash;
      const keys = this.copies
        ? await this.copies.firstHeld(batch)
        : batch.keys.filter((entry) => ring.locate(entry) === batch.node.name);
      yield { node: batch.node, keys };
    }
  }
}
