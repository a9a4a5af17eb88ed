import type { Redis } from 'ioredis';
import type { Fail } from '../membership/ring-failures.js';
import type { RingOperation } from '../metrics/ring-operations.js';
import type { RingNode } from '../node/ring-node.js';
import { RequestRouter, type Done } from '../routing/request-router.js';
import { GET, GET_BUFFER, type EntryOp, type NodeOp } from '../routing/entry-ops.js';
import { UNPOLLED, type NearCache } from './near-cache.js';

/**
 * The router of a dict with a near cache: a GET is answered from memory when the entry is
 * there (after a poll for I/O when this process has not read its sockets lately), and
 * otherwise sent as the near cache's GET (which stores the reply); every write drops its
 * entries first, so the dict's next get reads what it wrote. Writes the replicas send copy by
 * copy (`tryOn`) drop them too.
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
    done: Done<T, R>,
    failed: (fail: Fail<F>) => G,
    operation: RingOperation,
  ): Promise<R | G> {
    if (op === GET || op === GET_BUFFER) return this.get(entry, op, done, failed, operation);
    if (write) this.near.wrote(entry);
    return super.route(entry, op, write, done, failed, operation);
  }

  /** A GET: from memory when the entry is held (once the loop has polled, if it must). */
  private get<T, R, G>(
    entry: string,
    op: EntryOp<T>,
    done: Done<T, R>,
    failed: (fail: Fail<F>) => G,
    operation: RingOperation,
    polled = false,
  ): Promise<R | G> {
    const binary = op === GET_BUFFER;
    const raw = this.near.lookup(entry, binary, polled);
    if (raw === UNPOLLED) {
      return this.near.polled().then(() => this.get(entry, op, done, failed, operation, true));
    }
    if (raw !== undefined) {
      try {
        return Promise.resolve(done(raw as T, entry));
      } catch (error) {
        // A value the codec cannot decode: rejected, as from Redis.
        return Promise.reject(error);
      }
    }
    const read = (binary ? this.near.readBuffer : this.near.readString) as EntryOp<unknown>;
    return super.route(entry, read as EntryOp<T>, false, done, failed, operation);
  }

  override routeMany<R>(
    entries: readonly string[],
    run: (client: Redis, indexes: number[], node: RingNode) => Promise<R>,
    absorb: (indexes: number[], result: R) => void,
    write: boolean,
    operation: RingOperation,
    hits?: (result: R) => number,
  ): Promise<Fail<F> | undefined> {
    if (write) for (const entry of entries) this.near.wrote(entry);
    return super.routeMany(entries, run, absorb, write, operation, hits);
  }

  override tryOn<T, E extends string | readonly string[]>(
    node: RingNode,
    entries: E,
    write: boolean,
    op: NodeOp<T, E>,
  ): Promise<T> {
    if (write) {
      if (typeof entries === 'string') this.near.wrote(entries);
      else for (const entry of entries as readonly string[]) this.near.wrote(entry);
    }
    return super.tryOn(node, entries, write, op);
  }
}
