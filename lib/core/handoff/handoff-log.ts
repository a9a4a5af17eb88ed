/** What to do when more entries were written on an ejected node's behalf than remembered. */
export type HandoffOverflowPolicy = 'clear' | 'ttl';

/** What a rediscovery did to bring the returning node up to date; part of its event. */
export interface HandoffReport {
  /** Entries copied back (newer value and remaining TTL) or deleted there (gone meanwhile). */
  entries: number;
  /** More entries were written meanwhile than `handoffLimit`: the policy below was applied. */
  overflowed: boolean;
  /**
   * `'clear'`: every entry under the prefix was deleted on the node, and every entry it owns
   * on the other alive nodes; `'ttl'`: TTLs are trusted.
   */
  policy?: HandoffOverflowPolicy;
  /** Entries deleted by the `'clear'` policy, on the node and elsewhere. */
  cleared?: number;
}

/** Where an entry's newer state is: the node it was written to, or `null` for "delete it". */
export type HandoffHints = Map<string, string | null>;

/** What a node must catch up on when it returns. */
export interface HandoffTaken {
  hints: HandoffHints;
  overflowed: boolean;
  /** Nodes that took writes the log did not remember. */
  spilledTo: Set<string>;
  /** Key prefixes to delete on the node, before the hints are handed back. */
  clears: string[];
}

/**
 * Remembers, per ejected node, the entries written or deleted on its behalf on other nodes
 * and which node took each write, so that the node can be brought up to date before it
 * serves reads again (hinted handoff). Bounded: past `limit` entries per node it only
 * remembers that it overflowed.
 */
export class HandoffLog {
  private readonly hints = new Map<string, HandoffHints>();
  private readonly overflowed = new Set<string>();
  /** Per node: the nodes that took writes for it past the limit (see spill()). */
  private readonly spilled = new Map<string, Set<string>>();
  /** Per node: key prefixes cleared (clear(), clearPrefix()) while it was out. */
  private readonly clears = new Map<string, Set<string>>();

  constructor(readonly limit: number) {}

  get enabled(): boolean {
    return this.limit > 0;
  }

  /**
   * `entry`, owned by `owner`, now lives on `heir` (or must simply be deleted on `owner`
   * when `heir` is null). Answers the node that held the previous copy, if another one:
   * that copy is stale now and must go too.
   */
  remember(owner: string, entry: string, heir: string | null): string | null {
    let hints = this.hints.get(owner);
    if (hints === undefined) this.hints.set(owner, (hints = new Map()));
    const previous = hints.get(entry) ?? null;
    if (hints.size < this.limit || hints.has(entry)) hints.set(entry, heir);
    else {
      this.overflowed.add(owner);
      if (heir !== null) this.spill(owner, heir);
    }
    return previous !== null && previous !== heir ? previous : null;
  }

  /** `owner` must be brought up to date by the overflow policy, as if its log had overflowed. */
  overflow(owner: string): void {
    this.overflowed.add(owner);
  }

  /** Every entry of `owner` whose key starts with `keyPrefix` was cleared while it was out. */
  rememberClear(owner: string, keyPrefix: string): void {
    let prefixes = this.clears.get(owner);
    if (prefixes === undefined) this.clears.set(owner, (prefixes = new Set()));
    prefixes.add(keyPrefix);
  }

  /** Takes (and forgets) what is remembered for `owner`. */
  take(owner: string): HandoffTaken {
    const hints = this.hints.get(owner) ?? new Map<string, string | null>();
    // A node holding copies the log could not remember for an owner still out may serve
    // them, stale, while that owner stays out: it is cleared as if its own log overflowed.
    const overflowed = this.overflowed.has(owner) || this.holdsSpilled(owner);
    const clears = [...(this.clears.get(owner) ?? [])];
    const spilledTo = this.spilled.get(owner) ?? new Set<string>();
    this.spilled.delete(owner);
    this.hints.delete(owner);
    this.overflowed.delete(owner);
    this.clears.delete(owner);
    return { hints, overflowed, clears, spilledTo };
  }

  /** True when `node` took writes for some owner that the log could not remember. */
  holdsSpilled(node: string): boolean {
    for (const heirs of this.spilled.values()) if (heirs.has(node)) return true;
    return false;
  }

  /** True while some node holds copies the log could not remember. */
  get anySpilled(): boolean {
    return this.spilled.size > 0;
  }

  /** Whether the log remembers `entry` for `owner`. */
  remembers(owner: string, entry: string): boolean {
    return this.hints.get(owner)?.has(entry) ?? false;
  }

  /** `node` was cleared: it holds no unremembered copy any more. */
  clearedSpills(node: string): void {
    for (const [owner, heirs] of this.spilled) {
      heirs.delete(node);
      if (heirs.size === 0) this.spilled.delete(owner);
    }
  }

  /** `heir` took a write for `owner` that the log could not remember. */
  private spill(owner: string, heir: string): void {
    let heirs = this.spilled.get(owner);
    if (heirs === undefined) this.spilled.set(owner, (heirs = new Set()));
    heirs.add(heir);
  }

  /** Puts back what a failed handoff took (newer hints win). */
  restore(owner: string, taken: HandoffTaken): void {
    const current = this.hints.get(owner);
    for (const [entry, heir] of taken.hints) {
      if (!current?.has(entry)) this.remember(owner, entry, heir);
    }
    if (taken.overflowed) this.overflowed.add(owner);
    for (const heir of taken.spilledTo) this.spill(owner, heir);
    for (const keyPrefix of taken.clears) this.rememberClear(owner, keyPrefix);
  }
}
