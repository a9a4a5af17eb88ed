import { RingArgumentError } from './errors.js';

/** Redis' default `proto-max-bulk-len`, assumed of a server that does not tell its own. */
export const DEFAULT_MAX_BULK_BYTES = 512 * 1024 * 1024;
/** The smallest `proto-max-bulk-len` Redis accepts: a payload no longer fits every server. */
const SMALLEST_MAX_BULK_BYTES = 1024 * 1024;

/** What the limit reads of a node. */
export interface BulkLimited {
  /** The longest value its server accepts (its `proto-max-bulk-len`); undefined before it said. */
  readonly maxBulkBytes: number | undefined;
}

/**
 * Refuses a value longer than a node's server accepts before it is sent. Redis answers such a
 * command with a protocol error and closes the connection: every command in flight on it
 * failed, the node was ejected and their keys read elsewhere, and a `setMany` lost the writes
 * queued behind it. A payload shorter than the smallest limit a server can have (1 MiB) costs
 * one comparison; a longer one, the smallest limit of the member nodes.
 */
export class PayloadLimit {
  constructor(
    /** The nodes a write may go to: the members, and a `migration`'s own. */
    private readonly nodes: () => Iterable<BulkLimited>,
    /** Connects the nodes alive (resolves once each connected or failed). */
    private readonly connect: () => Promise<unknown>,
  ) {}

  /**
   * Undefined when `payload` fits every node; throws when it is too long for one; when a
   * node's limit is not known yet, a promise that resolves once the nodes connected and it
   * fits (rejects if it does not).
   */
  fits(payload: string | Buffer, method: string, entry: string): Promise<void> | undefined {
    if (this.check(payload, method, entry)) return undefined;
    return this.connect().then(() => {
      this.check(payload, method, entry, true);
    });
  }

  /**
   * Throws a RingArgumentError naming `entry` when `payload` is too long for a node. False when
   * it may be and a node's limit is not known yet (before its first handshake): the caller
   * checks again once the nodes connected (`known`: a limit still unknown is then Redis'
   * default). A value queued during the first connect was sent past a 1 MiB limit.
   */
  check(payload: string | Buffer, method: string, entry: string, known = false): boolean {
    // UTF-8 takes at most 3 bytes for a UTF-16 unit.
    const bound = typeof payload === 'string' ? payload.length * 3 : payload.length;
    if (bound <= SMALLEST_MAX_BULK_BYTES) return true;
    const bytes = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
    if (bytes <= SMALLEST_MAX_BULK_BYTES) return true;
    let limit = Number.POSITIVE_INFINITY;
    for (const node of this.nodes()) {
      if (node.maxBulkBytes === undefined && !known) return false;
      limit = Math.min(limit, node.maxBulkBytes ?? DEFAULT_MAX_BULK_BYTES);
    }
    if (bytes > limit) {
      throw new RingArgumentError(
        `${method}: the value for "${entry}" takes ${bytes} bytes, more than the ${limit} a ` +
          `node's server accepts (its proto-max-bulk-len). Nothing was written.`,
      );
    }
    return true;
  }
}
