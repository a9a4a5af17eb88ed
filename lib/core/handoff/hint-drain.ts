import { toWire, allToWire } from '../keys/wire.js';
import { PIPELINE_CHUNK } from '../node/pipeline.js';
import type { RingNode } from '../node/ring-node.js';
import type { ReplicaPlacement } from '../routing/replica-placement.js';
import { scanHash } from '../scan/scan-keys.js';
import type { HandoffMode } from './handoff-report.js';
import { STRIKE_HINTS, type HintKeys } from './hint-keys.js';
import { transferEntries } from './transfer.js';

/** What a drain needs of the catch-up: where hints live, the mode, and each entry's homes. */
export interface DrainContext {
  keys: HintKeys;
  mode: HandoffMode;
  placement: ReplicaPlacement;
}

/**
 * Hands back the hints `heir` holds for `owner`, a chunk at a time, until none is left:
 * each entry deleted on both sides (`'invalidate'`) or copied to the owner (`'copy'`: into
 * `copied`, or `missing` where the heir no longer has it), then struck from the hints.
 * Answers how many.
 */
export async function drainHints(
  heir: RingNode,
  owner: RingNode,
  { keys, mode, placement }: DrainContext,
  copied: Set<string>,
  missing: Set<string>,
): Promise<number> {
  const key = keys.hints(owner.name);
  // A copy the heir holds in its own right (replicas) stays: it took every write.
  const own = (entry: string) => placement.isHome(heir.name, entry);
  let handed = 0;
  // HSCAN: every hint the hash holds when the pass begins is handed back; what is recorded
  // meanwhile is handed back by the next pass, by invalidateLate or by the sweep.
  for await (const found of scanHash(heir.client, key)) {
    for (let start = 0; start < found.length; start += PIPELINE_CHUNK) {
      const hints = found.slice(start, start + PIPELINE_CHUNK);
      const entries = hints.map(([entry]) => entry);
      if (mode === 'copy') {
        const absent = new Set(await transferEntries(heir.client, owner.client, entries, own));
        for (const entry of entries) (absent.has(entry) ? missing : copied).add(entry);
      } else {
        const held = entries.filter((entry) => !own(entry));
        await Promise.all([
          owner.client.unlink(...allToWire(entries)),
          held.length > 0 ? heir.client.unlink(...allToWire(held)) : 0,
        ]);
      }
      // Struck only as read: an entry written again meanwhile keeps its newer hint.
      await heir.client.eval(
        STRIKE_HINTS,
        1,
        key,
        ...hints.flatMap(([entry, sequence]) => [toWire(entry), sequence]),
      );
      handed += entries.length;
    }
  }
  return handed;
}
