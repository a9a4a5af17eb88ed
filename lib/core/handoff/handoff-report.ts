/**
 * What the hinted handoff does with the entries written on a returning node's behalf:
 * `'invalidate'` deletes them on the node and where they were written (a miss, never a stale
 * value, whichever process wrote them); `'copy'` copies the newer values back, which keeps the
 * hits but is only safe when a single process writes (another process's newer value on the
 * node could be overwritten by an older copy).
 */
export type HandoffMode = 'invalidate' | 'copy';

/** What to do when the hints of a returning node are incomplete (too many, or lost). */
export type HandoffOverflowPolicy = 'clear' | 'ttl';

/** What a rediscovery did to bring the returning node up to date; part of its event. */
export interface HandoffReport {
  /** Entries invalidated (or copied back, in `'copy'` mode) from the hints of every node. */
  entries: number;
  /**
   * The hints were incomplete: more was written than `handoffLimit`, or a node that took
   * writes is out or lost them. The policy below was applied.
   */
  overflowed: boolean;
  /**
   * `'clear'`: every entry under the prefix was deleted on the node, and every entry it owns
   * on the other alive nodes; `'ttl'`: TTLs are trusted.
   */
  policy?: HandoffOverflowPolicy;
  /**
   * Entries deleted by the `'clear'` policy, on the node and elsewhere, and by the clears made
   * while the node was out.
   */
  cleared?: number;
  /**
   * The node restarted or failed over since its data was last vouched for: every entry under
   * the prefix was deleted on it first (`cleared` of them), as it may be older than the last
   * writes.
   */
  untrusted?: { reason: string; cleared: number };
}
