import { createHash } from 'node:crypto';
import { RingArgumentError } from '../../core/errors.js';
import { shown } from '../../core/config/option-checks.js';

/**
 * The cache's own keys inside a group's prefix (tag versions, locks). No cached call's key may
 * begin with it: `wrap('__ring-cached__:tag:t:0', …)` wrote over tag `t`'s version.
 */
export const CACHE_KEY_SPACE = '__ring-cached__:';

/** Why `key`, a cached call's key, cannot be used; undefined when it can. */
function reservedKeyProblem(key: string): string | undefined {
  if (!key.startsWith(CACHE_KEY_SPACE)) return undefined;
  return `the key ${shown(key)} begins with "${CACHE_KEY_SPACE}", where the cache keeps its tag versions and locks`;
}

/** `key`, a cached call's key, unless it is among the cache's own (a KeyAnswerError). */
export function ownKey(key: string): string {
  const reserved = reservedKeyProblem(key);
  if (reserved !== undefined) throw new KeyAnswerError(reserved);
  return key;
}

/** Throws a RingArgumentError unless `key` can be a `wrap` key. */
export function checkWrapKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key === '') {
    throw new RingArgumentError(`wrap: the key must be a non-empty string, got ${shown(key)}`);
  }
  const reserved = reservedKeyProblem(key);
  if (reserved !== undefined) throw new RingArgumentError(`wrap: ${reserved}`);
}

/** Keys longer than this many bytes are replaced by a digest, so Redis keys stay short. */
export const MAX_KEY_BYTES = 200;

/** An argument that has no stable serialisation: the call goes through uncached. */
export class UnserializableArgumentError extends Error {
  override name = 'UnserializableArgumentError';
}

/** A `key` function answered something that is not a string: the call goes through uncached. */
export class KeyAnswerError extends Error {
  override name = 'KeyAnswerError';
}

/**
 * The `key` option's answer for `args`. Anything but a string is refused: `undefined` (a
 * forgotten `return`) or an object (`[object Object]`) would be one key for every call.
 */
export function customKey(key: (...args: unknown[]) => unknown, args: readonly unknown[]): string {
  const answer = key(...args);
  if (typeof answer !== 'string') {
    throw new KeyAnswerError(`the key function returned ${shown(answer)}, not a string`);
  }
  return answer;
}

/**
 * A stable serialisation of method arguments: object key order does not matter, types are
 * kept apart (`1` and `'1'` differ, so do `0` and `-0`, `undefined` and `null`, an array's
 * hole and `undefined`), Dates (invalid ones too), RegExps, Maps, Sets, BigInts, boxed
 * primitives (`new String('ab')` is neither `'ab'` nor `{ 0: 'a', 1: 'b' }`), binary data
 * (typed arrays, DataView, ArrayBuffer and Buffer, each kind apart, by its bytes) and nested
 * arrays/objects work; other objects count by their `toJSON()` or their own enumerable
 * properties, as `JSON.stringify` sees them. Functions, symbols, objects with enumerable
 * symbol keys, circular structures and class instances with nothing to read (no `toJSON`,
 * no enumerable property: state in `#private` fields, a WeakMap, a Promise) throw
 * `UnserializableArgumentError` rather than produce a key that could collide.
 *
 * Every form is self-delimiting and tagged (`#u`, `#h`, `#d…`, `#r…`, `#m{…}`, `#s[…]`,
 * `#b<kind>:<hex>`, `#o(…)`, `#NaN`, …) apart from JSON's own, so no two values share one.
 */
export function serializeArgs(args: readonly unknown[]): string {
  // The arguments array itself is fresh, never part of a cycle: only its elements are walked.
  // Every cached call builds its key: a plain loop, no intermediate array.
  let out = '[';
  for (let i = 0; i < args.length; i++) {
    if (i > 0) out += ',';
    out += serialize(args[i], undefined);
  }
  out += ']';
  // UTF-8 takes at most 3 bytes per UTF-16 unit: short keys need no byte count.
  if (out.length * 3 <= MAX_KEY_BYTES || Buffer.byteLength(out) <= MAX_KEY_BYTES) return out;
  return `#${createHash('sha256').update(out).digest('base64url')}`;
}

/** `path` holds the objects being serialised (for cycles); made on the first object only. */
function serialize(value: unknown, path: Set<object> | undefined): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      // JSON would print NaN and ±Infinity as null, and -0 as 0.
      if (value === 0) return 1 / value < 0 ? '-0' : '0';
      return Number.isFinite(value) ? String(value) : `#${String(value)}`;
    case 'boolean':
      return String(value);
    case 'undefined':
      return '#u';
    case 'bigint':
      return `${value}n`;
    case 'function':
      throw new UnserializableArgumentError(`a function (${value.name || 'anonymous'})`);
    case 'symbol':
      throw new UnserializableArgumentError(`a symbol (${value.toString()})`);
  }
  if (value === null) return 'null';
  const object = value as object;
  if (path?.has(object)) throw new UnserializableArgumentError('a circular structure');
  path ??= new Set();
  path.add(object);
  try {
    return serializeObject(object, path);
  } finally {
    path.delete(object);
  }
}

function serializeObject(object: object, path: Set<object>): string {
  if (Array.isArray(object)) {
    let out = '[';
    for (let i = 0; i < object.length; i++) {
      if (i > 0) out += ',';
      // A hole is no element at all: neither `undefined` nor nothing (`[,]` is not `[]`).
      out += i in object ? serialize(object[i], path) : '#h';
    }
    return `${out}]`;
  }
  const proto: unknown = Object.getPrototypeOf(object);
  const plain = proto === Object.prototype || proto === null;
  if (!plain) {
    const builtIn = serializeBuiltIn(object, path);
    if (builtIn !== undefined) return builtIn;
  }
  const toJSON = (object as { toJSON?: () => unknown }).toJSON;
  if (typeof toJSON === 'function') return serialize(toJSON.call(object), path);
  if (Object.getOwnPropertySymbols(object).some((s) => isEnumerable.call(object, s))) {
    // Object.keys() skips them: `{ [a]: 1 }` and `{ [b]: 2 }` would both be `{}`.
    throw new UnserializableArgumentError('an object with symbol keys');
  }
  const keys = Object.keys(object).sort();
  if (keys.length === 0 && !plain) {
    // `{}` to JSON, yet its state may differ: two calls would share one key.
    throw new UnserializableArgumentError(
      `an instance of ${object.constructor?.name || 'an anonymous class'} with no toJSON() and no enumerable property`,
    );
  }
  const record = object as Record<string, unknown>;
  return `{${keys.map((k) => `${JSON.stringify(k)}:${serialize(record[k], path)}`).join(',')}}`;
}

const isEnumerable = Object.prototype.propertyIsEnumerable;
const objectTag = Object.prototype.toString;
/** The kind of a typed array from its internal slot (undefined for anything else). */
const typedArrayKind = Object.getOwnPropertyDescriptor(
  Object.getPrototypeOf(Uint8Array.prototype) as object,
  Symbol.toStringTag,
)!.get as (this: unknown) => string | undefined;

/**
 * The primitive inside a boxed String, Number, Boolean, BigInt or Symbol, by its internal
 * slot: each `valueOf` throws for anything else (a plain object tagged `'String'`, say).
 */
const UNBOX: Readonly<Record<string, (boxed: object) => unknown>> = {
  '[object String]': (boxed) => String.prototype.valueOf.call(boxed),
  '[object Number]': (boxed) => Number.prototype.valueOf.call(boxed),
  '[object Boolean]': (boxed) => Boolean.prototype.valueOf.call(boxed),
  '[object BigInt]': (boxed) => BigInt.prototype.valueOf.call(boxed),
  '[object Symbol]': (boxed) => Symbol.prototype.valueOf.call(boxed),
};

/** Dates, RegExps, Maps, Sets, binary data and boxed primitives; undefined for other objects. */
function serializeBuiltIn(object: object, path: Set<object>): string | undefined {
  if (object instanceof Date) {
    // toISOString() throws on an invalid Date; every invalid Date is the same value.
    return Number.isNaN(object.getTime()) ? '#dinvalid' : `#d${object.toISOString()}`;
  }
  if (object instanceof RegExp) return `#r${JSON.stringify(String(object))}`;
  if (object instanceof Map) {
    const pairs = [...object].map(([k, v]) => `${serialize(k, path)}:${serialize(v, path)}`);
    return `#m{${pairs.sort().join(',')}}`;
  }
  if (object instanceof Set) {
    return `#s[${[...object]
      .map((v) => serialize(v, path))
      .sort()
      .join(',')}]`;
  }
  if (ArrayBuffer.isView(object)) {
    // By kind and bytes: a Uint8Array [1, 2] and an Int16Array [1, 2] are other arguments.
    const kind = Buffer.isBuffer(object) ? 'Buffer' : (typedArrayKind.call(object) ?? 'DataView');
    const bytes = Buffer.from(object.buffer, object.byteOffset, object.byteLength);
    return `#b${kind}:${bytes.toString('hex')}`;
  }
  if (object instanceof ArrayBuffer || object instanceof SharedArrayBuffer) {
    const kind = object instanceof ArrayBuffer ? 'ArrayBuffer' : 'SharedArrayBuffer';
    return `#b${kind}:${Buffer.from(object).toString('hex')}`;
  }
  const unbox = UNBOX[objectTag.call(object)];
  if (unbox === undefined) return undefined;
  let primitive: unknown;
  try {
    primitive = unbox(object);
  } catch {
    // Only tagged like one (Symbol.toStringTag): an object like any other.
    return undefined;
  }
  return `#o(${serialize(primitive, path)})`;
}
