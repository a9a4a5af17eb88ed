import type { Redis } from 'ioredis';
import { execPipeline } from './pipeline.js';

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

/**
 * Remembers, per ejected node, the entries written or deleted on its behalf on other nodes,
 * so that the node can be brought up to date before it serves reads again (hinted handoff).
 * Bounded: past `limit` entries per node it only remembers that it overflowed.
 */
export class HandoffLog {
  private readonly hints = new Map<string, Set<string>>();
  private readonly overflowed = new Set<string>();
  private readonly inFlight = new Map<string, number>();

  constructor(readonly limit: number) {}

  get enabled(): boolean {
    return this.limit > 0;
  }

  /** A write for `node`'s entry is on its way to another node. */
  begin(node: string): void {
    this.inFlight.set(node, (this.inFlight.get(node) ?? 0) + 1);
  }

  /** That write finished; when it succeeded, `entry` is remembered. */
  end(node: string, entry: string | undefined): void {
    this.inFlight.set(node, (this.inFlight.get(node) ?? 1) - 1);
    if (entry !== undefined) this.remember(node, entry);
  }

  private remember(node: string, entry: string): void {
    let set = this.hints.get(node);
    if (set === undefined) this.hints.set(node, (set = new Set()));
    if (set.size < this.limit || set.has(entry)) set.add(entry);
    else this.overflowed.add(node);
  }

  /** Writes on `node`'s behalf not finished yet. */
  pending(node: string): number {
    return this.inFlight.get(node) ?? 0;
  }

  /** Takes (and forgets) what is remembered for `node`. */
  take(node: string): { entries: string[]; overflowed: boolean } {
    const entries = [...(this.hints.get(node) ?? [])];
    const overflowed = this.overflowed.has(node);
    this.hints.delete(node);
    this.overflowed.delete(node);
    return { entries, overflowed };
  }

  /** Puts back what a failed handoff took. */
  restore(node: string, taken: { entries: string[]; overflowed: boolean }): void {
    for (const entry of taken.entries) this.remember(node, entry);
    if (taken.overflowed) this.overflowed.add(node);
  }

  /** Forgets everything about `node`. */
  forget(node: string): void {
    this.hints.delete(node);
    this.overflowed.delete(node);
  }
}

/** Entries per pipeline during a handoff. */
const CHUNK = 1000;

/**
 * Copies each entry's current value and remaining TTL from `source` to `target`, deletes it
 * on `target` where `source` no longer has it, then deletes the copied entries on `source`
 * so a later ejection cannot read them back stale. Pipelined, `CHUNK` entries at a time.
 */
export async function transferEntries(
  source: Redis,
  target: Redis,
  entries: string[],
): Promise<void> {
  for (let start = 0; start < entries.length; start += CHUNK) {
    const chunk = entries.slice(start, start + CHUNK);
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
  }
}

/** Deletes `entries` on `client`, pipelined. */
export async function deleteEntries(client: Redis, entries: string[]): Promise<void> {
  for (let start = 0; start < entries.length; start += CHUNK) {
    await client.del(...entries.slice(start, start + CHUNK));
  }
}
