import { RingClusterUnavailableError, type HashRing, type RingDict } from '../../core/index.js';
import { uniqueId } from './unique-id.js';

/** Version keys of tags, inside the group's prefix: `__ring-cached__:tag:<tag>:<n>`. */
export const TAG_KEY_PREFIX = '__ring-cached__:tag:';

/** Tags whose version keys are remembered per group (each a few strings per node). */
const MAX_REMEMBERED_TAGS = 10_000;
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
 */
export class TagVersions {
  private ring: HashRing | undefined;
  /** Node name → its position in `ring.nodes`. */
  private positions = new Map<string, number>();
  /** Tag → its version key per node position. */
  private keys = new Map<string, readonly string[]>();

  constructor(private readonly dict: RingDict<unknown, unknown>) {}

  /** The version keys of `tags` on the node that serves `key` now; undefined with no node. */
  keysFor(key: string, tags: readonly string[]): string[] | undefined {
    const node = this.dict.aliveHash.locate(this.dict.getEntry(key));
    if (node === undefined) return undefined;
    this.follow();
    const at = this.positions.get(node);
    if (at === undefined) return undefined;
    return tags.map((tag) => this.keysOf(tag)[at]);
  }

  /** The current ids of `keys` (null where there is none). Read-only GETs, sent at once. */
  read(keys: readonly string[]): Promise<(string | null)[]> {
    return Promise.all(
      keys.map((key) =>
        this.dict.visitRedis('GET', key).then((id) => (typeof id === 'string' ? id : null)),
      ),
    );
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
   */
  async invalidate(tags: readonly string[]): Promise<void> {
    this.follow();
    const keys = new Set<string>();
    for (const tag of tags) for (const key of this.keysOf(tag)) keys.add(key);
    const removed = await this.dict.deleteMany([...keys]);
    if (typeof removed !== 'number') {
      // onFail answered for a ring with no node alive: nothing was invalidated.
      throw new RingClusterUnavailableError(
        `group "${this.dict.name}": no node is alive; the tags were not invalidated`,
      );
    }
  }

  /** Starts over when the ring's membership changed (its total ring is a new object). */
  private follow(): void {
    const ring = this.dict.totalHash;
    if (ring === this.ring) return;
    this.ring = ring;
    this.positions = new Map(ring.nodes.map((name, i) => [name, i]));
    this.keys.clear();
  }

  /** The version key of `tag` per node position, found once and remembered. */
  private keysOf(tag: string): readonly string[] {
    let keys = this.keys.get(tag);
    if (keys !== undefined) return keys;
    keys = this.search(tag);
    if (this.keys.size >= MAX_REMEMBERED_TAGS) {
      // The oldest first: a Map iterates in insertion order.
      this.keys.delete(this.keys.keys().next().value!);
    }
    this.keys.set(tag, keys);
    return keys;
  }

  private search(tag: string): string[] {
    const ring = this.ring!;
    const base = `${TAG_KEY_PREFIX}${tag}:`;
    const found: (string | undefined)[] = ring.nodes.map(() => undefined);
    let missing = found.length;
    const limit = CANDIDATES_PER_NODE * found.length;
    for (let n = 0; n < limit && missing > 0; n++) {
      const key = base + n;
      const at = this.positions.get(ring.locate(this.dict.getEntry(key))!)!;
      if (found[at] === undefined) {
        found[at] = key;
        missing--;
      }
    }
    // No candidate lands on that node (a hash tag in the group's prefix sends every key to
    // one node, say): any key will do, its version is read wherever the ring routes it.
    return found.map((key) => key ?? `${base}0`);
  }
}
