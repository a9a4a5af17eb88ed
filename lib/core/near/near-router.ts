import type { Redis } from 'ioredis';
import type { Fail } from '../membership/ring-failures.js';
import type { RingNode } from '../node/ring-node.js';
import { RequestRouter } from '../routing/request-router.js';
import { GET, GET_BUFFER, type EntryOp } from '../routing/entry-ops.js';
import type { NearCache } from './near-cache.js';

/**
 * The router of a dict with a near cache: a GET is answered from memory when the entry is
 * there, and otherwise sent as the near cache's GET (which stores the reply); every write
 * drops its entries first, so the dict's next get reads what it wrote.
 */
export class NearRouter<F> extends RequestRouter<F> {
  private readonly near: NearCache;

  constructor(near: NearCache, ...base: ConstructorParameters<typeof RequestRouter<F>>) {
    super(...base);
    this.near = near;
  }

  override route<T, R, G = F>(
    entry: string,
    op: EntryOp<T>,
    write: boolean,
    done: (reply: T, entry: string) => R,
    failed: (fail: Fail<F>) => G,
  ): Promise<R | G> {
    if (op === GET || op === GET_BUFFER) {
      const binary = op === GET_BUFFER;
      const raw = this.near.lookup(entry, binary);
      if (raw !== undefined) {
        try {
          return Promise.resolve(done(raw as T, entry));
        } catch (error) {
          // A value the codec cannot decode: rejected, as from Redis.
          return Promise.reject(error);
        }
      }
      const read = binary ? this.near.readBuffer : this.near.readString;
      return super.route(entry, read as EntryOp<unknown> as EntryOp<T>, write, done, failed);
    }
    if (write) this.near.wrote(entry);
    return super.route(entry, op, write, done, failed);
  }

  override routeMany<R>(
    entries: readonly string[],
    run: (client: Redis, indexes: number[], node: RingNode) => Promise<R>,
    absorb: (indexes: number[], result: R) => void,
    write = false,
  ): Promise<Fail<F> | undefined> {
    if (write) for (const entry of entries) this.near.wrote(entry);
    return super.routeMany(entries, run, absorb, write);
  }
}
