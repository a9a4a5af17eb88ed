import { RingClusterUnavailableError, type HashRing, type RingDict } from '../../core/index.js';
import {
  cacheView,
  deleteManyOrReject,
  type CacheView,
  type MigrationView,
} from '../../core/read-through.js';
import {
  capacitiesIn,
  distinctLists,
  sameCapacities,
  type NodeCapacities,
} from '../../core/membership/node-lists.js';
import { allToWire } from '../../core/keys/wire.js';
import { CACHE_KEY_SPACE } from './cache-key.js';
import { atDeadline } from './deadline.js';
import { uniqueId } from './unique-id.js';

/** Version keys of tags, inside the group's prefix: `__ring-cached__:tag:<tag>:<n>`. */
export const TAG_KEY_PREFIX = `${CACHE_KEY_SPACE}tag:`;

/** Tags whose version keys are remembered per group (each a few strings per node). */
const MAX_REMEMBERED_TAGS = 10_000;
/**
 * Past a near cache's `maxLag`, for the invalidations Redis writes to other processes' sockets
 * in the same turn as the replies to this one: usually microseconds apart, but not bounded (a
 * descheduled server, a backlog written 64 KiB a turn, a full socket buffer).
 */
const DELIVERY_MARGIN_MS = 0.5;
/** Candidates tried per node for a version key on each (n equal nodes: one is missed with odds of e⁻⁶⁴). */
const CANDIDATES_PER_NODE = 64;

/**
 * Lazy invalidation by tag, for one group. Each tag has one version key per node of the ring
 * (`<tag>:<n>`, the first `n` that the total ring places on that node), so the version an
 * entry is checked against lives on the entry's own node: it is read in the same turn as the
 * value, from the same server, spreads a busy tag's reads over the nodes, and a node lost
 * loses its entries and their versions together.
 *
 * A version is a random id; an entry records the ids it saw before its value was computed.
 * `invalidate` deletes every version key of the tags (one DEL per node, whatever the number
 * of entries), so every entry that recorded one misses; the next miss creates a new id.
 * A missing version is always a miss, never "not invalidated": a key lost with its node, or
 * read from another node than the one the entry was checked on, can only cost a miss.
 *
 * With `replicas`, every copy of an entry records the versions of its owner's node (the first
 * of its home), wherever the copy is read: a version key has copies of its own, on other nodes
 * than the entry's second, so with the owner out they are read apart from the entry.
 *
 * During a `migration` every process, on the old nodes or the new, keeps entries where the
 * old ring (`from`) places them, and so their versions: the keys `from` picks, where it places
 * them. A dict with a migration deletes the keys of both rings, ended or not: a process whose
 * clock says the migration is over reads the new ring's keys while another still reads the
 * old one's.
 */
/** The version keys of a call's tags on the node that serves its key now. */
export interface TagPlaces {
  readonly keys: readonly string[];
  /** Their Redis keys (the group's prefix and key function applied). */
  readonly entries: readonly string[];
  /**
   * Every version key is on the entry's node: one MGET reads the entry and its versions.
   * Never with a near cache, which answers the entry's and each version's GET from memory.
   */
  readonly together: boolean;
}

/** A tag's version key per node position, and whether the search placed it there. */
interface TagKeys {
  readonly keys: readonly string[];
  readonly entries: readonly string[];
  readonly placed: readonly boolean[];
}

export class TagVersions {
  private ring: HashRing | undefined;
  /** Node name → its position in `ring.nodes`. */
  private positions = new Map<string, number>();
  /** Tag → its version keys. */
  private keys = new Map<string, TagKeys>();
  /**
   * The rings that placed versions here before `ring`, newest first. A node's version key is
   * the first candidate the ring places there, so it changes with the nodes: an invalidation
   * made between two setNodes deleted only the keys of the nodes of the moment, and changing
   * the nodes back brought back the versions it should have deleted (10 of 60 entries answered
   * their old value). Their keys are deleted on the nodes where those rings placed them. With
   * the dict's node lists too: made at the first tagged call, after a setNodes, this knew none,
   * and another process still on the first nodes read 3 of 60 invalidated entries.
   */
  private earlier: { readonly list: NodeCapacities; ring?: HashRing }[] = [];

  /** The rings `placement` last saw, and its count of changes. */
  private placedWith: { alive: HashRing; total: HashRing } | undefined;
  private placements = 0;

  /** The near cache's `maxLag`, if the dict has one (its options never change). */
  private readonly nearLag: number | undefined;
  private readonly migration: MigrationView | undefined;
  /** Copies of each entry and version key (`replicas`); see placesFor and deleteEarlier. */
  private readonly replicas: number;

  private readonly view: CacheView;

  constructor(private readonly dict: RingDict<unknown, unknown>) {
    const view = (this.view = dict[cacheView]);
    this.remember(undefined, dict.totalHash);
    this.nearLag = view.near?.maxLag;
    this.migration = view.migration;
    this.replicas = view.replicas;
  }

  /**
   * A number that changes whenever the rings that place versions do (a node ejected or back,
   * new nodes): what `placesFor` answers is good while it holds. -1 during a migration, whose
   * ring changes with the clock. Kept instead of the rings (about 110 KB each with the default
   * slices) by who remembers places.
   */
  placement(): number {
    if (this.migration?.on === true) return -1;
    const alive = this.dict.aliveHash;
    const total = this.dict.totalHash;
    if (this.placedWith?.alive !== alive || this.placedWith.total !== total) {
      this.placedWith = { alive, total };
      this.placements++;
    }
    return this.placements;
  }

  /**
   * Where the versions of `tags` are for `entry` (the Redis key of a call); undefined with no
   * node alive.
   */
  placesFor(entry: string, tags: readonly string[]): TagPlaces | undefined {
    const migrating = this.follow();
    // During a migration, a GET each: a node of `from` that is down moves each key to the
    // next one of `from` on its own.
    const alive = migrating ? this.ring! : this.dict.aliveHash;
    const node = alive.locate(entry);
    if (node === undefined) return undefined;
    // With replicas, the copy a read finds while the owner is out was written beside the
    // owner's, recording the owner's versions: those are checked, where their own copies are.
    // The next node's versions made every tagged entry in grace there a miss, and the caller
    // got the method's error (5 of 10 keys of a killed node, replicas 2).
    const at = this.positions.get(this.replicas > 1 ? this.ring!.locate(entry)! : node);
    if (at === undefined) return undefined;
    const found = tags.map((tag) => this.keysOf(tag));
    // Lists made by map are their exact size: kept with a near-held entry (HeldReads), one
    // grown by push takes 190 B.
    const keys = found.map((tagKeys) => tagKeys.keys[at]);
    const entries = found.map((tagKeys) => tagKeys.entries[at]);
    // With every node alive, a version key the total ring placed on the entry's node is there.
    // With one out it stays there with the default distribution (keys of alive nodes never
    // move), not always with 'ketama' (an ejection rebuilds the continuum): asked of the alive
    // ring then. With a near cache, GETs: it answers each from memory.
    const partial = alive.size !== this.ring!.size;
    let together = this.nearLag === undefined && !migrating;
    for (const tagKeys of found) {
      together &&= partial ? alive.locate(tagKeys.entries[at]) === node : tagKeys.placed[at];
    }
    return { keys, entries, together };
  }

  /**
   * The entry of `key` and the versions at `places`, read together: one MGET on the entry's
   * node (a read: it leaves no handoff hint). Should the request fail over to another node,
   * it finds no versions there, or copies (with replicas) that `invalidate` deletes too: a
   * miss, never a stale read. With replicas, that node holds the entry's next copy: versions
   * missing beside an entry are then read again apart, each where its own copies are (the
   * entry in grace answered while its owner was lost, not the method's error).
   */
  readTogether(key: string, places: TagPlaces): Promise<[string | undefined, (string | null)[]]> {
    // A `then`, not an async function: this is every tagged hit's read.
    return this.dict.visitRedis('MGET', key, ...places.entries).then((reply) => {
      if (!Array.isArray(reply) || reply.length !== places.entries.length + 1) {
        throw new Error('the ring answered no MGET reply (no node alive?)');
      }
      const [raw, ...found] = reply as (string | null)[];
      const ids = found.map(asId);
      if (this.replicas === 1 || raw === null || !ids.includes(null))
        return [raw ?? undefined, ids];
      return this.read(places).then((again) => [raw, again]);
    });
  }

  /** The current ids at `places` (null where there is none), read apart from the entry. */
  read(places: TagPlaces): Promise<(string | null)[]> {
    // getRaw answers onFail's value with no node alive: a random id never equals it.
    return Promise.all(places.keys.map((key) => this.dict.getRaw(key).then(asId)));
  }

  /**
   * The ids of `keys`, each created where missing (before the value is computed: an
   * invalidation from then on deletes it). `ttlMs` is the entry's whole Redis TTL, so the
   * version outlives the entry that records it. Null where the ring could not say.
   */
  async ensure(
    keys: readonly string[],
    ids: readonly (string | null)[],
    ttlMs: number | undefined,
  ): Promise<(string | null)[]> {
    return Promise.all(
      keys.map(async (key, i) => {
        const seen = ids[i];
        if (seen !== null) return seen;
        const id = uniqueId();
        const px = ttlMs === undefined ? [] : ['PX', Math.ceil(ttlMs)];
        const set = await this.dict.visitRedis('SET', key, id, 'NX', ...px);
        if (set === 'OK') return id;
        // Another process created it first (or the ring answered onFail's value).
        const current = await this.dict.visitRedis('GET', key);
        return typeof current === 'string' ? current : null;
      }),
    );
  }

  /** After storing an entry that records `keys`: they live at least as long as it does. */
  async extend(keys: readonly string[], ttlMs: number | undefined): Promise<void> {
    await Promise.all(
      keys.map((key) =>
        ttlMs === undefined
          ? this.dict.visitRedis('PERSIST', key)
          : this.dict.visitRedis('PEXPIRE', key, Math.ceil(ttlMs), 'GT'),
      ),
    );
  }

  /**
   * Deletes every version key of `tags`, on every node (one DEL per node, in parallel; a
   * node that is out gets the delete through the ring's hinted handoff before it rejoins).
   * With a near cache, then waits its `maxLag` and a little more: Redis wrote the others'
   * invalidations with the replies, and a near cache answers nothing from memory once its
   * process has read its sockets for `maxLag` after an invalidation came, so as a rule no call
   * begun after this resolves, in a process with the same `maxLag`, answers a version it
   * dropped (the exceptions are in docs/ring-cached.md, tags).
   */
  async invalidate(tags: readonly string[]): Promise<void> {
    this.follow();
    const keys = new Set<string>();
    for (const tag of tags) for (const key of this.keysOf(tag).keys) keys.add(key);
    if (this.migration !== undefined) {
      // The other ring's keys too (see the class).
      const other = this.ring === this.migration.from ? this.dict.totalHash : this.migration.from;
      const positions = positionsOf(other);
      for (const tag of tags) {
        for (const key of this.search(tag, other, positions).keys) keys.add(key);
      }
    }
    try {
      // Not deleteMany: onFail's answer would be taken for keys deleted (a number, say).
      await this.dict[deleteManyOrReject]([...keys]);
    } catch (error) {
      if (!(error instanceof RingClusterUnavailableError)) throw error;
      throw new RingClusterUnavailableError(
        `group "${this.dict.name}": no node is alive; the tags were not invalidated`,
        error.lastError,
      );
    }
    await this.deleteEarlier(tags);
    if (this.nearLag !== undefined) {
      const until = performance.now() + this.nearLag + DELIVERY_MARGIN_MS;
      await new Promise<void>((resolve) => atDeadline(until, resolve));
    }
  }

  /**
   * Starts over when the ring that places entries changed: a new membership (the total ring
   * is a new object), a migration begun or over. True during a migration.
   */
  private follow(): boolean {
    const migrating = this.migration?.on === true;
    const ring = migrating ? this.migration!.from : this.dict.totalHash;
    if (ring !== this.ring) {
      if (this.ring !== undefined && !migrating) this.remember(this.ring, ring);
      this.ring = ring;
      this.positions = positionsOf(ring);
      this.keys.clear();
    }
    return migrating;
  }

  /**
   * `before` placed versions until `now` did: one of the earlier rings, with the dict's lists
   * (two setNodes between two calls), unless `now` has their nodes and capacities (see
   * distinctLists). The dict's lists first: newest first, they order the rest (`before` may be
   * the oldest: put first, a list of the last four was dropped, 10 of 200 entries stale). Rings
   * this has are kept; those of lists it never followed are built by the next invalidation.
   */
  private remember(before: HashRing | undefined, now: HashRing): void {
    const known =
      before === undefined
        ? this.earlier
        : [{ list: capacitiesIn(before), ring: before }, ...this.earlier];
    const lists = distinctLists(
      [...this.view.earlierNodes, ...known.map((earlier) => earlier.list)],
      capacitiesIn(now),
    );
    this.earlier = lists.map((list) => ({
      list,
      ring: known.find((earlier) => sameCapacities(earlier.list, list))?.ring,
    }));
  }

  /**
   * The earlier rings, those of lists this never followed built now: built on a read, they
   * (12–49 ms each, up to four) held the event loop for 125–147 ms.
   */
  private earlierRings(): HashRing[] {
    return this.earlier.map((earlier) => (earlier.ring ??= this.view.ringOf(earlier.list)));
  }

  /**
   * Deletes the version keys of `tags` that the earlier rings placed on each node alive now,
   * where they are: a DEL routed by the current version key of the first tag on that node
   * (deleted anyway), the others named after it. Nothing to do before the first change. With
   * replicas, on every node those rings placed a copy: with the owner out a version is read
   * from its copy (placesFor), and one left there answered a value the invalidation removed.
   */
  private async deleteEarlier(tags: readonly string[]): Promise<void> {
    if (this.earlier.length === 0) return;
    const byNode = new Map<string, Set<string>>();
    for (const ring of this.earlierRings()) {
      const positions = positionsOf(ring);
      for (const tag of tags) {
        for (const key of this.search(tag, ring, positions).keys) {
          const entry = this.dict.getEntry(key);
          for (const node of ring.locateAll(entry, this.replicas)) {
            if (!byNode.has(node)) byNode.set(node, new Set());
            byNode.get(node)!.add(entry);
          }
        }
      }
    }
    const alive = this.dict.aliveHash;
    await Promise.all(
      [...byNode].map(([node, entries]) => {
        const at = this.positions.get(node);
        const route = at === undefined ? undefined : this.keysOf(tags[0]).keys[at];
        // A node gone is cleared before it is a member again; one out keeps these keys (the
        // handoff deletes those of the current nodes only: see docs/ring-cached.md, tags).
        if (route === undefined || alive.locate(this.dict.getEntry(route)) !== node) return;
        return this.dict
          .visitRedis('DEL', route, ...allToWire([...entries]))
          .catch(() => undefined);
      }),
    );
  }

  /** The version keys of `tag` per node position, found once and remembered. */
  private keysOf(tag: string): TagKeys {
    let keys = this.keys.get(tag);
    if (keys !== undefined) return keys;
    const found = this.search(tag, this.ring!, this.positions);
    keys = {
      keys: found.keys,
      entries: found.keys.map((key) => this.dict.getEntry(key)),
      placed: found.placed,
    };
    if (this.keys.size >= MAX_REMEMBERED_TAGS) {
      // The oldest first: a Map iterates in insertion order.
      this.keys.delete(this.keys.keys().next().value!);
    }
    this.keys.set(tag, keys);
    return keys;
  }

  /** Per node position of `ring`, the first `<tag>:<n>` it places there. */
  private search(
    tag: string,
    ring: HashRing,
    positions: ReadonlyMap<string, number>,
  ): Omit<TagKeys, 'entries'> {
    const base = `${TAG_KEY_PREFIX}${tag}:`;
    const found: (string | undefined)[] = ring.nodes.map(() => undefined);
    let missing = found.length;
    const limit = CANDIDATES_PER_NODE * found.length;
    for (let n = 0; n < limit && missing > 0; n++) {
      const key = base + n;
      const at = positions.get(ring.locate(this.dict.getEntry(key))!)!;
      if (found[at] === undefined) {
        found[at] = key;
        missing--;
      }
    }
    // No candidate lands on that node (a hash tag in the group's prefix sends every key to
    // one node, say): any key will do, its version is read apart, where the ring routes it.
    return {
      keys: found.map((key) => key ?? `${base}0`),
      placed: found.map((key) => key !== undefined),
    };
  }
}

/** Node name → its position in `ring.nodes`. */
function positionsOf(ring: HashRing): Map<string, number> {
  return new Map(ring.nodes.map((name, i) => [name, i]));
}

/** A stored id, or null for none (or anything else the ring's onFail may answer). */
function asId(reply: unknown): string | null {
  return typeof reply === 'string' ? reply : null;
}
