import { isConnectionError } from './connection-errors.js';

/**
 * Commands per pipeline in batch operations (`setMany`, hinted handoff). Large batches are
 * sent as consecutive pipelines of this size rather than as one: V8 moves an allocation
 * site to the old generation for good once most of its objects outlive a scavenge, and a
 * pipeline of thousands of commands, all alive until its replies arrive, does exactly that
 * to ioredis' per-command objects. Every later GET then allocates in the old generation:
 * measured here, one `setMany` of 10 000 entries halved the throughput of every `get` that
 * followed. A few hundred commands at a time cost a few round trips more, nothing else.
 */
export const PIPELINE_CHUNK = 250;

/** Runs `send` on consecutive slices of `items` of at most `size`, one after the other. */
export async function inChunks<T>(
  items: readonly T[],
  size: number,
  send: (chunk: T[]) => Promise<unknown>,
): Promise<void> {
  for (let start = 0; start < items.length; start += size) {
    await send(items.slice(start, start + size));
  }
}

/** A pipeline's replies in order; the first error among them is thrown as it is. */
export async function execPipeline(
  pending: Promise<[error: Error | null, result: unknown][] | null>,
): Promise<unknown[]> {
  const replies = (await pending) ?? [];
  const failed = replies.find(([error]) => error !== null);
  if (failed?.[0]) throw failed[0];
  return replies.map(([, result]) => result);
}

/**
 * A pipeline's `[error, reply]` pairs. A reply error concerns one entry and is the caller's
 * to handle; a connection error fails the whole pipeline and is thrown.
 */
export async function pipelineReplies(
  pending: Promise<[error: Error | null, result: unknown][] | null>,
): Promise<[error: Error | null, result: unknown][]> {
  const replies = (await pending) ?? [];
  const lost = replies.find(([error]) => error !== null && isConnectionError(error));
  if (lost?.[0]) throw lost[0];
  return replies;
}
