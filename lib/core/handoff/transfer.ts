import type { Redis } from 'ioredis';
import { inChunks, PIPELINE_CHUNK, pipelineReplies } from '../node/pipeline.js';
import { allToWire, toWire } from '../keys/wire.js';

/**
 * Copies each entry's current value and remaining TTL from `source` to `target`, then deletes the
 * copied entries on `source` so a later ejection cannot read them back stale — except those
 * `keep` names: a copy `source` holds in its own right (replicas) goes on taking the writes.
 * Answers the entries `source` no longer has (deleted or expired there): the caller decides
 * whether the target must delete them — another node may hold the newer copy. Pipelined, a chunk
 * of entries at a time (two reads per entry: half a `PIPELINE_CHUNK` of entries).
 *
 * DUMP/RESTORE, not GET/SET: `visitRedis` may have written a hash or a list, and GET's
 * WRONGTYPE on one entry would fail every handoff, keeping the node out for good. An entry
 * that cannot be copied all the same (a reply error: a DUMP format the target does not read,
 * an ACL without DUMP or RESTORE) is deleted on both sides instead: a miss, never stale.
 * Connection errors are thrown: the handoff is tried again later.
 */
export async function transferEntries(
  source: Redis,
  target: Redis,
  entries: readonly string[],
  /** Entries that stay on `source` once copied (a copy it holds in its own right). */
  keep?: (entry: string) => boolean,
): Promise<string[]> {
  const missing: string[] = [];
  await inChunks(entries, PIPELINE_CHUNK / 2, async (chunk) => {
    const read = source.pipeline();
    for (const entry of chunk) read.pttl(toWire(entry)).dumpBuffer(toWire(entry));
    const sent = performance.now();
    const replies = await pipelineReplies(read.exec());
    // A TTL is relative: the time from the read's send to the restore's is taken off, or each
    // handoff lengthened the entry's life by a round trip and more (a 400 ms TTL read 409 ms
    // after its write, over a loaded link).
    const elapsed = Math.ceil(performance.now() - sent);
    const write = target.pipeline();
    const written: number[] = [];
    const uncopied: string[] = [];
    for (let i = 0; i < chunk.length; i++) {
      const [pttlError, pttl] = replies[2 * i];
      const [dumpError, dump] = replies[2 * i + 1];
      // -1: no TTL (RESTORE's 0); -2: gone.
      const left = (pttl as number) > 0 ? (pttl as number) - elapsed : 0;
      if (pttlError || dumpError) uncopied.push(chunk[i]);
      // Gone there, or expired by the time it would land.
      else if (dump === null || pttl === -2 || ((pttl as number) > 0 && left <= 0)) {
        missing.push(chunk[i]);
      } else {
        written.push(i);
        write.restore(toWire(chunk[i]), left, dump as Buffer, 'REPLACE');
      }
    }
    const results = await pipelineReplies(write.exec());
    results.forEach(([error], j) => {
      if (error) uncopied.push(chunk[written[j]]);
    });
    if (uncopied.length > 0) await target.del(...allToWire(uncopied));
    const dropped = keep ? chunk.filter((entry) => !keep(entry)) : chunk;
    if (dropped.length > 0) await source.del(...allToWire(dropped));
  });
  return missing;
}
