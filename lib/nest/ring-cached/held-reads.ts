import type { RingDict } from '../../core/index.js';
import type { NearHeld, NearView } from '../../core/read-through.js';
import { partsOf, payloadValue, tagsHold, type CacheCodec, type EntryMeta } from './cache-entry.js';
import type { CachedCall, Seen } from './cached-call.js';
import type { TagPlaces, TagVersions } from './tag-versions.js';

/**
 * What a read works out once from a reply the near cache holds, kept with it (NearView.note):
 * its metadata and payload, and where the versions of its tags are. Parsing the metadata and
 * placing the versions (a hash of the key, a lookup per tag) on every hit made a tagged hit
 * cost twice an untagged one.
 */
interface HeldNote {
  readonly codec: CacheCodec;
  readonly meta: EntryMeta | undefined;
  /** Undefined: written with another codec. */
  readonly payload: string | undefined;
  /** The places of the tags the entry recorded, good while `placement` is the dict's. */
  places: TagPlaces | undefined;
  placement: number;
  /** The held replies of the versions at `places`, as last found (NearView.holds)… */
  versions: NearHeld[] | undefined;
  /** …and what they say: the ids of the versions… */
  ids: readonly string[];
  /** …and whether they are the ids the entry recorded (else a miss, which `read` leaves). */
  current: boolean;
}

/**
 * A note's heap besides its metadata's text, which its strings take about twice: the note, the
 * metadata's object and list, the payload's slice, the places, the versions' replies and ids.
 * Measured as the heap freed by dropping the notes of 5 000 entries: 537 B a note for one tag,
 * 816 B for three (their metadata 39 and 105 characters long); 689 B and 1 312 B once their
 * tags were invalidated (see PLACE_OVERHEAD_BYTES).
 */
const NOTE_OVERHEAD_BYTES = 448;
/**
 * Per tag, beside its version key's names: the headers of two strings only the note may hold,
 * two lists' slots, and the version's reply once the near cache lets it go (an invalidation),
 * which the note holds until its entry's next hit (130 B).
 */
const PLACE_OVERHEAD_BYTES = 170;

const NO_IDS: readonly string[] = [];

/** A read answered from memory: a value whose tags were checked against the versions held. */
export type HeldSeen = Seen & { readonly entry: Extract<Seen['entry'], { kind: 'value' }> };

/**
 * A cached call's read answered from the near cache: the entry and each version held in
 * memory, fresh and polled, the versions those the entry recorded (undefined otherwise: the
 * call then reads as usual, and finds a miss where a version changed).
 */
export class HeldReads {
  constructor(private readonly versionsOf: (dict: RingDict<unknown, unknown>) => TagVersions) {}

  /**
   * What `ResilientCache.read` would answer, when the near cache would answer each of its
   * GETs from memory now and the entry recorded the call's tags, in its order; undefined
   * otherwise (the usual read then answers, or reports what failed).
   */
  read(call: CachedCall, near: NearView): HeldSeen | undefined {
    try {
      const now = performance.now();
      const entry = call.dict.getEntry(call.key);
      const held = near.held(entry, now);
      if (held === undefined) return undefined;
      const note = (held.note as HeldNote | undefined) ?? this.noted(near, entry, held, call);
      // By name: a codec but JSON is a new object per policy (wrap makes one per options object).
      const sameCodec = note.codec.name === call.policy.codec.name;
      if (note.payload === undefined || !sameCodec) return undefined;
      const recorded = note.meta?.t;
      if (!recordsTags(recorded, call.tags)) return undefined;
      let tagKeys: readonly string[] | undefined;
      if (recorded !== undefined) {
        const places = this.placesOf(note, call, entry);
        const versionsOk = places !== undefined && this.versionsHeld(note, call, places, near, now);
        if (!versionsOk || !note.current) return undefined;
        tagKeys = places.keys;
      }
      const value = payloadValue(note.payload, note.codec);
      return { entry: { kind: 'value', value, meta: note.meta }, tagKeys, ids: note.ids };
    } catch {
      return undefined;
    }
  }

  /**
   * The note of a reply read for the first time, kept with it. It counts the names of the
   * versions' keys: TagVersions forgets those of tags past the 10 000 it remembers, and then
   * only notes hold them.
   */
  private noted(near: NearView, entry: string, held: NearHeld, call: CachedCall): HeldNote {
    const parts = partsOf(held.raw, call.policy.codec);
    const note: HeldNote = {
      codec: call.policy.codec,
      meta: parts?.meta,
      payload: parts?.payload,
      places: undefined,
      placement: -1,
      versions: undefined,
      ids: NO_IDS,
      current: false,
    };
    const metaLength = parts === undefined ? 0 : held.raw.length - parts.payload.length;
    let bytes = NOTE_OVERHEAD_BYTES + 2 * metaLength;
    const recorded = parts?.meta?.t;
    if (recorded !== undefined && recordsTags(recorded, call.tags)) {
      bytes += placesBytes(this.placesOf(note, call, entry));
    }
    near.note(entry, held, note, bytes);
    return note;
  }

  /**
   * The places of the call's versions: the note's while the rings that found them place
   * entries (TagVersions.placement), else found again.
   */
  private placesOf(note: HeldNote, call: CachedCall, entry: string): TagPlaces | undefined {
    const versions = this.versionsOf(call.dict);
    const placement = versions.placement();
    if (placement >= 0 && note.placement === placement) return note.places;
    note.places = versions.placesFor(entry, call.tags);
    note.placement = placement;
    note.versions = undefined;
    note.ids = NO_IDS;
    return note.places;
  }

  /**
   * True when the near cache holds the versions at `places`, then in `note.ids`: the replies
   * the note kept, while the near cache still holds each of them, else looked up again and
   * compared with the ids the entry recorded (`note.current`), once. A lookup per version and
   * a list of ids on every hit cost a tagged near hit 0.1–0.3 of an untagged one's latency,
   * comparing the ids on every hit 0.1 (section 12's loop, the two ways in turns).
   */
  private versionsHeld(
    note: HeldNote,
    call: CachedCall,
    places: TagPlaces,
    near: NearView,
    now: number,
  ): boolean {
    if (note.versions !== undefined && allHeld(note.versions, near, now)) return true;
    // Replies let go are not kept past the hit that finds them gone.
    note.versions = undefined;
    note.ids = NO_IDS;
    // Lists made by map are their exact size (a push-grown one keeps room for 17).
    const found = places.entries.map((entry) => near.held(entry, now));
    if (found.includes(undefined)) return false;
    note.versions = found as NearHeld[];
    note.ids = found.map((version) => version!.raw);
    note.current = tagsHold(note.meta?.t, call.tags, note.ids);
    return true;
  }
}

/** True when the near cache still holds each of `versions` (a loop: no closure a hit). */
function allHeld(versions: readonly NearHeld[], near: NearView, now: number): boolean {
  for (const version of versions) if (!near.holds(version, now)) return false;
  return true;
}

/** The heap of the names of `places`' keys: a byte a character, as the near cache counts. */
function placesBytes(places: TagPlaces | undefined): number {
  if (places === undefined) return 0;
  let bytes = 0;
  places.keys.forEach((key, i) => {
    bytes += key.length + places.entries[i].length + PLACE_OVERHEAD_BYTES;
  });
  return bytes;
}

/**
 * True when an entry recorded exactly `tags`, in their order (`[tag, id, …]`, see EntryMeta):
 * its versions are then at the places of `tags`. A tags function that answers them in another
 * order reads as usual.
 */
function recordsTags(recorded: readonly unknown[] | undefined, tags: readonly string[]): boolean {
  if (recorded === undefined) return tags.length === 0;
  if (!Array.isArray(recorded) || recorded.length !== 2 * tags.length) return false;
  for (let i = 0; i < tags.length; i++) if (recorded[2 * i] !== tags[i]) return false;
  return true;
}
