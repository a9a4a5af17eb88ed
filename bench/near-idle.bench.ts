/**
 * Section 12's row for a near hit after the process was idle: the hit first waits until the
 * event loop has polled its sockets (an invalidation delivered meanwhile is read before the
 * entry is served), which takes two turns of the loop. Timed against a hit right after it (the
 * loop has just turned) and a get from Redis at the same moment.
 */
import type { RingDict } from '../lib/index.js';
import { median, p99, sleep } from './measure.js';
import { sig, type Row } from './report.js';

const IDLE_MS = 5;

export async function idleHitRows(
  near: RingDict<unknown>,
  plain: RingDict<unknown>,
  keys: readonly string[],
  samples: number,
): Promise<Row[]> {
  const afterIdle: number[] = [];
  const rightAfter: number[] = [];
  const fromRedis: number[] = [];
  for (let i = 0; i < samples; i++) {
    const key = keys[i % keys.length];
    await sleep(IDLE_MS);
    afterIdle.push(await timed(() => near.get(key)));
    rightAfter.push(await timed(() => near.get(key)));
    fromRedis.push(await timed(() => plain.get(key)));
  }
  const us = (values: number[]) => `median ${sig(median(values))} µs, p99 ${sig(p99(values))} µs`;
  return [
    {
      item: 12,
      what: `RingDict.get answered by the near cache after ${IDLE_MS} ms idle (${samples} calls)`,
      ours: `${us(afterIdle)} (right after a hit: ${us(rightAfter)})`,
      baseline: `RingDict.get from Redis: ${us(fromRedis)}`,
      ratio: `${sig(median(fromRedis) / median(afterIdle))}× faster`,
      goal: 'not a goal',
      verdict: 'info',
    },
  ];
}

async function timed(call: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await call();
  return (performance.now() - started) * 1000;
}
