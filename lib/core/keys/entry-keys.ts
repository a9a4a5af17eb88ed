import { RingArgumentError, RingConfigError, RingKeyError } from '../errors.js';
import { CONTROL_PREFIX, isControlKey } from './control-keys.js';
import { fromWire, isEntryString, noteEscaped, type WellFormedString } from './wire.js';

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
    if (!(prefix as WellFormedString).isWellFormed()) {
      throw new RingConfigError(`prefix: ${JSON.stringify(prefix)} is not well-formed UTF-16`);
    }
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
    // Only the escaped bytes of a binary key (see wire.ts) are lone surrogates with bytes: a
    // Buffer's entry (fromWire) is one by construction, a string is checked (a trip through
    // its bytes, not made for every call with a binary key).
    if (!(s as WellFormedString).isWellFormed()) {
      const fromBytes = this.defaultKey && key instanceof Uint8Array;
      if (!fromBytes && !isEntryString(s)) {
        throw new RingKeyError(
          `The key ${JSON.stringify(s)} is not well-formed UTF-16 (a lone surrogate that is no byte of a binary key)`,
        );
      }
      noteEscaped();
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
 * The default `key` function for a key that is not a string: a finite number or a bigint by
 * its decimal string (as the original's `str`: `1` and `'1'` are one key by design), a
 * Buffer or Uint8Array by its bytes, exactly (see wire.ts). Anything else is refused: an
 * object's string form would make distinct objects one key (every plain object is
 * "[object Object]"; `['a', 'b']` is `'a,b'`).
 */
function defaultKeyString(key: unknown): string {
  if (typeof key === 'number') {
    if (!Number.isFinite(key)) throw new RingKeyError(`${describeKey(key)} is not a key`);
    return String(key);
  }
  if (typeof key === 'bigint') return String(key);
  if (key instanceof Uint8Array) return fromWire(key);
  throw new RingKeyError(
    `${describeKey(key)} is not a key: the default key takes a string, a finite number, a bigint, a Buffer or a Uint8Array; give a \`key\` function for others`,
  );
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
