import { RingArgumentError } from './errors.js';

/** Redis' default `proto-max-bulk-len`, assumed of a server that does not tell its own. */
export const DEFAULT_MAX_BULK_BYTES = 512 * 1024 * 1024;
/** The smallest `proto-max-bulk-len` Redis accepts: a payload no longer fits every server. */
const SMALLEST_MAX_BULK_BYTES = 1024 * 1024;

/** What the limit reads of a node. */
export interface BulkLimited {
  /** The longest value its server accepts (its `proto-max-bulk-len`). */
  readonly maxBulkBytes: number;
}

/**
 * Refuses a value longer than a node's server accepts before it is sent. Redis answers such a
 * command with a protocol error and closes the connection: every command in flight on it
 * failed, the node was ejected and their keys read elsewhere, and a `setMany` lost the writes
 * queued behind it. A payload shorter than the smallest limit a server can have (1 MiB) costs
 * one comparison; a longer one, the smallest limit of the member nodes.
 */
export class PayloadLimit {
  constructor(private readonly nodes: () => Iterable<BulkLimited>) {}

  /** Throws a RingArgumentError naming `entry` when `payload` is too long for a node. */
  check(payload: string | Buffer, method: string, entry: string): void {
    // UTF-8 takes at most 3 bytes for a UTF-16 unit.
    const bound = typeof payload === 'string' ? payload.length * 3 : payload.length;
    if (bound <= SMALLEST_MAX_BULK_BYTES) return;
    const bytes = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
    let limit = Number.POSITIVE_INFINITY;
    for (const node of this.nodes()) limit = Math.min(limit, node.maxBulkBytes);
    if (bytes > limit) {
      throw new RingArgumentError(
        `${method}: the value for "${entry}" takes ${bytes} bytes, more than the ${limit} a ` +
          `node's server accepts (its proto-max-bulk-len). Nothing was written.`,
      );
    }
  }
}
