/**
 * Entries (Redis keys) travel through the ring as strings, and any byte sequence is a Redis
 * key. A string maps to its UTF-8 bytes, which are always valid UTF-8; a binary key (a Buffer)
 * that is not valid UTF-8 maps to a string where each byte that no UTF-8 sequence explains is
 * a lone surrogate U+DC80–U+DCFF (Python's "surrogateescape", PEP 383). No well-formed string
 * has one, so two distinct byte sequences are never one entry, and a binary key's entry is
 * sent to Redis as exactly its bytes.
 */

/** `String.prototype.isWellFormed` (Node ≥ 20), which the ES2023 typings do not declare. */
export type WellFormedString = string & { isWellFormed(): boolean };

// ignoreBOM: by default a decoder drops a leading U+FEFF, and '\uFEFFk' would be the entry 'k':
// a Buffer key and a string key one entry, the near cache's invalidation of one taken for the other.
const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Whether this process has made the entry of a binary key yet. Until it has, every entry is
 * well-formed and `toWire` need not look: checking a freshly concatenated entry would flatten
 * it, an allocation on every request (measured: 127 B per get).
 */
let escaped = false;

/** Whether an entry with escaped bytes may exist (see `escaped`). */
export function anyEscaped(): boolean {
  return escaped;
}

/** An entry with escaped bytes exists from now on (see `escaped`). */
export function noteEscaped(): void {
  escaped = true;
}

/** The entry of the bytes of a Redis key (see above). */
export function fromWire(bytes: Uint8Array): string {
  try {
    return strict.decode(bytes);
  } catch {
    escaped = true;
    return decodeEscaped(bytes);
  }
}

/** What to send Redis for `entry`: the string itself, or, for a binary key, its bytes. */
export function toWire(entry: string): string | Buffer {
  if (!escaped || (entry as WellFormedString).isWellFormed()) return entry;
  return encodeEscaped(entry);
}

/** `toWire` of each entry. */
export function allToWire(entries: readonly string[]): (string | Buffer)[] {
  return entries.map(toWire);
}

/**
 * True when `s` is the entry of a byte sequence: its lone surrogates (if any) are all escaped
 * bytes, and those bytes spell no valid UTF-8 (`fromWire` of them gives `s` back). Any other
 * lone surrogate has no bytes.
 */
export function isEntryString(s: string): boolean {
  if ((s as WellFormedString).isWellFormed()) return true;
  for (let i = 0; i < s.length; i++) {
    const unit = s.charCodeAt(i);
    if (unit < 0xd800 || unit > 0xdfff) continue;
    if (unit <= 0xdbff) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
      return false;
    }
    if (unit < 0xdc80 || unit > 0xdcff) return false;
  }
  // Escaped bytes that spell a character (U+DCC3 U+DCA9: the bytes of 'é') would reach Redis as
  // that character, the entry of another key.
  return decodeEscaped(encodeEscaped(s)) === s;
}

/** Bytes → string, each byte outside a valid UTF-8 sequence as U+DC00 + byte. */
function decodeEscaped(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const length = sequenceLength(bytes, i);
    if (length === 0) {
      out += String.fromCharCode(0xdc00 + bytes[i]);
      i++;
    } else {
      out += strict.decode(bytes.subarray(i, i + length));
      i += length;
    }
  }
  return out;
}

/** The length of the valid UTF-8 sequence at `i`, or 0 when the byte there starts none. */
function sequenceLength(bytes: Uint8Array, i: number): number {
  const lead = bytes[i];
  if (lead < 0x80) return 1;
  const [length, low, high] =
    lead >= 0xc2 && lead <= 0xdf
      ? [2, 0x80, 0xbf]
      : lead === 0xe0
        ? [3, 0xa0, 0xbf]
        : lead === 0xed
          ? [3, 0x80, 0x9f] // no UTF-16 surrogates
          : lead >= 0xe1 && lead <= 0xef
            ? [3, 0x80, 0xbf]
            : lead === 0xf0
              ? [4, 0x90, 0xbf]
              : lead >= 0xf1 && lead <= 0xf3
                ? [4, 0x80, 0xbf]
                : lead === 0xf4
                  ? [4, 0x80, 0x8f]
                  : [0, 0, 0];
  if (length === 0 || i + length > bytes.length) return 0;
  if (bytes[i + 1] < low || bytes[i + 1] > high) return 0;
  for (let j = 2; j < length; j++) {
    if (bytes[i + j] < 0x80 || bytes[i + j] > 0xbf) return 0;
  }
  return length;
}

/** String → bytes: UTF-8, each escaped byte (U+DC80–U+DCFF alone) as itself. */
export function encodeEscaped(s: string): Buffer {
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const unit = s.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
      continue;
    }
    if (unit >= 0xdc80 && unit <= 0xdcff) {
      // A lone low surrogate (a pair's was skipped above): an escaped byte.
      parts.push(Buffer.from(s.slice(start, i), 'utf8'), Buffer.of(unit - 0xdc00));
      start = i + 1;
    }
  }
  parts.push(Buffer.from(s.slice(start), 'utf8'));
  return Buffer.concat(parts);
}
