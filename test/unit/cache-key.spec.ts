import { describe, expect, it } from 'vitest';
import {
  MAX_KEY_BYTES,
  serializeArgs,
  UnserializableArgumentError,
} from '../../lib/nest/ring-cached/cache-key.js';

describe('serializeArgs', () => {
  it('ignores object key order, at every depth', () => {
    expect(serializeArgs([{ a: 1, b: 2 }])).toBe(serializeArgs([{ b: 2, a: 1 }]));
    expect(serializeArgs([{ x: { c: [1, { e: 1, d: 2 }], a: null } }])).toBe(
      serializeArgs([{ x: { a: null, c: [1, { d: 2, e: 1 }] } }]),
    );
  });

  it('keeps types apart', () => {
    const distinct = [
      [1],
      ['1'],
      [true],
      ['true'],
      [null],
      [undefined],
      [],
      [[]],
      [{}],
      [1n],
      [Number.NaN],
      [Infinity],
      [1, 2],
      [[1, 2]],
      [new Date(0)],
      [new Date(0).toISOString()],
      [new Map([['a', 1]])],
      [new Set(['a'])],
      [new Date('garbage')],
      [/a/],
      [/b/],
      [/a/i],
      ['/a/'],
    ].map(serializeArgs);
    expect(new Set(distinct).size).toBe(distinct.length);
  });

  it('is stable for Dates, Maps and Sets regardless of insertion order', () => {
    expect(serializeArgs([new Date('2026-01-02T03:04:05Z')])).toBe(
      serializeArgs([new Date(Date.UTC(2026, 0, 2, 3, 4, 5))]),
    );
    expect(serializeArgs([new Set([1, 2])])).toBe(serializeArgs([new Set([2, 1])]));
    expect(
      serializeArgs([
        new Map<string, number>([
          ['a', 1],
          ['b', 2],
        ]),
      ]),
    ).toBe(
      serializeArgs([
        new Map<string, number>([
          ['b', 2],
          ['a', 1],
        ]),
      ]),
    );
  });

  it('hashes long keys to a short digest, still distinct', () => {
    const long = serializeArgs(['x'.repeat(1000)]);
    const other = serializeArgs(['x'.repeat(999) + 'y']);
    expect(Buffer.byteLength(long)).toBeLessThanOrEqual(MAX_KEY_BYTES);
    expect(long).not.toBe(other);
    expect(serializeArgs(['short'])).toBe('["short"]');
  });

  it('keys class instances by what JSON sees, and refuses those it sees nothing of', () => {
    class Query {
      constructor(
        readonly page: number,
        readonly tags: string[],
      ) {}
    }
    class Secret {
      readonly #id: number;
      constructor(id: number) {
        this.#id = id;
      }
      get id(): number {
        return this.#id;
      }
    }
    expect(serializeArgs([new Query(2, ['a'])])).toBe(serializeArgs([{ tags: ['a'], page: 2 }]));
    expect(serializeArgs([new Query(2, ['a'])])).not.toBe(serializeArgs([new Query(3, ['a'])]));
    expect(() => serializeArgs([new Secret(1)])).toThrow(
      new UnserializableArgumentError(
        'an instance of Secret with no toJSON() and no enumerable property',
      ),
    );
    expect(() => serializeArgs([Promise.resolve(1)])).toThrow(/an instance of Promise/);
    // Plain empty objects are fine: they are all the same value.
    expect(serializeArgs([{}])).toBe(serializeArgs([Object.create(null)]));
  });

  it('refuses functions, symbols and circular structures', () => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(() => serializeArgs([() => 1])).toThrow(UnserializableArgumentError);
    expect(() => serializeArgs([Symbol('s')])).toThrow(/symbol/);
    expect(() => serializeArgs([circular])).toThrow(/circular/);
    // The same object twice is not a cycle.
    const shared = { a: 1 };
    expect(() => serializeArgs([shared, shared, [shared]])).not.toThrow();
  });
});
