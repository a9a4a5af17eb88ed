import { setImmediate } from 'node:timers';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RingDict } from '../../core/index.js';
import { cacheView, readThroughRaw } from '../../core/read-through.js';
import { encodeEntry, tagsHold, type CachedEntry, type EntryMeta } from './cache-entry.js';
import { acquireLock, lockHeld, releaseLock, type TakenLock } from './cache-lock.js';
import {
  sameIds,
  seenOf,
  ttlMsOf,
  ttlMsOrUndefined,
  valueOf,
  type CachedCall,
  type Seen,
} from './cached-call.js';
import { HeldReads } from './held-reads.js';
import { TagVersions } from './tag-versions.js';
import { within } from './deadline.js';
import { hold, isHeld } from './flight-holds.js';
import type { FlightTable, RunIds } from './flight-table.js';

type Stored = [raw: string | undefined, ids: (string | null)[]];

type ValueEntry = Extract<CachedEntry, { kind: 'value' }>;

/**
 * After waiting for another process's run: its value, or the lock to run it here, with the
 * last read of the wait (`seen`) when there was one.
 */
type Waited = { found: true; value: unknown } | { found: false; held?: TakenLock; seen?: Seen };

/** A waiter polls the entry this often at first, then twice as long each time, up to the maximum. */
const FIRST_POLL_MS = 5;
/** A holder that dies is noticed at most this long after its lock expires. */
const MAX_POLL_MS = 25;

const NO_IDS: Promise<(string | null)[]> = Promise.resolve([]);

/**
 * The read-through of cached calls that keep serving: grace (a stale value when the method
 * fails, the method retried once per graceBackoff), soft timeouts, refresh-ahead, a lock
 * across processes on a miss, and tags checked on every read. One per application: its
 * single-flight table is the app's own.
 */
export class ResilientCache {
  private readonly versions = new WeakMap<RingDict<unknown, unknown>, TagVersions>();
  /** Flight key → when (performance.now()) the method may run again after failing. */
  private readonly backoff = new Map<string, number>();
  /**
   * Flight key → when refresh-ahead may start a run again after one that stored nothing. Apart
   * from `backoff`, which also holds grace back: past the ttl the method runs as usual.
   */
  private readonly aheadHold = new Map<string, number>();
  private readonly held = new HeldReads((dict) => this.versionsOf(dict));

  constructor(private readonly flights: FlightTable) {}

  /**
   * The call's value: from the ring when it holds a usable one, else from a run. A fresh hit
   * the near cache holds, versions and all, is answered at once (HeldReads): bench section 12,
   * a tagged near hit at 1.36–1.56× an untagged one's latency, 4.2× with a promise per GET.
   */
  get(call: CachedCall): Promise<unknown> {
    const near = call.dict[cacheView].near;
    const held = near === undefined ? undefined : this.held.read(call, near);
    // Its tags checked by HeldReads: comparing them again cost a tagged near hit 0.1 of the
    // untagged one's latency.
    if (held !== undefined && this.ageOf(call, held.entry) === 'fresh') {
      return Promise.resolve(this.hit(call, held));
    }
    return this.answer(call, false);
  }

  /** `get`; `joinAny`: a miss joins the key's run whatever versions it records (see `join`). */
  private async answer(call: CachedCall, joinAny: boolean): Promise<unknown> {
    // softTimeout counts from the call: the read's round trip is inside it.
    const started = call.policy.softTimeoutMs === undefined ? 0 : performance.now();
    let seen: Seen;
    try {
      seen = await this.read(call);
    } catch (error) {
      call.warn(`cache read failed (${messageOf(error)}); calling the method`);
      call.outcome = 'bypass';
      return this.cold(call, undefined, joinAny);
    }
    switch (this.stateOf(call, seen)) {
      case 'fresh':
        return this.hit(call, seen);
      case 'stale':
        return this.stale(call, seen, started);
      default:
        return this.cold(call, seen, joinAny);
    }
  }

  /** Deletes the version keys of `tags` in `dict`'s group: every entry carrying one misses. */
  invalidateTags(dict: RingDict<unknown, unknown>, tags: readonly string[]): Promise<void> {
    return this.versionsOf(dict).invalidate(tags);
  }

  /**
   * The entry and the versions of its tags from the entry's node: one MGET; a GET each, sent
   * in the same turn, with a near cache (it answers them from memory) or where a version key
   * could not be placed on that node (a hash tag in the prefix).
   */
  private read(call: CachedCall): Promise<Seen> {
    const versions = call.tags.length > 0 ? this.versionsOf(call.dict) : undefined;
    const places = versions?.placesFor(call.dict.getEntry(call.key), call.tags);
    let stored: Promise<Stored>;
    if (places?.together) {
      stored = versions!.readTogether(call.key, places);
    } else {
      // Not getRaw: with the ring unavailable it would answer the group's onFail value.
      const raw = call.dict[readThroughRaw](call.key);
      stored = Promise.all([raw, places === undefined ? NO_IDS : versions!.read(places)]);
    }
    return stored.then(([raw, ids]) => seenOf(call, raw, places, ids));
  }

  private stateOf(call: CachedCall, { entry, ids }: Seen): 'fresh' | 'stale' | 'miss' {
    if (entry === undefined || entry.kind !== 'value') return 'miss';
    // Also for a call without tags: an entry that recorded some cannot be checked by it (a
    // `wrap` without tags, a method whose tags a deploy removed), as the plain path refuses it.
    if (!tagsHold(entry.meta?.t, call.tags, ids)) return 'miss';
    return this.ageOf(call, entry);
  }

  /** Whether a value whose tags hold is fresh, in grace, or a miss. */
  private ageOf(call: CachedCall, entry: ValueEntry): 'fresh' | 'stale' | 'miss' {
    const expiresAt = entry.meta?.x;
    if (expiresAt === undefined || Date.now() < expiresAt) return 'fresh';
    return call.policy.graceMs > 0 ? 'stale' : 'miss';
  }

  /** A fresh hit: answered, and refreshed ahead of its expiry if the call asks for it. */
  private hit(call: CachedCall, seen: Seen): unknown {
    call.outcome = 'hit';
    this.refreshAhead(call, seen);
    return valueOf(seen);
  }

  /** Nothing usable stored: run the method (once per process, once in the fleet with a lock). */
  private cold(call: CachedCall, seen: Seen | undefined, joinAny: boolean): Promise<unknown> {
    const running = this.flights.get(call.flight);
    if (running !== undefined) return joinAny ? running : this.join(call, seen, running);
    // Versions are settled before the method runs: an invalidation from then on deletes them.
    const ids = this.idsFor(call, seen);
    return this.fly(call, this.fill(call, seen, ids), ids);
  }

  /**
   * A miss joins the run of its key in this process, unless the call is tagged and the run
   * records other versions than this call's read saw, or the read failed (`seen` undefined), or
   * the call is untagged and the run tagged: begun before an invalidation that the read saw, or
   * might have, its value is what the invalidation removed. Such a call waits for that run to
   * end (no second run meanwhile) and reads again; it then joins whatever run there is, begun
   * after this call was.
   */
  private async join(
    call: CachedCall,
    seen: Seen | undefined,
    running: Promise<unknown>,
  ): Promise<unknown> {
    if (call.tags.length === 0) {
      if (this.flights.joinableUntagged(running)) return running;
    } else if (seen !== undefined) {
      const ids = await this.flights.idsOf(running);
      if (ids !== undefined && sameIds(ids, seen.ids)) return running;
    }
    await running.catch(() => undefined);
    return this.answer(call, true);
  }

  private async fill(call: CachedCall, seen: Seen | undefined, ids: RunIds): Promise<unknown> {
    let lock: Waited = { found: false };
    if (call.policy.lockMs !== undefined && seen !== undefined) {
      lock = await this.lockOrWait(call, call.policy.lockMs);
      if (lock.found) return lock.value;
      if (lock.seen !== undefined) {
        // Taken after a wait: the versions are settled again from the wait's last read, where
        // the key's node is now. Those of the first read were on a node ejected meanwhile (the
        // holder's loss), or invalidated: the entry would record versions nobody reads, and
        // every waiter in the fleet would run in turn.
        seen = lock.seen;
        ids = this.idsFor(call, seen);
      }
    }
    return this.runAndStore(call, seen, await ids, lock);
  }

  /** Takes the key's lock, or waits for the holder's value (bounded by the lock's ttl). */
  private async lockOrWait(call: CachedCall, lockMs: number): Promise<Waited> {
    const attempt = await acquireLock(call.dict, call.key, lockMs);
    if (attempt === undefined) return { found: false };
    if (attempt.taken) return { found: false, held: attempt };
    let { lockKey } = attempt;
    let deadline = performance.now() + lockMs;
    let pause = FIRST_POLL_MS;
    for (;;) {
      const left = deadline - performance.now();
      if (left > 0) {
        await sleep(Math.min(pause, left));
        pause = Math.min(pause * 2, MAX_POLL_MS);
      }
      let seen: Seen;
      let held: boolean;
      try {
        [seen, held] = await Promise.all([this.read(call), lockHeld(call.dict, lockKey)]);
      } catch {
        return { found: false };
      }
      if (this.stateOf(call, seen) !== 'miss') return { found: true, value: valueOf(seen) };
      // Held within the lock's ttl: wait on. Free (the holder failed, or died), or held past
      // it (by another that took it since): try it in turn.
      if (held && left > 0) continue;
      const next = await acquireLock(call.dict, call.key, lockMs);
      if (next === undefined) return { found: false };
      if (next.taken) return this.takenAfterWait(call, next, seen);
      // Another waiter took it: wait for that one, a lock's ttl from now. Each waiter's own
      // wait ends soon after a dead holder's lock expires; running then, each would run.
      lockKey = next.lockKey;
      deadline = performance.now() + lockMs;
    }
  }

  /**
   * The lock taken after a wait: the entry is read once more before running. The wait's last
   * read may predate the holder's store, or, across an ejection of the key's node, have looked
   * for the versions where the node was: a waiter then ran again with the value there (2 runs
   * of 15 callers in 3 apps, the node hung while the holder ran).
   */
  private async takenAfterWait(call: CachedCall, lock: TakenLock, last: Seen): Promise<Waited> {
    let seen = last;
    try {
      seen = await this.read(call);
    } catch {
      // Run with the lock, as the wait's last read said.
    }
    if (this.stateOf(call, seen) === 'miss') return { found: false, held: lock, seen };
    void releaseLock(call.dict, lock);
    return { found: true, value: valueOf(seen) };
  }

  /** A stale value in grace: refresh it, answering the stale value if the method fails. */
  private stale(call: CachedCall, seen: Seen, started: number): Promise<unknown> {
    const stale = valueOf(seen);
    if (isHeld(this.backoff, call.flight)) {
      call.outcome = 'stale';
      return Promise.resolve(stale);
    }
    // A run under way is joined as a miss joins it: a tagged one that records other versions
    // than this read saw began before an invalidation, and its value is what that removed.
    const running = this.flights.get(call.flight);
    const flight =
      running === undefined ? this.startRefresh(call, seen) : this.join(call, seen, running);
    const guarded = flight.then(undefined, (error: unknown) => {
      this.backOff(call, error, 'answering the stale value');
      call.outcome = 'stale';
      return stale;
    });
    const soft = call.policy.softTimeoutMs;
    if (soft === undefined) return guarded;
    return within(guarded, started + soft, stale, () => (call.outcome = 'stale'));
  }

  /** A fresh hit close to its expiry: one background refresh, the hit answered at once. */
  private refreshAhead(call: CachedCall, seen: Seen): void {
    const { refreshAhead } = call.policy;
    const expiresAt = (seen.entry as ValueEntry).meta?.x;
    if (refreshAhead === undefined || expiresAt === undefined) return;
    if (expiresAt - Date.now() >= refreshAhead * ttlMsOf(call)) return;
    if (this.flights.get(call.flight) !== undefined || isHeld(this.backoff, call.flight)) return;
    if (isHeld(this.aheadHold, call.flight)) return;
    this.startRefresh(call, seen).catch((error: unknown) =>
      this.backOff(call, error, 'the cached value is served until it expires'),
    );
  }

  /**
   * Refreshes a value that is still there. With a lock, one process in the fleet does it:
   * another holding the lock means that one is refreshing, and this one answers the value
   * it has (a refresh is never waited for).
   */
  private async refresh(call: CachedCall, seen: Seen, ids: RunIds): Promise<unknown> {
    let lock: Waited = { found: false };
    if (call.policy.lockMs !== undefined) {
      const attempt = await acquireLock(call.dict, call.key, call.policy.lockMs);
      if (attempt?.taken === false) return valueOf(seen);
      if (attempt?.taken) lock = { found: false, held: attempt };
    }
    return this.runAndStore(call, seen, await ids, lock);
  }

  private async runAndStore(
    call: CachedCall,
    seen: Seen | undefined,
    ids: readonly (string | null)[] | undefined,
    lock: Waited,
  ): Promise<unknown> {
    let value: unknown;
    try {
      value = await call.run();
    } catch (error) {
      // Given back before the caller hears of the failure (an app closed right after it still
      // sends it): a waiter takes the lock in turn and runs.
      this.unlock(call, lock);
      throw error;
    }
    this.backoff.delete(call.flight);
    const stored = await this.store(call, value, seen?.tagKeys, ids);
    if (!stored && seen !== undefined && this.stateOf(call, seen) === 'fresh') {
      // A refresh ahead that stored nothing (a nullish result not cached, a refused write)
      // leaves the entry as close to its expiry: every hit started another run (a run per hit,
      // 55 of 56) until it expired. Not retried for graceBackoff, as a refresh that throws.
      hold(this.aheadHold, call.flight, call.policy.graceBackoffMs);
    }
    // A turn after the caller has its answer: sent before, the release (its write to the
    // socket) cost the winner about a quarter of a round trip (bench section 9: 1.18–1.20 →
    // 0.87–0.93 round trips). Waiters look for the entry, stored already, first.
    setImmediate(() => this.unlock(call, lock));
    return value;
  }

  /**
   * Stores a run's result (unless nullish and not wanted); a failed write is only logged.
   * True when it was written.
   */
  private async store(
    call: CachedCall,
    value: unknown,
    tagKeys: readonly string[] | undefined,
    ids: readonly (string | null)[] | undefined,
  ): Promise<boolean> {
    const { policy } = call;
    if ((value === null || value === undefined) && !policy.cacheNullish) return false;
    const tagged = call.tags.length > 0;
    // Tags whose versions could not be settled: an entry that cannot be checked is not stored.
    if (tagged && (tagKeys === undefined || ids === undefined || ids.includes(null))) return false;
    const ttlMs = ttlMsOrUndefined(call);
    const redisTtlMs = ttlMs === undefined ? undefined : ttlMs + policy.graceMs;
    try {
      const raw = encodeEntry(value, this.metaOf(call, ttlMs, ids), policy.codec);
      const written = call.dict.setRaw(call.key, raw, {
        ttl: redisTtlMs === undefined ? undefined : redisTtlMs / 1000,
      });
      const extended = tagged ? this.versionsOf(call.dict).extend(tagKeys!, redisTtlMs) : undefined;
      await Promise.all([written, extended]);
      return true;
    } catch (error) {
      call.warn(`cache write failed (${messageOf(error)})`);
      return false;
    }
  }

  /** The envelope's metadata, or undefined for a plain JSON entry. */
  private metaOf(
    call: CachedCall,
    ttlMs: number | undefined,
    ids: readonly (string | null)[] | undefined,
  ): EntryMeta | undefined {
    const { policy, tags } = call;
    const plain = !policy.expiring && tags.length === 0 && policy.codec.name === 'json';
    if (plain) return undefined;
    const meta: EntryMeta = {};
    if (policy.expiring && ttlMs !== undefined) meta.x = Date.now() + ttlMs;
    if (tags.length > 0) meta.t = tags.flatMap((tag, i) => [tag, ids![i]!]);
    if (policy.codec.name !== 'json') meta.c = policy.codec.name;
    return meta;
  }

  /** The versions of the call's tags, created where missing; undefined when the ring failed. */
  private idsFor(call: CachedCall, seen: Seen | undefined): RunIds {
    if (call.tags.length === 0 || seen?.tagKeys === undefined) return Promise.resolve(undefined);
    const ttlMs = ttlMsOrUndefined(call);
    const redisTtlMs = ttlMs === undefined ? undefined : ttlMs + call.policy.graceMs;
    return this.versionsOf(call.dict)
      .ensure(seen.tagKeys, seen.ids, redisTtlMs)
      .catch(() => undefined);
  }

  private unlock(call: CachedCall, lock: Waited): void {
    if (!lock.found && lock.held !== undefined) void releaseLock(call.dict, lock.held);
  }

  private startRefresh(call: CachedCall, seen: Seen): Promise<unknown> {
    const ids = this.idsFor(call, seen);
    return this.fly(call, this.refresh(call, seen, ids), ids);
  }

  /** `running`, the call's run, joined by the calls of its key until it settles. */
  private fly(call: CachedCall, running: Promise<unknown>, ids: RunIds): Promise<unknown> {
    return this.flights.fly(call.flight, running, call.tags.length > 0 ? ids : undefined);
  }

  private backOff(call: CachedCall, error: unknown, meanwhile: string): void {
    hold(this.backoff, call.flight, call.policy.graceBackoffMs);
    const seconds = call.policy.graceBackoffMs / 1000;
    call.warn(`the method failed (${messageOf(error)}); ${meanwhile}, retried in ${seconds} s`);
  }

  private versionsOf(dict: RingDict<unknown, unknown>): TagVersions {
    let versions = this.versions.get(dict);
    if (versions === undefined) this.versions.set(dict, (versions = new TagVersions(dict)));
    return versions;
  }
}

/** What went wrong, whatever was thrown. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
