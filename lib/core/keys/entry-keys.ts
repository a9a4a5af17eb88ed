import { RingArgumentError, RingKeyError } from '../errors.js';
import { CONTROL_PREFIX, isControlKey } from './control-keys.js';

/** `String.prototype.isWellFormed` (Node ≥ 20), which the ES2023 typings do not declare. */
type WellFormedString = string & { isWellFormed(): boolean };

/** Turns a dict's keys into its Redis keys ("entries"): `prefix + key(k)`, checked. */
export class EntryKeys {
  private readonly defaultKey: boolean;
  /** The prefix leaves room for an entry among the ring's own keys: check each entry. */
  private readonly nearControl: boolean;

  constructor(
    private readonly prefix: string,
    private readonly key: (key: unknown) => string,
  ) {
    this.defaultKey = key === String;
    this.nearControl = CONTROL_PREFIX.startsWith(prefix) || prefix.startsWith(CONTROL_PREFIX);
  }

  /** The Redis key of `key`: `prefix + key(key)`. */
  entry(key: unknown): string {
    const s = this.defaultKey
      ? typeof key === 'string'
        ? key
        : defaultKeyString(key)
      : this.key(key);
    if (typeof s !== 'string') {
      throw new RingKeyError(
        `The key function returned ${s === null ? 'null' : typeof s} for ${describeKey(key)}; it must return a string`,
      );
    }
    // A lone surrogate has no UTF-8 form: Redis would get U+FFFD, and two keys would be one.
    if (!(s as WellFormedString).isWellFormed()) {
      throw new RingKeyError(
        `The key ${JSON.stringify(s)} is not well-formed UTF-16 (a lone surrogate)`,
      );
    }
    const entry = this.prefix + s;
    if (this.nearControl && isControlKey(entry)) {
      throw new RingKeyError(
        `The key ${JSON.stringify(s)} makes the entry ${JSON.stringify(entry)}, among the ring's own keys (${CONTROL_PREFIX}…)`,
      );
    }
    return entry;
  }

  /** The key of `entry`, the prefix stripped. */
  keyOf(entry: string): string {
    return entry.slice(this.prefix.length);
  }
}

/**
 * The default `key` function, String, for a key that is not a string. An object must have a
 * string form of its own (a Date, a URL, a class with toString): String() would make every
 * other object the one key "[object Object]".
 */
function defaultKeyString(key: unknown): string {
  let s: string | undefined;
  try {
    s = String(key);
  } catch {
    // No string form at all (Object.create(null)).
  }
  if (s === undefined || (typeof key === 'object' && key !== null && /^\[object \w*\]$/.test(s))) {
    throw new RingKeyError(
      `${describeKey(key)} has no string form of its own; pass a string or give a \`key\` function`,
    );
  }
  return s;
}

/** A value as an argument error shows it, never its whole content. */
export function describeKey(key: unknown): string {
  if (typeof key === 'string') return JSON.stringify(key);
  if (typeof key === 'object' && key !== null)
    return `an object (${key.constructor?.name ?? 'Object'})`;
  return `${typeof key} ${String(key)}`;
}

/** `keys`, checked to be an array: a string would be taken for a list of its characters. */
export function keyList(method: string, keys: readonly unknown[]): readonly unknown[] {
  if (!Array.isArray(keys)) {
    throw new RingArgumentError(`${method}: keys must be an array, got ${describeKey(keys)}`);
  }
  return keys;
}
