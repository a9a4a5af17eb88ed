import type { Redis } from 'ioredis';
import { allToWire, toWire } from '../keys/wire.js';
import type { RingFailures } from '../membership/ring-failures.js';
import type { RingMembership } from '../membership/ring-membership.js';
import { execPipeline } from '../node/pipeline.js';
import type { RingNode } from '../node/ring-node.js';
import type { ReplicaPlacement } from '../routing/replica-placement.js';
import { addTo } from '../collections.js';
import type { NodeBatch } from './ring-scanner.js';

/**
 * What the scans do with replicas, so that `size`, `keys`, `entries` and `clear` count each
 * entry once, not once per copy. An entry is counted on the first of its targets that holds
 * it: the owner, or the next copy where the owner lost it (restarted empty, cleared on its
 * return). A key on a node that is not one of its targets is a leftover copy and never counts.
 */
export class ReplicaScan<F> {
  constructor(
    private readonly membership: RingMembership,
    private readonly failures: RingFailures<F>,
    private readonly placement: ReplicaPlacement,
  ) {}

  /**
   * Of the keys `batch.node` holds, those it is the first target to hold: its own as the
   * first target, and those whose earlier targets (asked with EXISTS, a pipeline per node)
   * do not have them.
   */
  async firstHeld(batch: NodeBatch): Promise<string[]> {
    const name = batch.node.name;
    const kept: string[] = [];
    const earlier = new Map<RingNode, string[]>();
    for (const entry of batch.keys) {
      const targets = this.placement.targets(entry);
      const at = targets.indexOf(name);
      if (at === 0) kept.push(entry);
      if (at <= 0) continue;
      for (const other of targets.slice(0, at)) addTo(earlier, this.membership.node(other), entry);
    }
    const heldEarlier = new Set<string>();
    await Promise.all(
      [...earlier].map(async ([node, entries]) => {
        try {
          const found = await existing(node.client, entries);
          for (const entry of found) heldEarlier.add(entry);
        } catch (error) {
          // Out: its keys are the next targets' now, and counted there.
          this.failures.ejectFromScan(node, error);
        }
      }),
    );
    for (const [, entries] of earlier) {
      for (const entry of entries) if (!heldEarlier.has(entry)) kept.push(entry);
    }
    return [...new Set(kept)];
  }

  /**
   * Deletes the keys of `batch` on its node, and with each key every other copy of it, so
   * that it is counted once: answers how many entries had a copy removed here (a leftover
   * copy, on a node that is not one of the entry's targets, is deleted but not counted).
   */
  async unlinkEveryCopy(batch: NodeBatch): Promise<number> {
    const name = batch.node.name;
    const perNode = new Map<RingNode, string[]>();
    const leftovers: string[] = [];
    for (const entry of batch.keys) {
      const targets = this.placement.targets(entry);
      if (!targets.includes(name)) leftovers.push(entry);
      else for (const target of targets) addTo(perNode, this.membership.node(target), entry);
    }
    const removed = new Set<string>();
    await Promise.all(
      [...perNode].map(async ([node, entries]) => {
        try {
          for (const entry of await unlinked(node.client, entries)) removed.add(entry);
        } catch (error) {
          this.failures.ejectFromScan(node, error);
        }
      }),
    );
    if (leftovers.length > 0) await batch.node.client.unlink(...allToWire(leftovers));
    return removed.size;
  }
}

/** Of `entries`, those `client`'s server holds (one EXISTS each, pipelined). */
async function existing(client: Redis, entries: readonly string[]): Promise<string[]> {
  const pipeline = client.pipeline();
  for (const entry of entries) pipeline.exists(toWire(entry));
  const replies = await execPipeline(pipeline.exec());
  return entries.filter((_, i) => replies[i] === 1);
}

/** Of `entries`, those `client`'s server removed (one UNLINK each, pipelined). */
async function unlinked(client: Redis, entries: readonly string[]): Promise<string[]> {
  const pipeline = client.pipeline();
  for (const entry of entries) pipeline.unlink(toWire(entry));
  const replies = await execPipeline(pipeline.exec());
  return entries.filter((_, i) => (replies[i] as number) > 0);
}
