import type { RingNode } from '../node/ring-node.js';

/** True when `node` answers a PING within its commandTimeout. */
export function answersPing(node: RingNode): Promise<boolean> {
  return node.client.ping().then(
    () => true,
    () => false,
  );
}

/**
 * Settles when every promise has, or `graceMs` after the first one fulfilled, whichever comes
 * first; rejects with the first rejection.
 */
export function allOrSoonAfterFirst(
  promises: readonly Promise<unknown>[],
  graceMs: number,
): Promise<void> {
  if (graceMs === Infinity || promises.length < 2)
    return Promise.all(promises).then(() => undefined);
  return new Promise<void>((resolve, reject) => {
    let pending = promises.length;
    let timer: NodeJS.Timeout | undefined;
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    for (const promise of promises) {
      promise.then(() => {
        if (--pending === 0) done();
        else timer ??= setTimeout(done, graceMs);
      }, reject);
    }
  });
}
