import { createHash } from 'node:crypto';

/** Keys longer than this many bytes are replaced by a digest, so Redis keys stay short. */
export const MAX_KEY_BYTES = 200;

/** An argument that has no stable serialisation: the call goes through uncached. */
export class UnserializableArgumentError extends Error {
  override name = 'UnserializableArgumentError';
}

/**
 * A stable serialisation of method arguments: object key order does not matter, types are
 * kept apart (`1` and `'1'` differ, so do `undefined` and `null`), Dates (invalid ones too),
 * RegExps, Maps, Sets, BigInts and nested arrays/objects work; other objects count by their
 * `toJSON()` or their own enumerable properties, as `JSON.stringify` sees them. Functions,
 * symbols, circular structures and class instances with nothing to read (no `toJSON`, no
 * enumerable property: state in `#private` fields, a WeakMap, a Promise) throw
 * `UnserializableArgumentError` rather than produce a key that could collide.
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
      // JSON would print NaN and ±Infinity as null.
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
  const inner = path;
  try {
    if (object instanceof Date) {
      // toISOString() throws on an invalid Date; every invalid Date is the same value.
      return Number.isNaN(object.getTime()) ? '#dinvalid' : `#d${object.toISOString()}`;
    }
    if (object instanceof RegExp) return `#r${JSON.stringify(String(object))}`;
    if (Array.isArray(object)) return `[${object.map((v) => serialize(v, inner)).join(',')}]`;
    if (object instanceof Map) {
      const pairs = [...object].map(([k, v]) => `${serialize(k, inner)}:${serialize(v, inner)}`);
      return `#m{${pairs.sort().join(',')}}`;
    }
    if (object instanceof Set) {
      return `#s[${[...object]
        .map((v) => serialize(v, inner))
        .sort()
        .join(',')}]`;
    }
    const toJSON = (object as { toJSON?: () => unknown }).toJSON;
    if (typeof toJSON === 'function') return serialize(toJSON.call(object), inner);
    const keys = Object.keys(object).sort();
    const proto: unknown = Object.getPrototypeOf(object);
    if (keys.length === 0 && proto !== Object.prototype && proto !== null) {
      // `{}` to JSON, yet its state may differ: two calls would share one key.
      throw new UnserializableArgumentError(
        `an instance of ${object.constructor?.name || 'an anonymous class'} with no toJSON() and no enumerable property`,
      );
    }
    const record = object as Record<string, unknown>;
    return `{${keys.map((k) => `${JSON.stringify(k)}:${serialize(record[k], inner)}`).join(',')}}`;
  } finally {
    inner.delete(object);
  }
}
