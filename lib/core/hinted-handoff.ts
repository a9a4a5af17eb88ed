import type { Redis } from 'ioredis';
import { execPipeline, inChunks, PIPELINE_CHUNK } from './pipeline.js';

/** What to do when more entries were written on an ejected node's behalf than remembered. */
export type HandoffOverflowPolicy = 'clear' | 'ttl';

/** What a rediscovery did to bring the returning node up to date; part of its event. */
export interface HandoffReport {
  /** Entries copied back (newer value and remaining TTL) or deleted there (gone meanwhile). */
  entries: number;
  /** More entries were written meanwhile than `handoffLimit`: the policy below was applied. */
  overflowed: boolean;
  /** `'clear'`: every entry under the prefix was deleted on the node; `'ttl'`: its TTLs are trusted. */
  policy?: HandoffOverflowPolicy;
  /** Entries deleted by the `'clear'` policy. */
  cleared?: number;
}

/** Where an entry's newer state is: the node it was written to, or `null` for "delete it". */
export type HandoffHints = Map<string, string | null>;

/**
 * Remembers, per ejected node, the entries written or deleted on its behalf on other nodes
 * and which node took each write, so that the node can be brought up to date before it
 * serves reads again (hinted handoff). Bounded: past `limit` entries per node it only
 * remembers that it overflowed.
 */
export class HandoffLog {
  private readonly hints = new Map<string, HandoffHints>();
  private readonly overflowed = new Set<string>();

  constructor(readonly limit: number) {}

  get enabled(): boolean {
    return this.limit > 0;
  }

  /**
   * `entry`, owned by `owner`, now lives on `heir` (or must simply be deleted on `owner`
   * when `heir` is null). Answers the node that held the previous copy, if another one:
   * that copy is stale now and must go too.
   */
  remember(owner: string, entry: string, heir: string | null): string | null {
    let hints = this.hints.get(owner);
    if (hints === undefined) this.hints.set(owner, (hints = new Map()));
    const previous = hints.get(entry) ?? null;
    if (hints.size < this.limit || hints.has(entry)) hints.set(entry, heir);
    else this.overflowed.add(owner);
    return previous !== null && previous !== heir ? previous : null;
  }

  /** Takes (and forgets) what is remembered for `owner`. */
  take(owner: string): { hints: HandoffHints; overflowed: boolean } {
    const hints = this.hints.get(owner) ?? new Map<string, string | null>();
    const overflowed = this.overflowed.has(owner);
    this.hints.delete(owner);
    this.overflowed.delete(owner);
    return { hints, overflowed };
  }

  /** Puts back what a failed handoff took (newer hints win). */
  restore(owner: string, taken: { hints: HandoffHints; overflowed: boolean }): void {
    const current = this.hints.get(owner);
    for (const [entry, heir] of taken.hints) {
      if (!current?.has(entry)) this.remember(owner, entry, heir);
    }
    if (taken.overflowed) this.overflowed.add(owner);
  }
}

/**
 * Copies each entry's current value and remaining TTL from `source` to `target`, deletes it
 * on `target` where `source` no longer has it, then deletes the copied entries on `source`
 * so a later ejection cannot read them back stale. Pipelined, a chunk of entries at a time
 * (two reads per entry: half a `PIPELINE_CHUNK` of entries).
 */
export async function transferEntries(
  source: Redis,
  target: Redis,
  entries: string[],
): Promise<void> {
  await inChunks(entries, PIPELINE_CHUNK / 2, async (chunk) => {
    const read = source.pipeline();
    for (const entry of chunk) read.pttl(entry).getBuffer(entry);
    const replies = await execPipeline(read.exec());
    const write = target.pipeline();
    for (let i = 0; i < chunk.length; i++) {
      const pttl = replies[2 * i] as number;
      const value = replies[2 * i + 1] as Buffer | null;
      if (value === null || pttl === -2) write.del(chunk[i]);
      else if (pttl > 0) write.set(chunk[i], value, 'PX', pttl);
      else write.set(chunk[i], value);
    }
    await execPipeline(write.exec());
    await source.del(...chunk);
  });
}

/** Deletes `entries` on `client`, one DEL per `PIPELINE_CHUNK` entries. */
export async function deleteEntries(client: Redis, entries: string[]): Promise<void> {
  await inChunks(entries, PIPELINE_CHUNK, (chunk) => client.del(...chunk));
}
