import type { Redis } from 'ioredis';
import type { Subscription } from 'rxjs';
import type { ResolvedNearCacheOptions } from '../config/near-cache-options.js';
import { toWire } from '../keys/wire.js';
import { readsLikeGet, type EntryOp } from '../routing/entry-ops.js';
import type { RingEvent } from '../membership/ring-events.js';
import type { RingMembership } from '../membership/ring-membership.js';
import { InvalidationChannel, type ChannelTiming } from './invalidation-channel.js';
import type { NearHeld, NearView } from '../read-through.js';
import { NearStore, type NearEntry } from './near-store.js';
import { PollFence } from './poll-fence.js';

type Raw = string | Buffer;

/** A lookup's answer when the entry is held but the loop has to poll for I/O first. */
export const UNPOLLED = Symbol('unpolled');

/**
 * The near cache: raw replies of GET held in process memory (NearStore), each node's
 * invalidation channel (InvalidationChannel), and the rules that keep them coherent with the
 * ring's membership:
 * - an ejected node's entries are dropped and its channel closed (reopened once it is back);
 * - any other change of membership (a rediscovery, a node added or removed) moves keys onto
 *   other nodes, whose writes the entries' nodes never see: everything is dropped.
 *
 * Reads (`read`, `readMany`) send GET with PTTL, so an entry is never served past its Redis
 * TTL, and store the reply only when the node's channel was up and unchanged from before the
 * read was sent until its reply.
 */
export class NearCache implements NearView {
  readonly store: NearStore;
  readonly maxLag: number;
  private readonly fence: PollFence;
  private readonly channels = new Map<Redis, InvalidationChannel>();
  private readonly subscription: Subscription;
  private closed = false;

  constructor(
    private readonly membership: RingMembership,
    options: ResolvedNearCacheOptions,
    private readonly timing: ChannelTiming,
  ) {
    readsLikeGet(this.readString as EntryOp<unknown>, false);
    readsLikeGet(this.readBuffer as EntryOp<unknown>, true);
    this.store = new NearStore(options.maxEntries, options.maxBytes);
    this.maxLag = options.maxLag;
    this.fence = new PollFence(options.maxLag);
    for (const node of membership.all()) this.channelOf(node.client);
    this.subscription = membership.events$.subscribe({
      next: (event) => this.changed(event),
      complete: () => this.close(),
    });
  }

  /**
   * The raw value of `entry` if it may be served from memory (as a Buffer for `binary`), or
   * UNPOLLED when it is held but this process has not read its sockets lately: then `polled()`
   * is awaited and the lookup made again with `polled` true.
   */
  lookup(entry: string, binary: boolean, polled = false): Raw | undefined | typeof UNPOLLED {
    if (this.membership.closed) return undefined;
    const now = performance.now();
    const raw = this.store.get(entry, now);
    if (raw === undefined || (typeof raw === 'string') === binary) return undefined;
    if (!polled && !this.fence.fresh(now)) return UNPOLLED;
    // A fresh Buffer: a codec may hand out views of it, which the caller could change.
    return binary ? Buffer.from(raw as Buffer) : raw;
  }

  held(entry: string, now: number): NearHeld | undefined {
    if (this.membership.closed) return undefined;
    const held = this.store.held(entry, now);
    if (held === undefined || typeof held.raw !== 'string' || !this.fence.fresh(now)) {
      return undefined;
    }
    return held as NearHeld;
  }

  holds(held: NearHeld, now: number): boolean {
    return (
      !this.membership.closed && this.store.holds(held as NearEntry, now) && this.fence.fresh(now)
    );
  }

  note(entry: string, held: NearHeld, note: unknown, bytes: number): void {
    this.store.note(entry, held as NearEntry, note, bytes);
  }

  /** Resolves once this process has read its sockets (see PollFence). */
  polled(): Promise<void> {
    return this.fence.polled();
  }

  /** The near cache's GET: GET with PTTL, the reply stored when it may be. */
  readonly readString = (client: Redis, entry: string): Promise<string | null> =>
    this.read(client, entry, false) as Promise<string | null>;

  readonly readBuffer = (client: Redis, entry: string): Promise<Buffer | null> =>
    this.read(client, entry, true) as Promise<Buffer | null>;

  /** The near cache's MGET for a node's batch: MGET and a PTTL per entry, in one pipeline. */
  async readMany(
    client: Redis,
    entries: readonly string[],
    binary: boolean,
  ): Promise<(Raw | null)[]> {
    const wire = entries.map(toWire);
    const channel = this.channelOf(client);
    const epoch = channel?.prepare(client);
    if (channel === undefined || epoch === undefined) {
      return binary ? client.mgetBuffer(wire) : client.mget(wire);
    }
    const sent = this.store.begin();
    const sentAt = performance.now();
    try {
      const pipeline = client.pipeline();
      if (binary) pipeline.mgetBuffer(wire);
      else pipeline.mget(wire);
      for (const key of wire) pipeline.pttl(key);
      const replies = (await pipeline.exec()) ?? [];
      const [error, raws] = replies[0] ?? [new Error('no reply')];
      if (error) throw error;
      const values = raws as (Raw | null)[];
      if (channel.holds(epoch)) {
        for (let i = 0; i < entries.length; i++) {
          const [ttlError, ttl] = replies[i + 1];
          const raw = values[i];
          if (raw !== null && !ttlError)
            this.keep(entries[i], raw, channel, epoch, sent, sentAt, ttl as number);
        }
      }
      return values;
    } finally {
      this.store.end();
    }
  }

  /** This dict is about to change `entry`: dropped now, so its next get reads the new value. */
  wrote(entry: string): void {
    this.store.invalidate(entry);
  }

  /** Every entry stops being served. */
  dropAll(): void {
    this.store.dropAll();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.subscription.unsubscribe();
    for (const channel of this.channels.values()) channel.close();
    this.channels.clear();
    this.store.dropAll();
  }

  private read(client: Redis, entry: string, binary: boolean): Promise<Raw | null> {
    const wire = toWire(entry);
    const channel = this.channelOf(client);
    const epoch = channel?.prepare(client);
    if (channel === undefined || epoch === undefined) {
      return binary ? client.getBuffer(wire) : client.get(wire);
    }
    const sent = this.store.begin();
    const sentAt = performance.now();
    const value: Promise<Raw | null> = binary ? client.getBuffer(wire) : client.get(wire);
    const ttl = client.pttl(wire);
    return value.then(
      (raw) =>
        ttl.then(
          (ms) => {
            // Stored before end(): end() forgets the invalidations the store judges by.
            if (raw !== null && channel.holds(epoch)) {
              this.keep(entry, raw, channel, epoch, sent, sentAt, ms);
            }
            this.store.end();
            return raw;
          },
          () => {
            this.store.end();
            return raw;
          },
        ),
      (error: unknown) => {
        ttl.catch(() => undefined);
        this.store.end();
        throw error;
      },
    );
  }

  /** Stores a reply; `ttl` is PTTL's (-1: none, -2: gone meanwhile), counted from `sentAt`. */
  private keep(
    entry: string,
    raw: Raw,
    channel: InvalidationChannel,
    epoch: number,
    sent: number,
    sentAt: number,
    ttl: number,
  ): void {
    if (ttl === -2) return;
    const expiresAt = ttl === -1 ? Number.POSITIVE_INFINITY : sentAt + ttl;
    this.store.put(entry, raw, channel, epoch, sent, expiresAt);
  }

  /** The channel of the node whose data connection is `client`, made on first use. */
  private channelOf(client: Redis): InvalidationChannel | undefined {
    const known = this.channels.get(client);
    if (known !== undefined || this.closed) return known;
    for (const node of this.membership.all()) {
      if (node.client !== client) continue;
      const channel = new InvalidationChannel(node, this.store, this.timing);
      this.channels.set(client, channel);
      return channel;
    }
    return undefined;
  }

  private changed(event: RingEvent): void {
    if (event.node === undefined) return;
    if (event.type === 'ejected') {
      for (const channel of this.channels.values()) {
        if (channel.node.name === event.node) channel.drop(true);
      }
      return;
    }
    // A node came back, joined or left: keys moved between nodes.
    this.store.dropAll();
    for (const [client, channel] of this.channels) {
      if (this.membership.find(channel.node.name)?.client === client) continue;
      // A node that is no longer a member.
      channel.close();
      this.channels.delete(client);
    }
    // Opened now, as a boot node's is: made on its first read, it said nothing of its state
    // until then (nodeStates and the health check had no `invalidation` for it).
    const added = event.type === 'added' ? this.membership.find(event.node) : undefined;
    if (added !== undefined) this.channelOf(added.client);
  }
}
