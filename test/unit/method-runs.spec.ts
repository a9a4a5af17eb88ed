import { describe, expect, it } from 'vitest';
import { isStringArray, runSafely, tagsOf } from '../../lib/nest/ring-cached/method-runs.js';

/**
 * How a cached method is run and its tags read: a tags function's answer is checked and its
 * repeats dropped; what is wrong with it is named, value and all.
 */
describe('tagsOf', () => {
  const tagsFrom = (answer: unknown) => tagsOf(() => answer, []);

  it('answers the tags without repeats, in their order, from the arguments', () => {
    expect(tagsOf((id) => [`user:${String(id)}`], [7])).toEqual(['user:7']);
    expect(tagsFrom(['b', 'a', 'b'])).toEqual(['b', 'a']);
    expect(tagsFrom([])).toEqual([]);
  });

  it('names what a tags function answered that is not a list of strings', () => {
    const refused: [unknown, string][] = [
      ['users', '"users"'],
      [['users', 3], '["users",3]'],
      [undefined, 'undefined'],
      [{ tags: ['a'] }, '{"tags":["a"]}'],
    ];
    for (const [answer, shown] of refused) {
      expect(() => tagsFrom(answer)).toThrow(
        new TypeError(`expected an array of strings, got ${shown}`),
      );
    }
  });

  it('lets what the tags function throws through', () => {
    const failing = () => {
      throw new Error('no tags for 4');
    };
    expect(() => tagsOf(failing, [])).toThrow('no tags for 4');
  });
});

describe('isStringArray', () => {
  it('is true for an array of strings only', () => {
    expect(isStringArray([])).toBe(true);
    expect(isStringArray(['a', ''])).toBe(true);
    expect(isStringArray(['a', 1])).toBe(false);
    expect(isStringArray('a')).toBe(false);
    expect(isStringArray(null)).toBe(false);
    expect(isStringArray({ length: 0 })).toBe(false);
  });
});

describe('runSafely', () => {
  it('turns a synchronous throw into a rejection, and a value into a promise of it', async () => {
    const self = { n: 2 };
    await expect(
      runSafely(
        function (this: typeof self, x: unknown) {
          return this.n * (x as number);
        },
        self,
        [3],
      ),
    ).resolves.toBe(6);
    await expect(
      runSafely(
        () => {
          throw new Error('sync');
        },
        undefined,
        [],
      ),
    ).rejects.toThrow('sync');
  });
});
