import { EventEmitter } from 'node:events';
import type { KeyvStoreAdapter, StoredData } from 'keyv';
import { RingArgumentError } from '../core/errors.js';
import type { RingDict } from '../core/ring-dict.js';
import { readThroughRaw } from '../core/read-through.js';

/**
 * A Keyv storage adapter over a `RingDict`: `new Keyv({ store: new RingKeyvStore(dict) })`,
 * e.g. under `@nestjs/cache-manager`'s `CacheModule`.
 *
 * Keyv hands the store its own serialized strings (value and expiry) under keys it prefixes
 * with its namespace (`keyv:foo`); the store writes them as they are with the dict's
 * `setRaw` — the dict's codec is not involved — under the dict's prefix, so
 * `prefix + namespace + ':' + key` is the Redis key. Keyv's TTLs are milliseconds and become
 * `SET … PX`. `clear()` deletes the entries of the Keyv's namespace only (of the whole dict
 * when it has none). Everything else of the ring holds: dead nodes are ejected, their keys
 * fall to the next node, and a store call never waits past `commandTimeout`. When no node is
 * alive, writes reject with `RingClusterUnavailableError` (answer false with `onFail`), which
 * Keyv turns into `false`; reads, whose rejections some of Keyv's calls pass on (`getRaw`,
 * batches, `has`, `iterator`), answer misses here, the error reported to Keyv, and never the
 * dict's `onFail` value, which Keyv would take for its own data.
 *
 * The dict stays yours: Keyv's `disconnect()` does not close it (the Nest module closes its
 * groups at shutdown; close a dict of your own yourself).
 */
export class RingKeyvStore extends EventEmitter implements KeyvStoreAdapter {
  /**
   * Keyv reads `opts`; dialect `'redis'` is what makes Keyv offer `keyv.iterator()` over a
   * store, which this one supports (SCAN-based, like the dict's own iteration).
   */
  readonly opts = { dialect: 'redis' } as const;
  /** Set by Keyv to its namespace. */
  namespace?: string;

  constructor(readonly dict: RingDict<unknown, unknown>) {
    super();
    if (dict === null || typeof dict !== 'object' || typeof dict.getRaw !== 'function') {
      throw new RingArgumentError('RingKeyvStore: expected a RingDict');
    }
  }

  /** Keyv's serialized data for `key`, or undefined (also for a key that fails). */
  async get<Value>(key: string): Promise<StoredData<Value> | undefined> {
    const raw = await this.dict[readThroughRaw](key).catch(this.missed(undefined));
    return raw as StoredData<Value> | undefined;
  }

  /**
   * Several keys at once: one request each, in parallel (the ring batches them per node). A key
   * that fails (no node alive, a key the dict refuses) is a miss, the error reported to Keyv, as
   * Keyv answers a failed `get`; Keyv passes a batch's rejection on to its caller.
   */
  async getMany<Value>(keys: string[]): Promise<StoredData<Value | undefined>[]> {
    return Promise.all(keys.map((key) => this.get<Value>(key)));
  }

  /** Stores Keyv's serialized `value`; `ttl` in milliseconds (none: the dict's `expire`). */
  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    if (typeof value !== 'string' && !Buffer.isBuffer(value)) {
      throw new RingArgumentError(
        `RingKeyvStore: expected Keyv's serialized string for "${key}", got ${typeof value} (keep Keyv's default serialize)`,
      );
    }
    // Expired already (a TTL computed from a time that has passed): not stored for ever, and
    // the older value, if any, goes.
    if (typeof ttl === 'number' && ttl < 0) {
      await this.dict.delete(key);
      return true;
    }
    const options = typeof ttl === 'number' && ttl > 0 ? { ttl: ttl / 1000 } : undefined;
    // Anything but undefined is the dict's onFail answer: nothing was written.
    return (await this.dict.setRaw(key, value, options)) === undefined;
  }

  async delete(key: string): Promise<boolean> {
    return (await this.dict.delete(key)) === true;
  }

  /** True when any of `keys` was deleted. */
  async deleteMany(keys: string[]): Promise<boolean> {
    const deleted = await this.dict.deleteMany(keys);
    return typeof deleted === 'number' && deleted > 0;
  }

  /** False for a key that fails, reported as getMany's are (Keyv passes `has`' rejection on). */
  async has(key: string): Promise<boolean> {
    return (await this.dict.has(key).catch(this.missed(false))) === true;
  }

  async hasMany(keys: string[]): Promise<boolean[]> {
    return Promise.all(keys.map((key) => this.has(key)));
  }

  /** Reports a failed read to Keyv (when it listens) and answers `miss` instead. */
  private missed<T>(miss: T): (error: unknown) => T {
    return (error) => {
      if (this.listenerCount('error') > 0) this.emit('error', error);
      return miss;
    };
  }

  /**
   * Deletes the entries of this store's namespace (`namespace:*` under the dict's prefix); with
   * no namespace, every entry of the dict, which a dict with an empty prefix refuses.
   */
  async clear(): Promise<void> {
    if (this.namespace) await this.dict.clearPrefix(`${this.namespace}:`);
    else await this.dict.clear();
  }

  /** `[key, serialized]` for each entry of `namespace` (all of the dict's without one). */
  async *iterator<Value>(
    namespace?: string,
  ): AsyncGenerator<Array<string | Awaited<Value> | undefined>, void> {
    const prefix = namespace ? `${namespace}:` : '';
    try {
      for await (const key of this.dict.keys()) {
        if (!key.startsWith(prefix)) continue;
        const raw = await this.get<Value>(key);
        // Deleted or expired since the scan saw it.
        if (typeof raw === 'string') yield [key, raw as Awaited<Value>];
      }
    } catch (error) {
      // The scan failed (no node alive): the entries it could not list are misses.
      this.missed(undefined)(error);
    }
  }
}
