/**
 * What an entry of the near cache depends on: the invalidation channel of the node it was read
 * from. Anything that may have cost the channel an invalidation bumps `epoch`, and the entries
 * carrying an older one are never served again.
 */
export interface NearSource {
  readonly epoch: number;
}

/** An entry as the store holds it (see NearView.held). */
export interface NearEntry {
  readonly raw: string | Buffer;
  /** What a reader worked out from `raw` and keeps with it (`note`); undefined until then. */
  note: unknown;
  source: NearSource;
  epoch: number;
  /** performance.now() past which Redis has expired the entry; Infinity without a TTL. */
  expiresAt: number;
  bytes: number;
  /** Set by a hit, cleared by the eviction's sweep (CLOCK). */
  used: boolean;
}

/**
 * An entry's bytes beyond its key's and value's lengths: the entry object, the Map's slot, the
 * strings' headers. Measured (bench section 12): 1 000 entries of a 10-character key and a
 * 100-byte value held 305 B of heap each (the heap with them minus the heap without them,
 * after full collections), i.e. 195 B besides the key and the value; rounded up. A string of
 * characters outside Latin-1 takes two bytes a character, which its length does not count.
 * A reader's note on an entry is counted apart (NearStore.note).
 */
export const ENTRY_OVERHEAD_BYTES = 200;

/**
 * The epoch of an entry the store let go (no channel's is negative): a reader that kept it
 * (`holds`) never serves it again, whether it was invalidated, replaced, evicted or dropped.
 */
const GONE = -1;

/**
 * The near cache's memory: raw replies by entry, bounded in entries and bytes.
 *
 * Eviction is CLOCK, the usual approximation of LRU: a hit only sets a flag, and the sweep
 * gives a flagged entry a second chance (moved to the young end of the Map's insertion order)
 * instead of evicting it. A true LRU would move the entry on every hit, two Map operations
 * on the path that has to answer in well under a microsecond. A well-kept LRU library
 * (lru-cache) would bring that move per hit and its own TTL clock, while an entry here needs
 * fields of its own anyway (the epoch of its node's channel, its Redis TTL), and the Map's
 * insertion order is all the sweep needs.
 *
 * It also tells reads in flight whether their entry was invalidated since they were sent:
 * `begin` answers a sequence number, `invalidate` raises it, `put` refuses a reply older than
 * the entry's last invalidation.
 */
export class NearStore {
  private readonly entries = new Map<string, NearEntry>();
  private bytes = 0;
  /** Raised by every invalidation. */
  private seq = 0;
  /** Reads sent before this sequence number are not stored (dropAll). */
  private floor = 0;
  /**
   * Entries invalidated while reads were in flight, with the sequence number of that: at most
   * `maxEntries` of them. Emptied when no read is in flight, which under a steady load may be
   * never (20 readers of a node 40 ms away: 29 000 keys after 30 000 writes, none of them held).
   */
  private readonly recent = new Map<string, number>();
  private reading = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly maxBytes: number,
  ) {}

  /** Entries held now (some may no longer be served, until the sweep evicts them). */
  get size(): number {
    return this.entries.size;
  }

  /** Bytes counted now (see ENTRY_OVERHEAD_BYTES). */
  get byteSize(): number {
    return this.bytes;
  }

  /** The raw value of `entry`, if it may be served at `now` (performance.now()). */
  get(entry: string, now: number): string | Buffer | undefined {
    return this.held(entry, now)?.raw;
  }

  /** `entry` as held, if it may be served at `now`. */
  held(entry: string, now: number): NearEntry | undefined {
    const held = this.entries.get(entry);
    if (held === undefined) return undefined;
    if (this.holds(held, now)) return held;
    this.remove(entry, held);
    return undefined;
  }

  /**
   * True when `held` (a reply this store answered) is still the entry's reply and may be served
   * at `now`: `held(entry)` again without its lookup (a reply let go is never servable again).
   */
  holds(held: NearEntry, now: number): boolean {
    if (!this.servable(held, now)) return false;
    held.used = true;
    return true;
  }

  /**
   * Keeps `note` with `held`, counting `bytes` more against the bounds, if `entry` still holds
   * that reply (a later one starts without a note). Not when the entry would take more than half
   * of `maxBytes` with it: the sweep that makes room would evict the entry itself, or what a read
   * of it needs, and every hit would go back to Redis.
   */
  note(entry: string, held: NearEntry, note: unknown, bytes: number): void {
    if (this.entries.get(entry) !== held || held.bytes + bytes > this.maxBytes / 2) return;
    held.note = note;
    held.bytes += bytes;
    this.bytes += bytes;
    if (this.bytes > this.maxBytes) this.evict();
  }

  /** A read of some entries is about to be sent: what `put` needs to judge its reply. */
  begin(): number {
    this.reading++;
    return this.seq;
  }

  /** The read begun at `sent` was answered or failed (once per `begin`). */
  end(): void {
    if (--this.reading === 0) this.recent.clear();
  }

  /**
   * Stores the reply of a read begun at `sent`, unless the entry was invalidated since, or
   * everything was dropped. The caller has checked that `source` was up and unchanged
   * (`epoch`) from before the read was sent until now.
   */
  put(
    entry: string,
    raw: string | Buffer,
    source: NearSource,
    epoch: number,
    sent: number,
    expiresAt: number,
  ): void {
    if (sent < this.floor || (this.recent.get(entry) ?? -1) > sent) return;
    const bytes = entry.length + raw.length + ENTRY_OVERHEAD_BYTES;
    if (bytes > this.maxBytes) return;
    const held = this.entries.get(entry);
    if (held !== undefined) this.remove(entry, held);
    this.entries.set(entry, { raw, note: undefined, source, epoch, expiresAt, bytes, used: false });
    this.bytes += bytes;
    if (this.entries.size > this.maxEntries || this.bytes > this.maxBytes) this.evict();
  }

  /** `entry` changed (a write here, or Redis said so): dropped, and reads in flight not stored. */
  invalidate(entry: string): void {
    const held = this.entries.get(entry);
    if (held !== undefined) this.remove(entry, held);
    this.seq++;
    if (this.reading === 0) return;
    if (this.recent.size < this.maxEntries) this.recent.set(entry, this.seq);
    else {
      // Full: every read in flight is refused instead, as by dropAll (a miss, never stale).
      this.recent.clear();
      this.floor = this.seq;
    }
  }

  /** Drops every entry; reads in flight are not stored. */
  dropAll(): void {
    // A pass over every entry: a drop follows a change of membership, not a read.
    for (const held of this.entries.values()) held.epoch = GONE;
    this.entries.clear();
    this.bytes = 0;
    this.floor = ++this.seq;
  }

  private servable(held: NearEntry, now: number): boolean {
    return held.epoch === held.source.epoch && now < held.expiresAt;
  }

  /** CLOCK sweep from the oldest entry until both bounds hold. */
  private evict(): void {
    const now = performance.now();
    for (const [entry, held] of this.entries) {
      if (this.entries.size <= this.maxEntries && this.bytes <= this.maxBytes) return;
      this.entries.delete(entry);
      if (held.used && this.servable(held, now)) {
        held.used = false;
        this.entries.set(entry, held);
      } else {
        this.bytes -= held.bytes;
        held.epoch = GONE;
      }
    }
  }

  private remove(entry: string, held: NearEntry): void {
    this.entries.delete(entry);
    this.bytes -= held.bytes;
    held.epoch = GONE;
  }
}
