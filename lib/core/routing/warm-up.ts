import type { HashRing } from '../hashing/hash-ring.js';
import { toWire } from '../keys/wire.js';
import { isFail, type Fail } from '../membership/ring-failures.js';
import type { RingMembership } from '../membership/ring-membership.js';
import type { RingNode } from '../node/ring-node.js';
import { DEL, EXISTS, getKind, type EntryOp } from './entry-ops.js';
import { addTo } from '../collections.js';

/** A request sent over the rings as they are, answering its reply or the failure. */
export type DirectRoute<F> = <T>(
  entry: string,
  op: EntryOp<T>,
  write: boolean,
) => Promise<T | Fail<F>>;

/**
 * Warm-up after a membership change (mcrouter's WarmUpRoute, inside the client): for
 * `warmUpWindow` ms a key whose owner changed is still found where it was.
 *
 * - A GET that misses on the new owner asks the former owner (one extra round trip, GET and
 *   PTTL together); a hit there is answered and copied to the new owner with its remaining
 *   TTL, `SET … NX`, so a value written there meanwhile — by any process — is never replaced.
 * - A write or a delete goes to the new owner, then deletes the entry on the former owner, so
 *   no overwritten or deleted value can be copied back later. A copy that raced a write or a
 *   delete of this process is not made.
 *
 * Only while the former owner is a member, alive and connected; anything it fails is a miss.
 */
export class WarmUp {
  /** True during a window: the router takes the warm-up's path. */
  on = false;
  private previous?: HashRing;
  private timer?: NodeJS.Timeout;
  /** Whether hits on the former owner are copied to the new one (see begin). */
  private copying = true;
  /** A former owner that is not a member (a node only a migration's `from` named): deletes only. */
  private formerNode?: (name: string) => RingNode | undefined;
  /**
   * Such nodes that failed a delete this window: not asked again. The ring does not watch them
   * (no heartbeat, no ejection): hung, each write would wait its commandTimeout.
   */
  private failed = new WeakSet<RingNode>();
  /** Entries with a warm read under way, and whether this process wrote them since. */
  private readonly reading = new Map<string, { readers: number; written: boolean }>();

  constructor(
    private readonly membership: RingMembership,
    /** Milliseconds a window lasts; 0: no warm-up. */
    readonly window: number,
  ) {}

  /**
   * A window opens: `previous` was the total ring before the change; `ended` runs at its end.
   * `copy: false` after a migration: other processes changed placement at the same moment,
   * and a copy that raced one of their deletes would bring the value back. `formerNode`: a
   * migration's node that is not a member, where writes delete too (see formerOwner).
   */
  begin(
    previous: HashRing,
    ended: () => void,
    copy = true,
    formerNode?: (name: string) => RingNode | undefined,
  ): void {
    this.end();
    if (this.window === 0) return ended();
    this.previous = previous;
    this.copying = copy;
    this.formerNode = formerNode;
    this.failed = new WeakSet();
    this.on = true;
    this.timer = setTimeout(() => {
      this.end();
      ended();
    }, this.window);
    this.timer.unref();
  }

  /** Closes the window, if one is open. */
  end(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.on = false;
    this.previous = undefined;
    this.formerNode = undefined;
  }

  /**
   * The owner `entry` had before the change, if it changed and that node can answer — and is
   * not the node that serves the entry now (the new owner is out and the entry fell back to
   * it): a write there is the entry's newest value, not a copy to drop. `writing`: a node only
   * a migration uses will do, to delete there (named only in `from`, or another server under a
   * member's name: it serves no entry now).
   */
  formerOwner(entry: string, writing = false): RingNode | undefined {
    const before = this.previous?.locate(entry);
    if (before === undefined) return;
    const own = writing ? this.formerNode?.(before) : undefined;
    if (own === undefined) {
      if (before === this.membership.totalHash.locate(entry)) return;
      if (before === this.membership.aliveHash.locate(entry)) return;
    }
    const node = own ?? this.membership.find(before);
    if (node === undefined || this.failed.has(node)) return undefined;
    return node.health.alive && node.ready ? node : undefined;
  }

  /** `route` during a window: see the class. */
  async route<T, F>(
    entry: string,
    op: EntryOp<T>,
    write: boolean,
    direct: DirectRoute<F>,
  ): Promise<T | Fail<F>> {
    const former = this.formerOwner(entry, write);
    if (former === undefined) return direct(entry, op, write);
    if (write) {
      this.wrote(entry);
      const reply = await direct(entry, op, true);
      const removed = await this.invalidate(former, [entry]);
      // A delete removed the key if it was on either node.
      return op === DEL && !isFail(reply) ? ((Number(reply) + removed) as T) : reply;
    }
    if (op === EXISTS) {
      const reply = await direct(entry, op, false);
      if (isFail(reply) || reply !== 0) return reply;
      return (await former.client.exists(toWire(entry)).catch(() => 0)) as T;
    }
    const binary = getKind(op);
    if (binary === undefined) return direct(entry, op, false);
    const watch = this.watch(entry);
    try {
      const reply = await direct(entry, op, false);
      if (isFail(reply) || reply !== null) return reply;
      const found = await this.fetch(former, entry, binary);
      if (found !== undefined && !watch.written && this.copying) await this.copy(entry, found);
      return (found?.value ?? null) as T;
    } finally {
      if (--watch.readers === 0) this.reading.delete(entry);
    }
  }

  /** Entries written by a batch (setMany, deleteMany): deleted on their former owners. */
  async invalidateMany(entries: readonly string[]): Promise<void> {
    const byNode = new Map<RingNode, string[]>();
    for (const entry of entries) {
      const former = this.formerOwner(entry, true);
      if (former === undefined) continue;
      this.wrote(entry);
      addTo(byNode, former, entry);
    }
    await Promise.all([...byNode].map(([node, list]) => this.invalidate(node, list)));
  }

  /** Marks `entry` written: a warm read under way does not copy what it found. */
  private wrote(entry: string): void {
    const watch = this.reading.get(entry);
    if (watch) watch.written = true;
  }

  private watch(entry: string): { readers: number; written: boolean } {
    let watch = this.reading.get(entry);
    if (watch === undefined) this.reading.set(entry, (watch = { readers: 0, written: false }));
    watch.readers++;
    return watch;
  }

  /** DEL of `entries` on the former owner; how many it held (0 when it failed). */
  private async invalidate(former: RingNode, entries: readonly string[]): Promise<number> {
    return former.client.del(...entries.map(toWire)).catch(() => {
      if (!this.membership.isMember(former)) this.failed.add(former);
      return 0;
    });
  }

  /** The value and remaining TTL (ms, −1 for none) of `entry` on the former owner. */
  private async fetch(
    former: RingNode,
    entry: string,
    binary: boolean,
  ): Promise<{ value: string | Buffer; ttl: number } | undefined> {
    const key = toWire(entry);
    const pipeline = former.client.pipeline();
    if (binary) pipeline.getBuffer(key);
    else pipeline.get(key);
    pipeline.pttl(key);
    const replies = await pipeline.exec().catch(() => null);
    const value = replies?.[0]?.[1] as string | Buffer | null | undefined;
    const ttl = replies?.[1]?.[1];
    if (value === null || value === undefined || typeof ttl !== 'number' || ttl === -2) return;
    return { value, ttl };
  }

  /** Copies a value found on the former owner to the owner now, unless one is there already. */
  private async copy(entry: string, { value, ttl }: { value: string | Buffer; ttl: number }) {
    // Not while the owner is out: the copy would be a write on its behalf, without a hint.
    const owner = this.membership.pick(entry);
    if (owner === undefined || !owner.ready) return;
    if (owner.name !== this.membership.totalHash.locate(entry)) return;
    // Longer than the owner's server accepts (its proto-max-bulk-len, lower than the former
    // owner's): sent, it closed the connection and the owner was ejected. A miss there instead.
    if (Buffer.byteLength(value) > (owner.maxBulkBytes ?? Number.POSITIVE_INFINITY)) return;
    const key = toWire(entry);
    const copied =
      ttl > 0 ? owner.client.set(key, value, 'PX', ttl, 'NX') : owner.client.set(key, value, 'NX');
    await copied.catch(() => undefined);
  }
}
