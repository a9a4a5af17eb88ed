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

describe('serializeArgs keeps apart values that print alike', () => {
  /** Fails naming the pair when `a` and `b` share a key. */
  function expectDistinct(a: unknown, b: unknown): void {
    expect(serializeArgs([a]), `${String(a)} vs ${String(b)}`).not.toBe(serializeArgs([b]));
  }

  it('0 and -0, alone and inside arrays, objects, Maps and Sets', () => {
    expectDistinct(0, -0);
    expectDistinct([0], [-0]);
    expectDistinct({ n: 0 }, { n: -0 });
    expectDistinct(new Map([['k', 0]]), new Map([['k', -0]]));
    // Sets and Map keys treat -0 as 0 themselves: nothing to tell apart there.
    expect(serializeArgs([new Set([-0])])).toBe(serializeArgs([new Set([0])]));
  });

  it('binary data: every kind of view, DataView, ArrayBuffer and Buffer, by kind and bytes', () => {
    const bytes = [1, 2, 3, 4, 5, 6, 7, 8];
    const kinds: unknown[] = [
      new Uint8Array(bytes),
      new Int8Array(bytes),
      new Uint8ClampedArray(bytes),
      new Int16Array(bytes),
      new Uint16Array(bytes),
      new Int32Array(bytes),
      new Uint32Array(bytes),
      new Float32Array(bytes),
      new Float64Array(bytes),
      new BigInt64Array(bytes.map(BigInt)),
      new BigUint64Array(bytes.map(BigInt)),
      new DataView(new Uint8Array(bytes).buffer),
      new Uint8Array(bytes).buffer,
      Buffer.from(bytes),
      bytes,
      { ...new Uint8Array(bytes) },
      { type: 'Buffer', data: bytes },
    ];
    const keys = kinds.map((k) => serializeArgs([k]));
    expect(new Set(keys).size).toBe(keys.length);
    // An ArrayBuffer and a view of it are two arguments; so are two views of different bytes.
    const buffer = new Uint8Array([1, 2]).buffer;
    expectDistinct(buffer, new Uint8Array(buffer));
    expectDistinct(new Uint8Array([1, 2]), new Uint8Array([1, 3]));
    expectDistinct(new Uint8Array([]), new Uint8Array([0]));
    // A view is keyed by its own bytes, not by the whole buffer behind it.
    const whole = new Uint8Array([9, 1, 2, 9]);
    expect(serializeArgs([whole.subarray(1, 3)])).toBe(serializeArgs([new Uint8Array([1, 2])]));
    // Equal bytes of one kind are one key; -0 and 0 differ in a Float64Array's bytes too.
    expect(serializeArgs([new Int16Array([1, -1])])).toBe(serializeArgs([new Int16Array([1, -1])]));
    expectDistinct(new Float64Array([0]), new Float64Array([-0]));
  });

  it('boxed primitives: apart from their primitives, from plain objects and from each other', () => {
    expectDistinct(new String('ab'), { 0: 'a', 1: 'b' });
    expectDistinct(new String('ab'), 'ab');
    expectDistinct(new String('ab'), ['a', 'b']);
    expectDistinct(new String('ab'), new String('ba'));
    expectDistinct(new Number(1), 1);
    expectDistinct(new Number(1), new Number(2));
    expectDistinct(new Number(0), new Number(-0));
    expectDistinct(new Boolean(true), true);
    expectDistinct(new Boolean(true), new Boolean(false));
    expectDistinct(Object(1n), 1n);
    expectDistinct(Object(1n), Object(2n));
    expectDistinct(new Number(1), new String('1'));
    expect(serializeArgs([new String('ab')])).toBe(serializeArgs([new String('ab')]));
    // Something that only claims to be a String is an object like any other.
    class FakeString {
      readonly 0 = 'a';
      readonly 1 = 'b';
      get [Symbol.toStringTag](): string {
        return 'String';
      }
    }
    expectDistinct(new FakeString(), new String('ab'));
    expect(serializeArgs([new FakeString()])).toBe(serializeArgs([{ 0: 'a', 1: 'b' }]));
    expect(() => serializeArgs([Object(Symbol('s'))])).toThrow(UnserializableArgumentError);
  });

  it('sparse arrays: a hole is neither undefined nor missing', () => {
    /** An array of `length` with only `elements` set: the rest are holes. */
    const sparse = (length: number, elements: Record<number, unknown> = {}): unknown[] => {
      const array: unknown[] = [];
      array.length = length;
      return Object.assign(array, elements);
    };
    expectDistinct(sparse(1), []);
    expectDistinct(sparse(2), [undefined, undefined]);
    expectDistinct(sparse(3, { 0: 1, 2: 2 }), [1, undefined, 2]);
    expectDistinct(sparse(3, { 0: 1, 2: 2 }), [1, 2]);
    expect(serializeArgs([sparse(3, { 0: 1, 2: 2 })])).toBe(
      serializeArgs([sparse(3, { 0: 1, 2: 2 })]),
    );
  });

  it('refuses objects with symbol keys, which two different objects could share', () => {
    expect(() => serializeArgs([{ [Symbol('a')]: 1 }])).toThrow(/symbol/);
    expect(() => serializeArgs([{ a: 1, [Symbol.for('a')]: 2 }])).toThrow(
      UnserializableArgumentError,
    );
    // A symbol-keyed property that is not enumerable is not part of the value (as for JSON).
    const hidden = Object.defineProperty({ a: 1 }, Symbol('meta'), { value: 1 });
    expect(serializeArgs([hidden])).toBe(serializeArgs([{ a: 1 }]));
  });

  it('the rest stays apart: Map vs pairs, Set vs array, Date vs ISO string, RegExp vs string, null vs undefined, NaN', () => {
    expectDistinct(new Map([['a', 1]]), [['a', 1]]);
    expectDistinct(new Map([['a', 1]]), { a: 1 });
    expectDistinct(new Set([1, 2]), [1, 2]);
    expectDistinct(new Date(0), new Date(0).toISOString());
    expectDistinct(new Date(0), 0);
    expectDistinct(/a/g, '/a/g');
    expectDistinct(/a/g, /a/);
    expectDistinct(null, undefined);
    expectDistinct([null], [undefined]);
    expectDistinct({ a: null }, { a: undefined });
    expectDistinct({ a: undefined }, {});
    expectDistinct(Number.NaN, 'NaN');
    expectDistinct([Number.NaN], [null]);
    expectDistinct(Infinity, -Infinity);
    expectDistinct(1n, 1);
    expectDistinct(1n, '1n');
  });

  it("keeps today's keys of strings, numbers, plain objects and arrays", () => {
    expect(serializeArgs(['Paris', 3, { b: [1, 'x'], a: null }, true])).toBe(
      '["Paris",3,{"a":null,"b":[1,"x"]},true]',
    );
    expect(serializeArgs([0, -1.5, 1e21, 10n, undefined])).toBe('[0,-1.5,1e+21,10n,#u]');
  });
});
