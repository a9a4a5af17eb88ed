import { describe, expect, it } from 'vitest';
import { execPipeline, inChunks } from '../../lib/core/node/pipeline.js';

describe('inChunks', () => {
  it('sends consecutive slices of at most the size, each after the previous one settled', async () => {
    const log: string[] = [];
    const items = Array.from({ length: 7 }, (_, i) => i);
    await inChunks(items, 3, async (chunk) => {
      log.push(`start ${chunk.join(',')}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
      log.push(`end ${chunk.join(',')}`);
    });
    expect(log).toEqual([
      'start 0,1,2',
      'end 0,1,2',
      'start 3,4,5',
      'end 3,4,5',
      'start 6',
      'end 6',
    ]);
  });

  it('sends nothing for no items, and stops at the first chunk that fails', async () => {
    const sent: number[][] = [];
    await inChunks([], 3, async (chunk) => sent.push(chunk));
    expect(sent).toEqual([]);
    await expect(
      inChunks([1, 2, 3, 4], 2, async (chunk) => {
        sent.push(chunk);
        throw new Error(`chunk ${chunk[0]} failed`);
      }),
    ).rejects.toThrow('chunk 1 failed');
    expect(sent).toEqual([[1, 2]]);
  });
});

describe('execPipeline', () => {
  it('answers the replies in order, or throws the first error among them', async () => {
    expect(
      await execPipeline(
        Promise.resolve([
          [null, 'a'],
          [null, 1],
        ]),
      ),
    ).toEqual(['a', 1]);
    expect(await execPipeline(Promise.resolve(null))).toEqual([]);
    const first = new Error('first');
    await expect(
      execPipeline(
        Promise.resolve([
          [null, 'a'],
          [first, null],
          [new Error('second'), null],
        ]),
      ),
    ).rejects.toBe(first);
  });
});
