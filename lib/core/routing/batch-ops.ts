import { decodeValue, encodeValue, type RingCodec } from '../codec.js';
import { RingArgumentError } from '../errors.js';
import type { PayloadLimit } from '../payload-limit.js';
import { describeKey, keyList, type EntryKeys } from '../keys/entry-keys.js';
import { answerFail, type Fail } from '../membership/ring-failures.js';
import { hitsIn } from '../metrics/ring-operations.js';
import { execPipeline, inChunks, PIPELINE_CHUNK } from '../node/pipeline.js';
import type { RingNode } from '../node/ring-node.js';
import { pxOf } from './entry-ops.js';
import type { BatchRun, ReplicaBatches } from './replica-batches.js';
import type { RequestRouter } from './request-router.js';
import { allToWire, toWire } from '../keys/wire.js';
import { UNPOLLED, type NearCache } from '../near/near-cache.js';

/**
 * `getMany`, `setMany` and `deleteMany`: keys grouped by node, one MGET / pipeline / DEL per
 * node (per `PIPELINE_CHUNK` keys), nodes in parallel, with the same eject/retry rules per
 * node as a single request.
 */
export class BatchOps<V, F> {
  constructor(
    private readonly router: RequestRouter<F>,
    private readonly keys: EntryKeys,
    private readonly codec: RingCodec<V>,
    private readonly payloads: PayloadLimit,
    /** With replicas: every copy written, and the next copies read on a miss. */
    private readonly copies?: ReplicaBatches<F>,
    private readonly near?: NearCache,
  ) {}

  /**
   * Values of many keys, in input order (undefined where missing). With a near cache, the
   * entries it holds are answered from it and only the others are read.
   */
  async getMany(keys: readonly unknown[]): Promise<(V | undefined)[] | F> {
    const all = keyList('getMany', keys).map((key) => this.keys.entry(key));
    const values: (V | undefined)[] = Array.from({ length: all.length });
    const binary = this.codec.binary === true;
    const { entries, at } = this.near
      ? await this.fromNear(this.near, all, values, binary)
      : { entries: all, at: undefined };
    if (entries.length === 0) return values;
    const found = new Uint8Array(entries.length);
    const read: BatchRun<(string | Buffer | null)[][]> = (client, indexes, node) =>
      inRounds<(string | Buffer | null)[]>(node, indexes, (chunk) => {
        const batch = chunk.map((i) => entries[i]);
        if (this.near) return this.near.readMany(client, batch, binary);
        return binary ? client.mgetBuffer(allToWire(batch)) : client.mget(allToWire(batch));
      });
    // Decoded once the node answered, not inside its command: decoding a large batch must not
    // count against the node's commandTimeout.
    const fill = (indexes: number[], rounds: (string | Buffer | null)[][]) => {
      let j = 0;
      for (const raws of rounds) {
        for (const raw of raws) {
          const i = indexes[j++];
          if (raw === null) continue;
          values[at ? at[i] : i] = decodeValue(this.codec, raw, entries[i]);
          found[i] = 1;
        }
      }
    };
    const failed = await this.router.routeMany(entries, read, fill, false, 'getMany', hitsIn);
    if (failed) return answerFail(failed);
    if (this.copies && found.includes(0)) {
      const missed = entries.flatMap((_, i) => (found[i] === 0 ? [i] : []));
      const measured = this.router.measured('getMany', read, hitsIn);
      await this.copies.readMissed(entries, missed, measured, fill, (i) => found[i] === 1);
    }
    return values;
  }

  /**
   * Fills `values` from the near cache; answers the entries left to read and their places.
   * When an entry is held but the loop has to poll first, it polls, and every entry is looked
   * up again.
   */
  private async fromNear(
    near: NearCache,
    all: string[],
    values: (V | undefined)[],
    binary: boolean,
  ): Promise<{ entries: string[]; at: number[] }> {
    let raws = this.nearHits(near, all, binary, false);
    while (raws === UNPOLLED) {
      await near.polled();
      raws = this.nearHits(near, all, binary, true);
    }
    const entries: string[] = [];
    const at: number[] = [];
    for (let i = 0; i < all.length; i++) {
      const raw = raws[i];
      if (raw === undefined) {
        entries.push(all[i]);
        at.push(i);
      } else values[i] = decodeValue(this.codec, raw, all[i]);
    }
    return { entries, at };
  }

  /** What the near cache holds of `all`, or UNPOLLED if the loop has to poll first. */
  private nearHits(
    near: NearCache,
    all: string[],
    binary: boolean,
    polled: boolean,
  ): (string | Buffer | undefined)[] | typeof UNPOLLED {
    const raws: (string | Buffer | undefined)[] = [];
    for (const entry of all) {
      const raw = near.lookup(entry, binary, polled);
      if (raw === UNPOLLED) return UNPOLLED;
      raws.push(raw);
    }
    return raws;
  }

  /** Stores many entries: pipelines of `SET entry value [PX ms]`, `ttl` in seconds. */
  async setMany(
    pairs: Iterable<readonly [unknown, V]>,
    ttl: number | undefined,
  ): Promise<void | F> {
    const px = ttl === undefined ? undefined : pxOf(ttl);
    const { entries, payloads, unknown } = this.encodeAll(pairs);
    if (unknown !== undefined) {
      // A node's limit was not known yet: checked again, every value, before anything is sent.
      await unknown;
      payloads.forEach((payload, i) => this.payloads.check(payload, 'setMany', entries[i], true));
    }
    const write: BatchRun<unknown> = (client, indexes, node) =>
      inRounds(node, indexes, (chunk) => {
        const pipeline = client.pipeline();
        for (const i of chunk) {
          if (px === undefined) pipeline.set(toWire(entries[i]), payloads[i]);
          else pipeline.set(toWire(entries[i]), payloads[i], 'PX', px);
        }
        return execPipeline(pipeline.exec());
      });
    const failed = this.copies
      ? await this.copies.writeAll(entries, this.router.measured('setMany', write), () => undefined)
      : await this.router.routeMany(entries, write, () => undefined, true, 'setMany');
    if (failed) return answerFail(failed);
  }

  /**
   * Deletes many keys; answers how many were removed. With no node able to answer, what
   * `unavailable` makes of the failure: `onFail`'s answer, or (`@RingCached`'s invalidation,
   * which must not take a number `onFail` answers for keys deleted) a rejection.
   */
  async deleteMany(
    keys: readonly unknown[],
    unavailable: (fail: Fail<F>) => F = answerFail,
  ): Promise<number | F> {
    const entries = keyList('deleteMany', keys).map((key) => this.keys.entry(key));
    if (this.copies) return this.deleteCopies(entries, this.copies, unavailable);
    let removed = 0;
    const failed: Fail<F> | undefined = await this.router.routeMany(
      entries,
      (client, indexes, node) =>
        inRounds(node, indexes, async (chunk) => {
          // Counted as each round is answered: a node that fails a later round did delete
          // these, and its keys are retried on the next node, which holds none of them.
          const count = await client.del(...chunk.map((i) => toWire(entries[i])));
          removed += count;
        }),
      () => undefined,
      true,
      'deleteMany',
    );
    return failed ? unavailable(failed) : removed;
  }

  /**
   * deleteMany with replicas: every copy deleted, one DEL per entry in a pipeline so that each
   * entry counts once, when any of its copies was removed.
   */
  private async deleteCopies(
    entries: string[],
    copies: ReplicaBatches<F>,
    unavailable: (fail: Fail<F>) => F,
  ): Promise<number | F> {
    const removed = new Uint8Array(entries.length);
    const remove: BatchRun<void[]> = (client, indexes, node) =>
      inRounds(node, indexes, async (chunk) => {
        const pipeline = client.pipeline();
        for (const i of chunk) pipeline.del(toWire(entries[i]));
        const counts = await execPipeline(pipeline.exec());
        chunk.forEach((i, j) => {
          if ((counts[j] as number) > 0) removed[i] = 1;
        });
      });
    const failed = await copies.writeAll(
      entries,
      this.router.measured('deleteMany', remove),
      () => undefined,
    );
    return failed ? unavailable(failed) : removed.reduce((sum, one) => sum + one, 0);
  }

  /** Every pair checked and encoded first: a value that cannot be encoded writes nothing at all. */
  private encodeAll(pairs: Iterable<readonly [unknown, V]>): {
    entries: string[];
    payloads: (string | Buffer)[];
    /** Set when a node's limit was not known yet (see PayloadLimit.fits). */
    unknown?: Promise<void>;
  } {
    if (pairs === null || typeof pairs !== 'object' || !(Symbol.iterator in pairs)) {
      throw new RingArgumentError(
        `setMany: entries must be an iterable of [key, value] pairs, got ${describeKey(pairs)}`,
      );
    }
    const entries: string[] = [];
    const payloads: (string | Buffer)[] = [];
    let unknown: Promise<void> | undefined;
    for (const pair of pairs) {
      // Two elements exactly: a pair without its value would store undefined's error, one
      // with a third would drop it without a word.
      if (!Array.isArray(pair) || pair.length !== 2) {
        throw new RingArgumentError(
          `setMany: entry #${entries.length} must be a [key, value] pair, got ${describeKey(pair)}`,
        );
      }
      const [key, value] = pair as readonly [unknown, V];
      const entry = this.keys.entry(key);
      entries.push(entry);
      const payload = encodeValue(this.codec, value, entry);
      unknown ??= this.payloads.fits(payload, 'setMany', entry);
      payloads.push(payload);
    }
    return { entries, payloads, unknown };
  }
}

/**
 * A node's part of a batch, `PIPELINE_CHUNK` entries at a time, each sent once the previous
 * one is answered; answers the replies in order. Each answer gives the node a fresh
 * `commandTimeout`: a batch longer than that on a node that keeps answering is not a hung
 * node. (One MGET or DEL of every key would also spread them all as call arguments, which
 * overflows the stack past some 100 000 keys.)
 */
async function inRounds<R>(
  node: RingNode,
  indexes: number[],
  send: (chunk: number[]) => Promise<R>,
): Promise<R[]> {
  const replies: R[] = [];
  await inChunks(indexes, PIPELINE_CHUNK, async (chunk) => {
    replies.push(await send(chunk));
    node.progressed();
  });
  return replies;
}
