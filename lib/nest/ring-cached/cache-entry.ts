import type { RingCodec } from '../../core/index.js';

/**
 * How cached calls are stored. A call cached with none of the options below is stored as
 * today: plain JSON (`''` for `undefined`), which any client can read. An entry that needs
 * more — a logical expiry inside the Redis TTL (`grace`, `refreshAhead`), the versions of its
 * tags, a codec other than JSON — is an envelope:
 *
 *     \x01{"x":1767225600000,"t":["user:7","k3Jd…"]}\x01{"name":"Ada"}
 *
 * a control character JSON never starts with, the metadata as JSON (JSON escapes the control
 * character, so the first one after the opening one closes it), then the payload: JSON text,
 * or base64 of a binary codec's bytes (read back through the ring's string API).
 */

const MARK = '\u0001';
const MARK_CODE = 1;

/** A codec for cached values, by name: `'json'`, or one of the core's binary codecs. */
export interface CacheCodec {
  readonly name: string;
  readonly codec: RingCodec<unknown>;
}

/** What an envelope says besides the value. Short field names: every read parses them. */
export interface EntryMeta {
  /** Logical expiry, epoch milliseconds (a wall clock: every process compares with it). */
  x?: number;
  /**
   * Each tag, then the id of its version key seen before the value was computed, in the call's
   * order: `[tag, id, tag, id…]`. A flat list of strings, not an object keyed by tag: parsing
   * one, JSON.parse makes a hidden class per distinct set of tag names (with a tag per user,
   * one per entry), 0.2 µs more a read of a one-tag entry.
   */
  t?: string[];
  /** The codec, when not JSON. */
  c?: string;
}

export type CachedEntry =
  | { readonly kind: 'value'; readonly value: unknown; readonly meta: EntryMeta | undefined }
  /** Written with another codec: a miss for this reader. */
  | { readonly kind: 'foreign' };

/** Thrown for a stored entry that cannot be read (the caller treats it as a failed read). */
export class UndecodableEntryError extends Error {
  override name = 'UndecodableEntryError';
}

/** The stored form of `value`: plain when `meta` is undefined (JSON codec only). */
export function encodeEntry(
  value: unknown,
  meta: EntryMeta | undefined,
  { name, codec }: CacheCodec,
): string {
  const payload = value === undefined ? '' : encodePayload(value, codec);
  if (meta === undefined) {
    if (name !== 'json') throw new TypeError(`a ${name} entry needs its envelope`);
    return payload;
  }
  return MARK + JSON.stringify(meta) + MARK + payload;
}

/** True for an envelope (plain JSON never starts with the mark). */
export function isEnvelope(raw: string): boolean {
  return raw.charCodeAt(0) === MARK_CODE;
}

/** Reads a stored entry; throws UndecodableEntryError when it is neither form. */
export function decodeEntry(raw: string, codec: CacheCodec): CachedEntry {
  const parts = partsOf(raw, codec);
  if (parts === undefined) return FOREIGN;
  return { kind: 'value', value: payloadValue(parts.payload, codec), meta: parts.meta };
}

/** A stored entry's metadata, and its payload not yet decoded. */
export interface EntryParts {
  readonly meta: EntryMeta | undefined;
  readonly payload: string;
}

/**
 * A stored entry cut in its parts; undefined when written with another codec. Throws
 * UndecodableEntryError when it is neither form.
 */
export function partsOf(raw: string, { name }: CacheCodec): EntryParts | undefined {
  if (!isEnvelope(raw)) return name === 'json' ? { meta: undefined, payload: raw } : undefined;
  try {
    const end = raw.indexOf(MARK, 1);
    if (end < 0) throw new Error('an envelope without its closing mark');
    const meta = JSON.parse(raw.slice(1, end)) as EntryMeta;
    if (meta === null || typeof meta !== 'object') throw new Error('envelope metadata');
    if ((meta.c ?? 'json') !== name) return undefined;
    return { meta, payload: raw.slice(end + 1) };
  } catch (error) {
    throw new UndecodableEntryError((error as Error).message, { cause: error });
  }
}

/** The value of a payload (`''`: undefined); throws UndecodableEntryError. */
export function payloadValue(payload: string, { codec }: CacheCodec): unknown {
  if (payload === '') return undefined;
  try {
    return codec.binary ? codec.decode(Buffer.from(payload, 'base64')) : codec.decode(payload);
  } catch (error) {
    throw new UndecodableEntryError((error as Error).message, { cause: error });
  }
}

const FOREIGN: CachedEntry = { kind: 'foreign' };

function encodePayload(value: unknown, codec: RingCodec<unknown>): string {
  const encoded = codec.encode(value);
  if (!codec.binary) {
    const text = typeof encoded === 'string' ? encoded : encoded.toString('utf8');
    // JSON.stringify answers undefined (no error) for a function or a symbol.
    if (typeof text !== 'string') throw new TypeError(`${typeof value} cannot be cached`);
    return text;
  }
  return (typeof encoded === 'string' ? Buffer.from(encoded) : encoded).toString('base64');
}

/**
 * True when an entry's tags are those of the call and each version it recorded is the one
 * read now: a tag invalidated since, or a version key lost with its node, is a miss. Anything
 * else recorded (another layout, say) is a miss too.
 */
export function tagsHold(
  recorded: unknown,
  tags: readonly string[],
  ids: readonly (string | null)[],
): boolean {
  if (recorded === undefined) return tags.length === 0;
  if (!Array.isArray(recorded) || recorded.length !== 2 * tags.length) return false;
  for (let i = 0; i < tags.length; i++) {
    const id = ids[i];
    if (id === null) return false;
    if (idOf(recorded, tags[i], 2 * i) !== id) return false;
  }
  return true;
}

/** The id recorded for `tag`: looked for at `at` (the call's order), else anywhere. */
function idOf(recorded: readonly unknown[], tag: string, at: number): unknown {
  if (recorded[at] === tag) return recorded[at + 1];
  // A tags function may answer the same tags in another order.
  for (let i = 0; i < recorded.length; i += 2) if (recorded[i] === tag) return recorded[i + 1];
  return undefined;
}
